package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	netv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// kubeEnv is a real API server, tollgate replicas following it through a
// proxy (so that the tests can cut them off), and pods: HTTP servers at
// addresses of podNet.
type kubeEnv struct {
	t     *testing.T
	kube  *testserver.Kube
	admin kubernetes.Interface
	proxy *testserver.Proxy
	c     *cluster

	mu   sync.Mutex
	pods map[string]*pod // by address
}

// pod is a backend: it answers every request with its name.
type pod struct {
	name, ip string
	srv      *http.Server
	served   atomic.Int64
}

const podPort = 8080

// newKubeEnv starts the API server and two replicas serving the
// Ingresses of the namespaces "apps" and "shop", with the ClusterRole of
// deploy/ bound to their service account.
func newKubeEnv(t *testing.T) *kubeEnv {
	t.Helper()
	needPodNet(t)
	e := &kubeEnv{t: t, pods: map[string]*pod{}}
	e.kube = testserver.StartKube(t)
	e.admin = e.kube.Client(t)
	for _, ns := range []string{"apps", "shop", "elsewhere"} {
		e.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	e.create(&netv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "tollgate"}, Spec: netv1.IngressClassSpec{Controller: "tollgate-proxy.io/ingress-controller"}})
	e.create(&netv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: netv1.IngressClassSpec{Controller: "example.com/other"}})
	token := e.kube.ServiceAccountTokenFile(t, "tollgate", "tollgate")
	e.bindShippedRole("tollgate", "tollgate")
	e.proxy = testserver.NewProxy(t, strings.TrimPrefix(e.kube.URL, "https://"))
	e.c = newCluster(t, "etcd://"+etcdAddr(t), "kube", 2)
	e.c.extra = fmt.Sprintf(`
[providers.kubernetesIngress]
endpoint = "https://%s"
tokenFile = %q
caFile = %q
namespaces = ["apps", "shop"]
  [providers.kubernetesIngress.ingressEndpoint]
  ip = "192.0.2.10"
`, e.proxy.Addr(), token, e.kube.CAFile)
	e.c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", nil)
	e.c.start()
	return e
}

// bindShippedRole creates the ClusterRole of deploy/'s base and binds it
// to the service account ns/name, so that the replicas run with exactly
// the permissions the manifests give them.
func (e *kubeEnv) bindShippedRole(ns, name string) {
	e.t.Helper()
	files, _ := filepath.Glob("../deploy/kubernetes/base/*.yaml")
	var role *rbacv1.ClusterRole
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		for doc := range bytes.SplitSeq(b, []byte("\n---")) {
			var meta metav1.TypeMeta
			if yaml.Unmarshal(doc, &meta) != nil || meta.Kind != "ClusterRole" {
				continue
			}
			role = &rbacv1.ClusterRole{}
			if err := yaml.UnmarshalStrict(doc, role); err != nil {
				e.t.Fatalf("%s: %v", f, err)
			}
		}
	}
	if role == nil {
		e.t.Fatal("no ClusterRole in deploy/kubernetes/base")
	}
	role.Namespace = ""
	e.create(role)
	e.create(&rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tollgate-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}},
	})
}

func (e *kubeEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// create creates obj as the admin.
func (e *kubeEnv) create(obj any) {
	e.t.Helper()
	ctx, c := e.ctx(), e.admin
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, err = c.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		_, err = c.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Secret:
		_, err = c.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *netv1.IngressClass:
		_, err = c.NetworkingV1().IngressClasses().Create(ctx, o, metav1.CreateOptions{})
	case *netv1.Ingress:
		_, err = c.NetworkingV1().Ingresses(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRole:
		_, err = c.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRoleBinding:
		_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
	default:
		e.t.Fatalf("create %T: not supported by the test", obj)
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatalf("create %T: %v", obj, err)
	}
}

// startPod starts a backend at ip:podPort.
func (e *kubeEnv) startPod(name, ip string) *pod {
	e.t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(podPort)))
	if err != nil {
		e.t.Fatalf("pod %s: %v", name, err)
	}
	p := &pod{name: name, ip: ip}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.served.Add(1)
		fmt.Fprint(w, name)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	e.t.Cleanup(func() { _ = p.srv.Close() })
	e.mu.Lock()
	e.pods[ip] = p
	e.mu.Unlock()
	return p
}

// service creates a Service with the port "http" (80 → podPort) and an
// EndpointSlice of its pods.
func (e *kubeEnv) service(ns, name string, pods ...*pod) {
	e.t.Helper()
	e.create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	e.endpoints(ns, name, pods, nil)
}

