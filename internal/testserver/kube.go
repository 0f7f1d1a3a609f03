package testserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubeStartTimeout bounds a kube-apiserver start-up: it installs its
// bootstrap roles and flow-control configuration in etcd before /readyz
// answers, which takes longer than the other servers on a loaded machine.
const kubeStartTimeout = 3 * time.Minute

// kubeServiceAccountTokenTTL is the lifetime of the tokens
// ServiceAccountTokenFile requests.
const kubeServiceAccountTokenTTL = time.Hour

// Kube is a running Kubernetes API server (kube-apiserver) with its own etcd
// member, and nothing else of a cluster: no controller manager, scheduler or
// kubelet. Objects are stored as written; nothing reconciles them (a
// namespace being deleted stays Terminating, a Service gets no
// EndpointSlices, a ServiceAccount no token Secret).
//
// Requests are authorized by RBAC (and the Node authorizer), so a client that
// is not the admin can do only what its role bindings grant. The admin is a
// static token user in the system:masters group. Tokens for ServiceAccounts
// come from the TokenRequest API (ServiceAccountTokenFile).
//
// The server's listener has a certificate for 127.0.0.1, ::1 and localhost
// from a CA made for the test (CAFile). It is stopped at the end of the test.
type Kube struct {
	// URL is the API server's address, "https://127.0.0.1:port".
	URL string
	// CAFile is the PEM file of the CA certificate a client must trust to
	// reach URL.
	CAFile string

	server         *Server
	etcd           *Server
	dir            string
	adminToken     string
	adminTokenFile string

	mu         sync.Mutex
	kubeconfig string // written on first use
}

// StartKube starts an etcd member and kube-apiserver on free 127.0.0.1
// ports and waits until the API server is ready (/readyz), which includes
// its bootstrap RBAC roles being in place.
func StartKube(t TB) *Kube {
	t.Helper()
	bin := Binary(t, "kube-apiserver")
	etcd := Etcd(t)
	dir := dataDir(t, "kube-apiserver")
	certs := newTestCA(t, dir)
	port := FreePort(t)
	k := &Kube{
		URL:            "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		CAFile:         certs.caFile,
		etcd:           etcd,
		dir:            dir,
		adminToken:     randomHex(t, 32),
		adminTokenFile: filepath.Join(dir, "admin.token"),
	}
	writeFile(t, k.adminTokenFile, k.adminToken)
	// Static tokens: token,user,uid,"groups".
	tokens := filepath.Join(dir, "tokens.csv")
	writeFile(t, tokens, k.adminToken+`,tollgate-test-admin,tollgate-test-admin,"system:masters"`+"\n")
	saPublic, saPrivate := writeServiceAccountKeys(t, dir)

	k.server = &Server{
		name:         "kube-apiserver",
		bin:          bin,
		dataDir:      dir,
		Addr:         net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		startTimeout: kubeStartTimeout,
		args: []string{
			"--etcd-servers=http://" + etcd.Addr,
			// Unique per server, so a shared etcd would keep them apart.
			"--etcd-prefix=/tollgate-test-" + randomHex(t, 8),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(dir, "certs"),
			"--tls-cert-file=" + certs.certFile,
			"--tls-private-key-file=" + certs.keyFile,
			"--token-auth-file=" + tokens,
			"--authorization-mode=Node,RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + saPublic,
			"--service-account-signing-key-file=" + saPrivate,
			"--service-cluster-ip-range=10.96.0.0/16",
			// Pod admission would need the "default" ServiceAccount of
			// every namespace, which only the controller manager creates.
			"--disable-admission-plugins=ServiceAccount",
			// The endpoint reconciler would publish the advertise address
			// in the "kubernetes" Service's endpoints, and Kubernetes
			// refuses loopback addresses there.
			"--endpoint-reconciler-type=none",
			"--profiling=false",
		},
	}
	k.server.ready = k.ready
	launch(t, k.server)
	return k
}

// ready probes /readyz as the admin.
func (k *Kube) ready(ctx context.Context) error {
	client, err := k.httpClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL+"/readyz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+k.adminToken)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s: %s", resp.Status, body.String())
	}
	return nil
}

