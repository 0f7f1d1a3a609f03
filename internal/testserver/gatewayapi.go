package testserver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// gatewayAPIModule is the Go module whose standard CRDs InstallGatewayAPI
// applies; its version is the one go.mod pins.
const gatewayAPIModule = "sigs.k8s.io/gateway-api"

// gatewayAPICRDs are the standard channel's CRDs the Gateway API provider
// reads, by resource name (the file is gateway.networking.k8s.io_NAME.yaml).
var gatewayAPICRDs = []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"}

// InstallGatewayAPI applies the Gateway API's standard CRDs (GatewayClass,
// Gateway, HTTPRoute, GRPCRoute, ReferenceGrant) of the module version
// go.mod pins, with kubectl, and waits until the API server has
// established them, so the typed clientset can use them right away.
func (k *Kube) InstallGatewayAPI(t TB) {
	t.Helper()
	dir := gatewayAPIDir(t)
	for _, name := range gatewayAPICRDs {
		file := filepath.Join(dir, "config", "crd", "standard", "gateway.networking.k8s.io_"+name+".yaml")
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("gateway API CRD %s: %v (is %s complete in the module cache? run go mod download %s)", name, err, dir, gatewayAPIModule)
		}
		if _, err := k.Kubectl(t, "apply", "--server-side", "-f", file); err != nil {
			t.Fatalf("install gateway API CRD %s: %v", name, err)
		}
	}
	for _, name := range gatewayAPICRDs {
		crd := "crd/" + name + ".gateway.networking.k8s.io"
		if _, err := k.Kubectl(t, "wait", "--for=condition=Established", "--timeout=60s", crd); err != nil {
			t.Fatalf("gateway API CRD %s not established: %v", name, err)
		}
	}
}

// gatewayAPIDir is the module directory of the pinned Gateway API module,
// found with `go list -m`.
func gatewayAPIDir(t TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", gatewayAPIModule)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("cannot find the directory of module %s with go list -m (%v: %s); it must be required in go.mod and downloaded: run go mod download %s",
			gatewayAPIModule, err, strings.TrimSpace(stderr.String()), gatewayAPIModule)
	}
	return dir
}
