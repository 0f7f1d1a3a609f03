package conformance

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/apis/v1alpha2"
	"sigs.k8s.io/gateway-api/apis/v1alpha3"
	"sigs.k8s.io/gateway-api/apis/v1beta1"
	gwconformance "sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// The run is configured by the environment (see the Makefile's
// conformance target).
const (
	// envReport is where the suite's report (YAML) is written; empty
	// means report.yaml in the package directory.
	envReport = "TOLLGATE_CONFORMANCE_REPORT"
	// envRunTest runs only the named test (its short name).
	envRunTest = "TOLLGATE_CONFORMANCE_RUN"
	// envSkipTests skips the named tests (short names, comma-separated).
	envSkipTests = "TOLLGATE_CONFORMANCE_SKIP"
	// envDebug makes the suite log every request and response.
	envDebug = "TOLLGATE_CONFORMANCE_DEBUG"
	// envVersion is the tollgate version the report names.
	envVersion = "TOLLGATE_CONFORMANCE_VERSION"
)

// gatewayClass is the GatewayClass the suite's Gateways use.
const gatewayClass = "tollgate"

// controllerName is tollgate's default GatewayClass controller.
const controllerName = "tollgate-proxy.io/gateway-controller"

// TestGatewayHTTP runs the Gateway API conformance suite's GATEWAY-HTTP
// profile, with its core features only, against a tollgate process
// following a real API server with the rights of the shipped ClusterRole. The pods of the suite's Deployments are
// played by the pod runner (see podRunner).
func TestGatewayHTTP(t *testing.T) {
	needNetns(t)
	kube := testserver.StartKube(t)
	kube.InstallGatewayAPI(t)

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme,
		gatewayv1.Install, v1beta1.Install, v1alpha2.Install, v1alpha3.Install,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	restConfig := kube.AdminConfig()
	clientOptions := client.Options{Scheme: scheme}
	c, err := client.New(restConfig, clientOptions)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gwc := &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: gatewayClass},
		Spec:       gatewayv1.GatewayClassSpec{ControllerName: controllerName},
	}
	if err := c.Create(ctx, gwc); err != nil {
		t.Fatalf("create GatewayClass %s: %v", gatewayClass, err)
	}

	startPodRunner(t, kube.Client(t))
	startTollgate(t, buildTollgate(t), kube, serviceAccountToken(t, kube), controllerName)

	timeouts := config.DefaultTimeoutConfig()
	// The defaults wait minutes for what tollgate does in a second or
	// fails to do at all; shorter waits keep a run with failures short.
	timeouts.GatewayMustHaveAddress = 30 * time.Second
	timeouts.GatewayMustHaveCondition = 30 * time.Second
	timeouts.GWCMustBeAccepted = 60 * time.Second
	timeouts.NamespacesMustBeReady = 120 * time.Second
	timeouts.HTTPRouteMustHaveCondition = 30 * time.Second
	timeouts.HTTPRouteMustNotHaveParents = 30 * time.Second
	timeouts.RouteMustHaveParents = 30 * time.Second
	timeouts.GatewayStatusMustHaveListeners = 30 * time.Second
	timeouts.GatewayListenersMustHaveConditions = 30 * time.Second
	timeouts.LatestObservedGenerationSet = 30 * time.Second
	timeouts.MaxTimeToConsistency = 20 * time.Second
	timeouts.RequestTimeout = 5 * time.Second
	config.SetupTimeoutConfig(&timeouts)

	version := os.Getenv(envVersion)
	if version == "" {
		version = "devel"
	}
	report := os.Getenv(envReport)
	if report == "" {
		report = "report.yaml"
	}
	var skip []string
	if s := os.Getenv(envSkipTests); s != "" {
		skip = strings.Split(s, ",")
	}
	opts := suite.ConformanceOptions{
		Client:               c,
		ClientOptions:        clientOptions,
		Clientset:            kube.Client(t),
		RestConfig:           restConfig,
		GatewayClassName:     gatewayClass,
		Debug:                os.Getenv(envDebug) != "",
		CleanupBaseResources: false,
		SupportedFeatures:    supportedFeatures(),
		ConformanceProfiles:  sets.New(suite.GatewayHTTPConformanceProfileName),
		TimeoutConfig:        timeouts,
		RunTest:              os.Getenv(envRunTest),
		SkipTests:            skip,
		RoundTripper: &roundtripper.DefaultRoundTripper{
			Debug:             os.Getenv(envDebug) != "",
			TimeoutConfig:     timeouts,
			CustomDialContext: localDial,
		},
		Implementation: confv1.Implementation{
			Organization: "tollgate-proxy",
			Project:      "tollgate",
			URL:          "https://github.com/tollgate-proxy/tollgate",
			Version:      version,
			Contact:      []string{"https://github.com/tollgate-proxy/tollgate/issues"},
		},
		ManifestFS: []fs.FS{&gwconformance.Manifests},
	}
	cs, err := suite.NewConformanceTestSuite(opts)
	if err != nil {
		t.Fatalf("conformance suite: %v", err)
	}
	cs.Setup(t, tests.ConformanceTests)
	if err := cs.Run(t, tests.ConformanceTests); err != nil {
		t.Fatalf("run: %v", err)
	}
	r, err := cs.Report()
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	b, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(report, b, 0o644); err != nil {
		t.Fatalf("write the report: %v", err)
	}
	t.Logf("report written to %s:\n%s", report, b)
}

// localDial dials only loopback addresses and addresses of podNet: the
// suite's requests go to the Gateways' addresses, which tollgate writes,
// and a wrong one must not reach another machine.
func localDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsLoopback() || podNetCIDR.Contains(ip)) {
		return nil, fmt.Errorf("refusing to dial %s: not loopback and not in %s", addr, podNet)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// supportedFeatures are the features claimed: the core ones, and the
// extended HTTPRoute features tollgate serves whose tests can run here.
// Not claimed, so skipped: HTTPRouteBackendProtocolH2C (the entry points
// do not accept HTTP/2 without TLS from clients), RequestMirror and its
// variants (the suite counts mirrored requests in the backends' pod logs,
// which only a kubelet serves), BackendProtocolWebSocket (the harness's
// echo backends do not speak WebSocket), ParentRefPort (its test uses
// listener ports that have no entry point here), and the rest (CORS,
// BackendRequestHeaderModification, NamedRouteRule, DestinationPort).
func supportedFeatures() sets.Set[features.FeatureName] {
	return sets.New(
		features.SupportGateway, features.SupportHTTPRoute, features.SupportReferenceGrant,
		features.SupportHTTPRouteQueryParamMatching,
		features.SupportHTTPRouteMethodMatching,
		features.SupportHTTPRouteResponseHeaderModification,
		features.SupportHTTPRoutePortRedirect,
		features.SupportHTTPRouteSchemeRedirect,
		features.SupportHTTPRoutePathRedirect,
		features.SupportHTTPRouteHostRewrite,
		features.SupportHTTPRoutePathRewrite,
		features.SupportHTTPRouteRequestTimeout,
		features.SupportHTTPRouteBackendTimeout,
	)
}
