package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

const nginxManifests = "testdata/migrate-ingress-nginx/ingresses.yaml"

// TestMigrateIngressNginx compares the report on the manifests of
// testdata/migrate-ingress-nginx, as a table and as JSON, with the golden
// files there (go test -update rewrites them), and checks the exit codes.
func TestMigrateIngressNginx(t *testing.T) {
	for _, tc := range []struct{ name, format string }{{"table.golden", "table"}, {"json.golden", "json"}} {
		code, stdout, stderr := tollgate(t, "migrate", "ingress-nginx", "-o", tc.format, filepath.Dir(nginxManifests))
		if code != exitOK || stderr != "" {
			t.Fatalf("-o %s: exit %d\nstderr:\n%s", tc.format, code, stderr)
		}
		golden := filepath.Join(filepath.Dir(nginxManifests), tc.name)
		if *update {
			if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./cmd/tollgate -run TestMigrateIngressNginx -update)", err)
		}
		if stdout != string(want) {
			t.Errorf("-o %s differs from %s:\n%s", tc.format, golden, stdout)
		}
	}
	clean := writeFile(t, "clean.yaml", `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, annotations: {nginx.ingress.kubernetes.io/proxy-body-size: "0"}}
spec:
  ingressClassName: nginx
  rules: [{host: a.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
`)
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"strict with unsupported", []string{"--strict", nginxManifests}, exitInvalid, "REFUSED", ""},
		{"strict and clean", []string{"--strict", clean}, exitOK, "default/web  proxy-body-size  supported  no limit", ""},
		{"other classes", []string{"--classes", "internal", nginxManifests}, exitOK, "shop/theirs         -           skipped  class haproxy, not one of --classes", ""},
		{"other classes, strict", []string{"--strict", "--classes", "internal", nginxManifests}, exitInvalid, "skipped", "no Ingress of the classes internal among the 6 read (--strict)"},
		{"empty input", []string{writeFile(t, "empty.yaml", "")}, exitOK, "no Ingress in the input", ""},
		{"bad class", []string{"--classes", "Bad_Class", nginxManifests}, exitUsage, "", `--classes: "Bad_Class" is not an IngressClass name`},
		{"missing path", []string{"nope.yaml"}, exitFailure, "", "nope.yaml does not exist"},
		{"path and cluster", []string{"--namespace", "shop", nginxManifests}, exitUsage, "", "give them without PATH"},
		{"bad format", []string{"-o", "xml", nginxManifests}, exitUsage, "", "want table, json or yaml"},
		{"not YAML", []string{writeFile(t, "bad.yaml", "kind: Ingress\napiVersion: networking.k8s.io/v1\nspec: [\n")}, exitFailure, "", "bad.yaml: document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := tollgate(t, append([]string{"migrate", "ingress-nginx"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stdout %q and stderr %q", code, tc.code, out, errOut, tc.stdout, tc.stderr)
			}
		})
	}

	// "-" reads standard input.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = stdin }()
	data, err := os.ReadFile(nginxManifests)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = w.Write(data); w.Close() }()
	code, stdout, _ := tollgate(t, "migrate", "ingress-nginx", "-")
	r.Close()
	want, _ := os.ReadFile(filepath.Join(filepath.Dir(nginxManifests), "table.golden"))
	if code != exitOK || stdout != string(want) {
		t.Errorf("from standard input: exit %d\n%s", code, stdout)
	}
}

// TestMigrateIngressNginxCluster reads the Ingresses and the auth Secret
// from a real API server through a kubeconfig.
func TestMigrateIngressNginxCluster(t *testing.T) {
	kube := testserver.StartKube(t)
	admin := kube.Client(t)
	ctx := context.Background()
	for _, ns := range []string{"shop", "other"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "users"}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"auth": []byte("alice:$2y$05$B51u372gprkuX0gV1XAukesCXhh4QRfsw1w13e8qAWRJUHgLgsEt.\nbob:{SHA}x\n")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	class := "nginx"
	for _, ns := range []string{"shop", "other"} {
		ing := &netv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: ns, Annotations: map[string]string{
			"nginx.ingress.kubernetes.io/auth-type": "basic", "nginx.ingress.kubernetes.io/auth-secret": "users"}},
			Spec: netv1.IngressSpec{IngressClassName: &class, DefaultBackend: &netv1.IngressBackend{Service: &netv1.IngressServiceBackend{Name: "web", Port: netv1.ServiceBackendPort{Number: 80}}}}}
		if _, err := admin.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kc := kube.Kubeconfig(t)
	code, stdout, stderr := tollgate(t, "migrate", "ingress-nginx", "--kubeconfig", kc)
	// shop's Secret has one bcrypt user; other has no Secret: refused.
	for _, want := range []string{"shop/admin   auth-secret  changed", "1 entries of Secret shop/users are left out",
		"other/admin  -            REFUSED      not served: nginx.ingress.kubernetes.io/auth-secret: reading Secret other/users"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("want %q in:\n%s", want, stdout)
		}
	}
	if code != exitOK {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
	code, stdout, _ = tollgate(t, "migrate", "ingress-nginx", "--kubeconfig", kc, "-n", "shop", "-o", "json")
	if code != exitOK || strings.Contains(stdout, `"other"`) || !strings.Contains(stdout, `"namespace": "shop"`) {
		t.Errorf("--namespace shop: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := tollgate(t, "migrate", "ingress-nginx", "--kubeconfig", filepath.Join(t.TempDir(), "none")); code != exitFailure || !strings.Contains(stderr, "--kubeconfig") {
		t.Errorf("missing kubeconfig: exit %d, stderr %s", code, stderr)
	}
}