// endpoints sets the EndpointSlice of a Service: ready pods, and pods
// terminating (not ready, still serving).
func (e *kubeEnv) endpoints(ns, svc string, ready, terminating []*pod) {
	e.t.Helper()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-1", Labels: map[string]string{"kubernetes.io/service-name": svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(podPort)), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}
	for _, p := range ready {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{p.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true), Serving: ptrTo(true), Terminating: ptrTo(false)}})
	}
	for _, p := range terminating {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{p.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(false), Serving: ptrTo(true), Terminating: ptrTo(true)}})
	}
	ctx := e.ctx()
	cl := e.admin.DiscoveryV1().EndpointSlices(ns)
	old, err := cl.Get(ctx, es.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cl.Create(ctx, es, metav1.CreateOptions{})
	case err == nil:
		es.ResourceVersion = old.ResourceVersion
		_, err = cl.Update(ctx, es, metav1.UpdateOptions{})
	}
	if err != nil {
		e.t.Fatalf("endpoints of %s/%s: %v", ns, svc, err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// ingress returns an Ingress of class tollgate routing host and path
// (Prefix) to port "http" of svc.
func ingress(ns, name, host, path, svc string) *netv1.Ingress {
	return &netv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: netv1.IngressSpec{
			IngressClassName: ptrTo("tollgate"),
			Rules: []netv1.IngressRule{{Host: host, IngressRuleValue: netv1.IngressRuleValue{HTTP: &netv1.HTTPIngressRuleValue{
				Paths: []netv1.HTTPIngressPath{{Path: path, PathType: ptrTo(netv1.PathTypePrefix), Backend: netv1.IngressBackend{
					Service: &netv1.IngressServiceBackend{Name: svc, Port: netv1.ServiceBackendPort{Name: "http"}}}}},
			}}}},
		},
	}
}

// get asks replica r for host and path over plain HTTP.
func get(r *replica, host, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", r.http, path), nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := kubeHTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

var kubeHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// waitAnswer waits until every running replica answers host and path
// with status (and body, when not empty), and returns how long it took.
func (e *kubeEnv) waitAnswer(host, path string, status int, body string, timeout time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for _, r := range e.c.replicas {
		if r.cmd == nil {
			continue
		}
		for {
			code, got, err := get(r, host, path)
			if err == nil && code == status && (body == "" || got == body) {
				break
			}
			if time.Since(start) > timeout {
				e.t.Fatalf("replica %s: %s%s answers %d %q (err %v), want %d %q after %s\n%s", r.id, host, path, code, got, err, status, body, timeout, tail(r.log.String(), 30))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// load sends requests for host through every running replica until stop
// is called, which returns the requests sent and those that failed.
func (e *kubeEnv) load(host string, workers int) (stop func() (sent, failed int64, firstErr string)) {
	var sent, failed atomic.Int64
	var errMu sync.Mutex
	var first string
	done := make(chan struct{})
	var wg sync.WaitGroup
	var running []*replica
	for _, r := range e.c.replicas {
		if r.cmd != nil {
			running = append(running, r)
		}
	}
	for i := range workers {
		r := running[i%len(running)]
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				code, _, err := get(r, host, "/")
				sent.Add(1)
				if err != nil || code != http.StatusOK {
					failed.Add(1)
					errMu.Lock()
					if first == "" {
						first = fmt.Sprintf("replica %s: %d %v", r.id, code, err)
					}
					errMu.Unlock()
				}
			}
		})
	}
	return func() (int64, int64, string) {
		close(done)
		wg.Wait()
		return sent.Load(), failed.Load(), first
	}
}

// TestKubernetesIngress: two replicas following one real API server
// through the shipped RBAC role, with pods behind EndpointSlices.
func TestKubernetesIngress(t *testing.T) {
	e := newKubeEnv(t)
	web1 := e.startPod("web-1", "10.77.1.1")
	e.service("apps", "web", web1)

	t.Run("create is served by every replica", func(t *testing.T) {
		var took []time.Duration
		for i := range 40 {
			host := fmt.Sprintf("new%02d.tollgate.test", i)
			start := time.Now()
			e.create(ingress("apps", fmt.Sprintf("new%02d", i), host, "/", "web"))
			e.waitAnswer(host, "/", http.StatusOK, "web-1", 30*time.Second)
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		t.Logf("apply → served by both replicas, %d Ingresses: p50 %s, p90 %s, p99 %s, max %s", len(took),
			took[len(took)/2].Round(time.Millisecond), took[len(took)*9/10].Round(time.Millisecond),
			took[(len(took)*99+99)/100-1].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	})

	t.Run("change and delete", func(t *testing.T) {
		api := e.startPod("api-1", "10.77.2.1")
		e.service("apps", "api", api)
		e.create(ingress("apps", "change", "change.tollgate.test", "/v1", "web"))
		e.waitAnswer("change.tollgate.test", "/v1/x", http.StatusOK, "web-1", 30*time.Second)
		ctx := e.ctx()
		// The leader writes the Ingress's status meanwhile: read, change
		// and write again on a conflict, as kubectl edit would.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ing, err := e.admin.NetworkingV1().Ingresses("apps").Get(ctx, "change", metav1.GetOptions{})
			if err != nil {
				return err
			}
			ing.Spec.Rules[0].HTTP.Paths[0].Path = "/v2"
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "api"
			_, err = e.admin.NetworkingV1().Ingresses("apps").Update(ctx, ing, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		e.waitAnswer("change.tollgate.test", "/v2/x", http.StatusOK, "api-1", 30*time.Second)
		e.waitAnswer("change.tollgate.test", "/v1/x", http.StatusNotFound, "", 30*time.Second)
		if err := e.admin.NetworkingV1().Ingresses("apps").Delete(ctx, "change", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		took := e.waitAnswer("change.tollgate.test", "/v2/x", http.StatusNotFound, "", 30*time.Second)
		t.Logf("delete → 404 on both replicas after %s", took.Round(time.Millisecond))
	})

	t.Run("endpoints scale up and down under load", func(t *testing.T) {
		a, b := e.startPod("scale-a", "10.77.3.1"), e.startPod("scale-b", "10.77.3.2")
		e.service("apps", "scale", a, b)
		e.create(ingress("apps", "scale", "scale.tollgate.test", "/", "scale"))
		e.waitAnswer("scale.tollgate.test", "/", http.StatusOK, "", 30*time.Second)
		stop := e.load("scale.tollgate.test", 8)
		c, d := e.startPod("scale-c", "10.77.3.3"), e.startPod("scale-d", "10.77.3.4")
		e.endpoints("apps", "scale", []*pod{a, b, c, d}, nil)
		waitFor(t, 30*time.Second, "the new endpoints in rotation", func() bool { return c.served.Load() > 0 && d.served.Load() > 0 })
		// Scale down: a and b terminate gracefully; they keep serving
		// while the replicas drain them, then stop.
		e.endpoints("apps", "scale", []*pod{c, d}, []*pod{a, b})
		time.Sleep(2 * time.Second)
		drainedA, drainedB := a.served.Load(), b.served.Load()
		time.Sleep(time.Second)
		if a.served.Load() != drainedA || b.served.Load() != drainedB {
			t.Errorf("terminating endpoints still get requests 2 s after they were marked: a %d→%d, b %d→%d", drainedA, a.served.Load(), drainedB, b.served.Load())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = a.srv.Shutdown(ctx)
		_ = b.srv.Shutdown(ctx)
		cancel()
		e.endpoints("apps", "scale", []*pod{c, d}, nil)
		time.Sleep(time.Second)
		sent, failed, first := stop()
		t.Logf("scale 2 → 4 → 2 under load: %d requests, %d failed; served by a %d, b %d, c %d, d %d", sent, failed, a.served.Load(), b.served.Load(), c.served.Load(), d.served.Load())
		if failed > 0 {
			t.Fatalf("%d of %d requests failed; first: %s", failed, sent, first)
		}
	})

	t.Run("class and namespace filtering", func(t *testing.T) {
		other := ingress("apps", "other-class", "other.tollgate.test", "/", "web")
		other.Spec.IngressClassName = ptrTo("other")
		e.create(other)
		e.service("elsewhere", "web", web1)
		e.create(ingress("elsewhere", "outside", "outside.tollgate.test", "/", "web"))
		e.create(ingress("shop", "canary", "canary.tollgate.test", "/", "web"))
		e.service("shop", "web", web1)
		// Created after the others: once it is served, they were seen.
		e.waitAnswer("canary.tollgate.test", "/", http.StatusOK, "web-1", 30*time.Second)
		e.waitAnswer("other.tollgate.test", "/", http.StatusNotFound, "", time.Second)
		e.waitAnswer("outside.tollgate.test", "/", http.StatusNotFound, "", time.Second)
	})

	t.Run("TLS secret rotation", func(t *testing.T) {
		certA, keyA, serialA := selfSignedPEM(t, "secure.tollgate.test")
		certB, keyB, serialB := selfSignedPEM(t, "secure.tollgate.test")
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "secure-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certA, corev1.TLSPrivateKeyKey: keyA}})
		ing := ingress("apps", "secure", "secure.tollgate.test", "/", "web")
		ing.Spec.TLS = []netv1.IngressTLS{{Hosts: []string{"secure.tollgate.test"}, SecretName: "secure-tls"}}
		e.create(ing)
		e.waitSerial("secure.tollgate.test", serialA, 30*time.Second)
		ctx := e.ctx()
		s, err := e.admin.CoreV1().Secrets("apps").Get(ctx, "secure-tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data = map[string][]byte{corev1.TLSCertKey: certB, corev1.TLSPrivateKeyKey: keyB}
		if _, err := e.admin.CoreV1().Secrets("apps").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		took := e.waitSerial("secure.tollgate.test", serialB, 30*time.Second)
		t.Logf("rotated secret served by both replicas after %s, without a restart", took.Round(time.Millisecond))
	})

	t.Run("host without secret gets one ACME order", func(t *testing.T) {
		ing := ingress("apps", "acme", "acme.tollgate.test", "/", "web")
		ing.Spec.TLS = []netv1.IngressTLS{{Hosts: []string{"acme.tollgate.test"}}}
		e.create(ing)
		got := e.c.waitCerts([]string{"acme.tollgate.test"}, 2*time.Minute, nil)
		e.c.checkServed(got, []string{"acme.tollgate.test"})
		time.Sleep(2 * time.Second) // no second order follows
		if n := e.c.pebble.Orders()["acme.tollgate.test"]; n != 1 {
			t.Fatalf("%d orders for acme.tollgate.test, want 1 (orders: %v)", n, e.c.pebble.Orders())
		}
	})

	t.Run("status by the leader only, then by the next leader", func(t *testing.T) {
		lead := e.c.leader()
		e.waitStatus("apps", "new00", "tollgate-"+lead.id)
		e.c.stop(lead, syscall.SIGKILL)
		next := e.c.leader()
		e.create(ingress("apps", "after-kill", "after-kill.tollgate.test", "/", "web"))
		e.waitStatus("apps", "after-kill", "tollgate-"+next.id)
		e.c.start()
	})

	t.Run("bad objects are Events, other routes unaffected", func(t *testing.T) {
		garbage := ingress("apps", "bad-secret", "bad-secret.tollgate.test", "/", "web")
		garbage.Spec.TLS = []netv1.IngressTLS{{Hosts: []string{"bad-secret.tollgate.test"}, SecretName: "garbage-tls"}}
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "garbage-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: []byte("not a certificate"), corev1.TLSPrivateKeyKey: []byte("not a key")}})
		missingSecret := ingress("apps", "missing-secret", "missing-secret.tollgate.test", "/", "web")
		missingSecret.Spec.TLS = []netv1.IngressTLS{{Hosts: []string{"missing-secret.tollgate.test"}, SecretName: "nope-tls"}}
		missingPort := ingress("apps", "missing-port", "missing-port.tollgate.test", "/", "web")
		missingPort.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = netv1.ServiceBackendPort{Name: "grpc"}
		middleware := ingress("apps", "unknown-middleware", "unknown-middleware.tollgate.test", "/", "web")
		middleware.Annotations = map[string]string{"tollgate.io/router.middlewares": "nope"}
		cases := []struct {
			ing  *netv1.Ingress
			want string
		}{
			{ingress("apps", "missing-service", "missing-service.tollgate.test", "/", "nope"), `service "nope" not found`},
			{missingPort, "has no port grpc"},
			{missingSecret, `secret "nope-tls" not found`},
			{garbage, "secret apps/garbage-tls"},
			{middleware, `middleware "nope" is not defined`},
		}
		for _, tc := range cases {
			e.create(tc.ing)
		}
		for _, tc := range cases {
			e.waitEvent("apps", tc.ing.Name, tc.want)
		}
		e.waitAnswer("new00.tollgate.test", "/", http.StatusOK, "web-1", 5*time.Second)
		e.waitAnswer("missing-service.tollgate.test", "/", http.StatusServiceUnavailable, "", 5*time.Second)
		e.waitAnswer("unknown-middleware.tollgate.test", "/", http.StatusNotFound, "", 5*time.Second)
	})

	t.Run("API server away for 30s", func(t *testing.T) {
		// Stopped: the routes stay served.
		stop := e.load("new01.tollgate.test", 4)
		e.kube.Stop(t)
		time.Sleep(30 * time.Second)
		e.kube.Start(t)
		e.create(ingress("apps", "after-restart", "after-restart.tollgate.test", "/", "web"))
		took := e.waitAnswer("after-restart.tollgate.test", "/", http.StatusOK, "web-1", time.Minute)
		sent, failed, first := stop()
		t.Logf("API server stopped 30 s: %d requests, %d failed; an Ingress created after it returned served in %s", sent, failed, took.Round(time.Millisecond))
		if failed > 0 {
			t.Fatalf("%d of %d requests failed while the API server was stopped; first: %s", failed, sent, first)
		}
		// Cut off: changes made meanwhile are applied when it returns.
		stop = e.load("new02.tollgate.test", 4)
		e.proxy.Freeze(true)
		e.create(ingress("apps", "meanwhile", "meanwhile.tollgate.test", "/", "web"))
		if err := e.admin.NetworkingV1().Ingresses("apps").Delete(e.ctx(), "new03", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		e.waitAnswer("meanwhile.tollgate.test", "/", http.StatusNotFound, "", time.Second)
		e.waitAnswer("new03.tollgate.test", "/", http.StatusOK, "web-1", time.Second)
		e.proxy.Thaw()
		took = e.waitAnswer("meanwhile.tollgate.test", "/", http.StatusOK, "web-1", 2*time.Minute)
		e.waitAnswer("new03.tollgate.test", "/", http.StatusNotFound, "", time.Minute)
		sent, failed, first = stop()
		t.Logf("API server unreachable 30 s: %d requests, %d failed; changes made meanwhile applied %s after it was back", sent, failed, took.Round(time.Millisecond))
		if failed > 0 {
			t.Fatalf("%d of %d requests failed while the API server was unreachable; first: %s", failed, sent, first)
		}
	})
}

// waitSerial waits until every running replica serves name with the
// certificate of serial, and returns how long it took.
func (e *kubeEnv) waitSerial(name, serial string, timeout time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for _, r := range e.c.replicas {
		if r.cmd == nil {
			continue
		}
		for {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", r.https),
				&tls.Config{ServerName: name, InsecureSkipVerify: true})
			got := ""
			if err == nil {
				got = fmt.Sprintf("%x", conn.ConnectionState().PeerCertificates[0].SerialNumber)
				conn.Close()
			}
			if got == serial {
				break
			}
			if time.Since(start) > timeout {
				e.t.Fatalf("replica %s serves %s with serial %q (err %v), want %q", r.id, name, got, err, serial)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// waitStatus waits until the Ingress's status holds the published
// address, written by manager only.
func (e *kubeEnv) waitStatus(ns, name, manager string) {
	e.t.Helper()
	var last string
	waitFor(e.t, time.Minute, "status of "+ns+"/"+name+" by "+manager, func() bool {
		ing, err := e.admin.NetworkingV1().Ingresses(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false
		}
		var writers []string
		for _, mf := range ing.ManagedFields {
			if mf.Subresource == "status" {
				writers = append(writers, mf.Manager)
			}
		}
		lb := ing.Status.LoadBalancer.Ingress
		last = fmt.Sprintf("status %+v written by %v", lb, writers)
		return len(lb) == 1 && lb[0].IP == "192.0.2.10" && slices.Equal(writers, []string{manager})
	}, func() string { return last })
}

// waitEvent waits for a Warning Event on Ingress ns/name whose message
// contains want.
func (e *kubeEnv) waitEvent(ns, name, want string) {
	e.t.Helper()
	var seen []string
	waitFor(e.t, time.Minute, "an Event on "+ns+"/"+name+" saying "+want, func() bool {
		evs, err := e.admin.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false
		}
		seen = seen[:0]
		for _, ev := range evs.Items {
			seen = append(seen, ev.Type+": "+ev.Message)
			if ev.Type == corev1.EventTypeWarning && ev.InvolvedObject.Kind == "Ingress" && strings.Contains(ev.Message, want) {
				return true
			}
		}
		return false
	}, func() string { return strings.Join(seen, "\n") })
}

// waitFor polls ok until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			msg := ""
			for _, d := range detail {
				msg += "\n" + d()
			}
			t.Fatalf("no %s after %s%s", what, timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// selfSignedPEM makes a certificate for name and its key, and returns
// them with the serial in hex.
func selfSignedPEM(t *testing.T, name string) (cert, key []byte, serial string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), fmt.Sprintf("%x", sn)
}