// httpClient is an HTTP client that trusts the API server's CA.
func (k *Kube) httpClient() (*http.Client, error) {
	pem, err := os.ReadFile(k.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", k.CAFile)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}, nil
}

// AdminConfig is a client configuration for the admin, a member of
// system:masters, whom RBAC allows everything. Rate limits are raised so
// tests are not throttled; there is no client timeout (it would end
// watches too), so requests are bounded by their contexts.
func (k *Kube) AdminConfig() *rest.Config {
	return &rest.Config{
		Host:            k.URL,
		BearerToken:     k.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile},
		QPS:             200,
		Burst:           400,
	}
}

// Client is a clientset for the admin.
func (k *Kube) Client(t TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatalf("kubernetes client: %v", err)
	}
	return c
}

// AdminTokenFile is the path of a file holding the admin's bearer token.
func (k *Kube) AdminTokenFile() string { return k.adminTokenFile }

// Kubeconfig returns the path of a kubeconfig file for the admin, for
// kubectl.
func (k *Kube) Kubeconfig(t TB) string {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kubeconfig != "" {
		return k.kubeconfig
	}
	// JSON is YAML, so kubectl reads this as it reads any kubeconfig.
	type named struct {
		Name    string         `json:"name"`
		Cluster map[string]any `json:"cluster,omitempty"`
		User    map[string]any `json:"user,omitempty"`
		Context map[string]any `json:"context,omitempty"`
	}
	cfg := map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []named{{Name: "tollgate-test", Cluster: map[string]any{
			"server":                k.URL,
			"certificate-authority": k.CAFile,
		}}},
		"users": []named{{Name: "tollgate-test-admin", User: map[string]any{
			"tokenFile": k.adminTokenFile,
		}}},
		"contexts": []named{{Name: "tollgate-test", Context: map[string]any{
			"cluster": "tollgate-test",
			"user":    "tollgate-test-admin",
		}}},
		"current-context": "tollgate-test",
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	p := filepath.Join(k.dir, "kubeconfig")
	writeFile(t, p, string(b)+"\n")
	k.kubeconfig = p
	return p
}

// Kubectl runs the kubectl that `make testdeps` builds, as the admin, and
// returns its standard output. A failure's error includes its standard
// error.
func (k *Kube) Kubectl(t TB, args ...string) (string, error) {
	t.Helper()
	bin := Binary(t, "kubectl")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The discovery cache goes to the test's directory, not $HOME.
	common := []string{"--kubeconfig=" + k.Kubeconfig(t), "--cache-dir=" + filepath.Join(k.dir, "kubectl-cache")}
	cmd := exec.CommandContext(ctx, bin, append(common, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// ServiceAccountTokenFile creates the namespace and the ServiceAccount
// namespace/name unless they exist, requests a token for it (valid for an
// hour) and returns the path of a file holding it. The account can do only
// what role bindings grant it.
func (k *Kube) ServiceAccountTokenFile(t TB, namespace, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := k.Client(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create service account %s/%s: %v", namespace, name, err)
	}
	ttl := int64(kubeServiceAccountTokenTTL / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for service account %s/%s: %v", namespace, name, err)
	}
	if tr.Status.Token == "" {
		t.Fatalf("token for service account %s/%s: empty token in the response", namespace, name)
	}
	f, err := os.CreateTemp(t.TempDir(), namespace+"-"+name+"-*.token")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(tr.Status.Token); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// Stop stops the API server gracefully; its etcd member keeps running.
func (k *Kube) Stop(t TB) { t.Helper(); k.server.Stop(t) }

// Start starts a stopped API server again on the same port, with the same
// etcd data, and waits until it is ready.
func (k *Kube) Start(t TB) { t.Helper(); k.server.Start(t) }

// Log returns the API server's output so far.
func (k *Kube) Log() string { return k.server.Log() }

// Etcd is the API server's etcd member, for tests of a store outage.
func (k *Kube) Etcd() *Server { return k.etcd }

// writeServiceAccountKeys makes the key pair the API server signs and
// verifies ServiceAccount tokens with, and returns the paths of the public
// and the private key.
func writeServiceAccountKeys(t TB, dir string) (public, private string) {
	t.Helper()
	key := newKey(t)
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("service account key: %v", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("service account key: %v", err)
	}
	public, private = filepath.Join(dir, "sa.pub.pem"), filepath.Join(dir, "sa.key.pem")
	writePEM(t, public, "PUBLIC KEY", pubDER)
	writePEM(t, private, "PRIVATE KEY", privDER)
	return public, private
}

func randomHex(t TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKey(t TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return k
}

func writePEM(t TB, path, typ string, der []byte) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
