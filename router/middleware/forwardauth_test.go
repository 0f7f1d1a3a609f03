package middleware

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// authSeen is what the authentication server saw of its last request.
type authSeen struct {
	mu     sync.Mutex
	method string
	uri    string
	header http.Header
	body   string
	n      int
}

func (a *authSeen) get() (string, string, http.Header, string, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.method, a.uri, a.header, a.body, a.n
}

// newAuthServer serves answer after recording the request in the
// returned authSeen.
func newAuthServer(t *testing.T, answer http.HandlerFunc) (*httptest.Server, *authSeen) {
	t.Helper()
	seen := &authSeen{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen.mu.Lock()
		seen.method, seen.uri, seen.header, seen.body = r.Method, r.RequestURI, r.Header.Clone(), string(b)
		seen.n++
		seen.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, seen
}

// countingBackend answers like echoSeen, with the body it received in
// the X-Body response header, and counts its requests.
func countingBackend(hits *atomic.Int32, extra func(http.ResponseWriter)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Body", string(b))
		if extra != nil {
			extra(w)
		}
		echoSeen.ServeHTTP(w, r)
	})
}

// newForwardAuthFront serves forwardAuth cfg in front of next until the
// test ends.
func newForwardAuthFront(t *testing.T, cfg *config.ForwardAuth, next http.Handler) *httptest.Server {
	t.Helper()
	clients := NewAuthClients()
	t.Cleanup(clients.Close)
	h, _, err := NewForwardAuth(next, cfg, clients, nil)
	if err != nil {
		t.Fatalf("NewForwardAuth: %v", err)
	}
	return newFrontServer(t, h, false)
}

func TestForwardAuth(t *testing.T) {
	allow := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-User", "alice")
		w.Header().Add("X-Auth-Id", "7")
		w.Header().Set("X-Auth-Role", "admin")
		w.Header().Set("X-Other", "not copied")
		w.Header().Add("Set-Cookie", "session=fromauth; Path=/")
		w.Header().Add("Set-Cookie", "other=fromauth")
		_, _ = io.WriteString(w, "ignored")
	}
	deny := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reason", "expired")
		w.Header().Set("Location", "/login?next=1")
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusFound)
		_, _ = io.WriteString(w, "log in first")
	}
	i64 := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name    string
		answer  http.HandlerFunc
		cfg     config.ForwardAuth
		method  string
		body    string
		header  http.Header
		backend func(http.ResponseWriter)
		check   func(t *testing.T, auth *httptest.Server, resp *http.Response, body []byte, seen *authSeen, hits int32)
	}{
		{
			name: "allowed", answer: allow,
			check: func(t *testing.T, _ *httptest.Server, resp *http.Response, body []byte, seen *authSeen, hits int32) {
				method, uri, _, _, n := seen.get()
				if resp.StatusCode != 200 || hits != 1 || n != 1 || method != "GET" || uri != "/verify?k=v" {
					t.Errorf("status %d, backend hits %d, auth calls %d (%s %s); want 200, 1, 1 (GET /verify?k=v)", resp.StatusCode, hits, n, method, uri)
				}
				s := decodeSeen(t, body)
				if s.Header.Get("X-User") != "" || s.Header.Get("X-Other") != "" {
					t.Errorf("headers copied without being asked for: %v", s.Header)
				}
				if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
					t.Errorf("cookies of the auth server reached the client: %q", got)
				}
			},
		},
		{
			name: "denied", answer: deny,
			check: func(t *testing.T, auth *httptest.Server, resp *http.Response, body []byte, _ *authSeen, hits int32) {
				if resp.StatusCode != http.StatusFound || string(body) != "log in first" || hits != 0 {
					t.Errorf("got %d %q with %d backend hits, want 302 \"log in first\" and none", resp.StatusCode, body, hits)
				}
				if got := resp.Header.Get("X-Reason"); got != "expired" {
					t.Errorf("X-Reason = %q, want the auth server's", got)
				}
				if got, want := resp.Header.Get("Location"), auth.URL+"/login?next=1"; got != want {
					t.Errorf("Location = %q, want %q", got, want)
				}
				if resp.Close {
					t.Error("the auth server's Connection header reached the client")
				}
			},
		},
		{
			name: "denied, Location preserved", answer: deny, cfg: config.ForwardAuth{PreserveLocationHeader: true},
			check: func(t *testing.T, _ *httptest.Server, resp *http.Response, _ []byte, _ *authSeen, _ int32) {
				if got := resp.Header.Get("Location"); got != "/login?next=1" {
					t.Errorf("Location = %q, want it as the auth server sent it", got)
				}
			},
		},
		{
			name: "denied with 401 and no Location",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
				http.Error(w, "who are you", http.StatusUnauthorized)
			},
			check: func(t *testing.T, _ *httptest.Server, resp *http.Response, body []byte, _ *authSeen, hits int32) {
				if resp.StatusCode != 401 || string(body) != "who are you\n" || hits != 0 || resp.Header.Get("Location") != "" {
					t.Errorf("got %d %q, Location %q, %d backend hits", resp.StatusCode, body, resp.Header.Get("Location"), hits)
				}
				if resp.Header.Get("Www-Authenticate") == "" {
					t.Error("WWW-Authenticate of the auth server is missing")
				}
			},
		},
		{
			name: "response headers listed", answer: allow,
			cfg:    config.ForwardAuth{AuthResponseHeaders: []string{"x-user", "X-Absent"}},
			header: http.Header{"X-User": {"mallory"}, "X-Absent": {"forged"}},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, body []byte, _ *authSeen, _ int32) {
				s := decodeSeen(t, body)
				if got := s.Header.Values("X-User"); !slices.Equal(got, []string{"alice"}) {
					t.Errorf("X-User = %q, want the auth server's only", got)
				}
				if got := s.Header.Values("X-Absent"); got != nil {
					t.Errorf("the client's X-Absent reached the backend: %q", got)
				}
				if s.Header.Get("X-Other") != "" {
					t.Error("X-Other was copied")
				}
			},
		},
		{
			name: "response headers by regex", answer: allow,
			cfg:    config.ForwardAuth{AuthResponseHeadersRegex: "^X-Auth-"},
			header: http.Header{"X-Auth-Admin": {"yes"}, "X-Auth-Id": {"1"}},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, body []byte, _ *authSeen, _ int32) {
				s := decodeSeen(t, body)
				if s.Header.Get("X-Auth-Id") != "7" || s.Header.Get("X-Auth-Role") != "admin" || s.Header.Get("X-Auth-Admin") != "" {
					t.Errorf("backend headers %v: want X-Auth-Id 7, X-Auth-Role admin, no X-Auth-Admin", s.Header)
				}
				if s.Header.Get("X-User") != "" {
					t.Error("X-User was copied")
				}
			},
		},
		{
			name: "headerField", answer: allow,
			cfg:    config.ForwardAuth{HeaderField: "x-user"},
			header: http.Header{"X-User": {"mallory"}},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, body []byte, _ *authSeen, _ int32) {
				if got := decodeSeen(t, body).Header.Values("X-User"); !slices.Equal(got, []string{"alice"}) {
					t.Errorf("X-User = %q, want alice", got)
				}
			},
		},
		{
			name: "headerField the auth server does not set", answer: func(http.ResponseWriter, *http.Request) {},
			cfg:    config.ForwardAuth{HeaderField: "X-User"},
			header: http.Header{"X-User": {"mallory"}},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, body []byte, _ *authSeen, _ int32) {
				if got := decodeSeen(t, body).Header.Values("X-User"); got != nil {
					t.Errorf("X-User = %q, want none", got)
				}
			},
		},
		{
			name: "all request headers sent", answer: allow,
			header: http.Header{"Cookie": {"a=1"}, "X-Secret": {"s"}, "Connection": {"X-Hop"}, "X-Hop": {"h"}},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, _ []byte, seen *authSeen, _ int32) {
				_, _, h, _, _ := seen.get()
				if h.Get("Cookie") != "a=1" || h.Get("X-Secret") != "s" {
					t.Errorf("auth server saw %v, want Cookie and X-Secret", h)
				}
				if h.Get("X-Hop") != "" {
					t.Error("a header the Connection header names reached the auth server")
				}
			},
		},
		{
			name: "request headers filtered", answer: allow,
			cfg:    config.ForwardAuth{AuthRequestHeaders: []string{"cookie", "Authorization"}},
			header: http.Header{"Cookie": {"a=1"}, "X-Secret": {"s"}},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, body []byte, seen *authSeen, _ int32) {
				_, _, h, _, _ := seen.get()
				if h.Get("Cookie") != "a=1" || h.Get("X-Secret") != "" || h.Get("Authorization") != "" {
					t.Errorf("auth server saw %v, want Cookie only (and X-Forwarded-*)", h)
				}
				if h.Get("X-Forwarded-Method") != "GET" {
					t.Error("X-Forwarded-Method is missing with authRequestHeaders")
				}
				if decodeSeen(t, body).Header.Get("X-Secret") != "s" {
					t.Error("the backend lost X-Secret")
				}
			},
		},
		{
			name: "cookies added", answer: allow,
			cfg: config.ForwardAuth{AddAuthCookiesToResponse: []string{"session", "absent"}},
			backend: func(w http.ResponseWriter) {
				w.Header().Add("Set-Cookie", "session=frombackend")
				w.Header().Add("Set-Cookie", "keep=1")
			},
			check: func(t *testing.T, _ *httptest.Server, resp *http.Response, _ []byte, _ *authSeen, _ int32) {
				got := resp.Header.Values("Set-Cookie")
				if want := []string{"keep=1", "session=fromauth; Path=/"}; !slices.Equal(got, want) {
					t.Errorf("Set-Cookie = %q, want %q", got, want)
				}
			},
		},
		{
			name: "body forwarded", answer: allow, method: "POST", body: "hello",
			cfg: config.ForwardAuth{ForwardBody: true, MaxBodySize: i64(5)},
			check: func(t *testing.T, _ *httptest.Server, resp *http.Response, _ []byte, seen *authSeen, hits int32) {
				method, _, _, body, _ := seen.get()
				if body != "hello" || method != "GET" {
					t.Errorf("auth server got %s %q, want GET \"hello\"", method, body)
				}
				if got := resp.Header.Get("X-Body"); got != "hello" || hits != 1 {
					t.Errorf("backend got %q in %d hits, want the whole body once", got, hits)
				}
			},
		},
		{
			name: "body not forwarded by default", answer: allow, method: "POST", body: "hello",
			check: func(t *testing.T, _ *httptest.Server, resp *http.Response, _ []byte, seen *authSeen, _ int32) {
				if _, _, _, body, _ := seen.get(); body != "" {
					t.Errorf("auth server got %q, want no body", body)
				}
				if got := resp.Header.Get("X-Body"); got != "hello" {
					t.Errorf("backend got %q", got)
				}
			},
		},
		{
			name: "body too large", answer: allow, method: "POST", body: "hello!",
			cfg: config.ForwardAuth{ForwardBody: true, MaxBodySize: i64(5)},
			check: func(t *testing.T, _ *httptest.Server, resp *http.Response, _ []byte, seen *authSeen, hits int32) {
				if _, _, _, _, n := seen.get(); resp.StatusCode != 401 || hits != 0 || n != 0 {
					t.Errorf("got %d with %d backend hits and %d auth calls, want 401 and none", resp.StatusCode, hits, n)
				}
			},
		},
		{
			name: "method preserved", answer: allow, method: "DELETE",
			cfg: config.ForwardAuth{PreserveRequestMethod: true},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, body []byte, seen *authSeen, _ int32) {
				if method, _, h, _, _ := seen.get(); method != "DELETE" || h.Get("X-Forwarded-Method") != "DELETE" {
					t.Errorf("auth server got %s, X-Forwarded-Method %q; want DELETE", method, h.Get("X-Forwarded-Method"))
				}
				if decodeSeen(t, body).Method != "DELETE" {
					t.Error("the backend did not get DELETE")
				}
			},
		},
		{
			name: "forwarded headers from the request", answer: allow, method: "PUT",
			header: http.Header{"X-Forwarded-For": {"10.9.9.9"}, "X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Uri": {"/evil"}, "X-Forwarded-Method": {"GET"}, "X-Forwarded-Port": {"1"}},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, _ []byte, seen *authSeen, _ int32) {
				_, _, h, _, _ := seen.get()
				want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "front.example", "X-Forwarded-Proto": "http", "X-Forwarded-Uri": "/p/a%20b?q=1&r=%2F", "X-Forwarded-Method": "PUT", "X-Forwarded-Port": ""}
				for k, v := range want {
					if got := strings.Join(h.Values(k), "|"); got != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
			},
		},
		{
			name: "forwarded headers trusted", answer: allow, method: "PUT",
			cfg:    config.ForwardAuth{TrustForwardHeader: true},
			header: http.Header{"X-Forwarded-For": {"10.9.9.9"}, "X-Forwarded-Host": {"app.example"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Uri": {"/orig"}, "X-Forwarded-Method": {"PATCH"}, "X-Forwarded-Port": {"8443"}},
			check: func(t *testing.T, _ *httptest.Server, _ *http.Response, _ []byte, seen *authSeen, _ int32) {
				_, _, h, _, _ := seen.get()
				want := map[string]string{"X-Forwarded-For": "10.9.9.9, 127.0.0.1", "X-Forwarded-Host": "app.example", "X-Forwarded-Proto": "https", "X-Forwarded-Uri": "/orig", "X-Forwarded-Method": "PATCH", "X-Forwarded-Port": "8443"}
				for k, v := range want {
					if got := strings.Join(h.Values(k), "|"); got != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, seen := newAuthServer(t, tc.answer)
			var hits atomic.Int32
			cfg := tc.cfg
			cfg.Address = auth.URL + "/verify?k=v"
			front := newForwardAuthFront(t, &cfg, countingBackend(&hits, tc.backend))
			req, err := http.NewRequest(cmpOr(tc.method, "GET"), front.URL+"/p/a%20b?q=1&r=%2F", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "front.example"
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, body := fetchResponse(t, frontClient(front), req)
			tc.check(t, auth, resp, body, seen, hits.Load())
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestForwardAuthServerDown answers 500 without calling the backend when
// the authentication server cannot be reached.
func TestForwardAuthServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var hits atomic.Int32
	front := newForwardAuthFront(t, &config.ForwardAuth{Address: "http://" + addr + "/verify"}, countingBackend(&hits, nil))
	resp, _ := fetchResponse(t, frontClient(front), frontRequest(t, "GET", front.URL+"/", nil))
	if resp.StatusCode != 500 || hits.Load() != 0 {
		t.Errorf("got %d with %d backend hits, want 500 and none", resp.StatusCode, hits.Load())
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	pool                                                 *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca := testcert.NewCA(t, testcert.Spec{CommonName: "Test CA", Serial: 1})
	p := &testPKI{caFile: ca.WriteCert(t, dir, "ca"), pool: ca.Pool()}
	leaf := func(name string, serial int64, usage testcert.Usage) (string, string) {
		return ca.Issue(t, testcert.Spec{CommonName: name, Names: []string{"127.0.0.1"}, Serial: serial, Usage: usage}).WriteFiles(t, dir, name)
	}
	p.serverCert, p.serverKey = leaf("server", 2, testcert.Server)
	p.clientCert, p.clientKey = leaf("client", 3, testcert.Client)
	return p
}

// TestForwardAuthTLS calls an https authentication server that requires
// a client certificate, trusting it through the configured CA.
func TestForwardAuthTLS(t *testing.T) {
	pki := newTestPKI(t)
	auth := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusForbidden)
			return
		}
		w.Header().Set("X-User", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	pair, err := tls.LoadX509KeyPair(pki.serverCert, pki.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	auth.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pki.pool}
	auth.StartTLS()
	t.Cleanup(auth.Close)

	for _, tc := range []struct {
		name   string
		tls    *config.ClientTLS
		status int
		user   string
	}{
		{"system roots refuse the test CA", nil, 500, ""},
		{"CA", &config.ClientTLS{CA: pki.caFile}, 403, ""},
		{"CA and client certificate", &config.ClientTLS{CA: pki.caFile, Cert: pki.clientCert, Key: pki.clientKey}, 200, "client"},
		{"insecureSkipVerify and client certificate", &config.ClientTLS{InsecureSkipVerify: true, Cert: pki.clientCert, Key: pki.clientKey}, 200, "client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			front := newForwardAuthFront(t, &config.ForwardAuth{Address: auth.URL, TLS: tc.tls, AuthResponseHeaders: []string{"X-User"}}, countingBackend(&hits, nil))
			resp, body := fetchResponse(t, frontClient(front), frontRequest(t, "GET", front.URL+"/", nil))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 200 {
				if got := decodeSeen(t, body).Header.Get("X-User"); got != tc.user {
					t.Errorf("X-User = %q, want %q", got, tc.user)
				}
			} else if hits.Load() != 0 {
				t.Errorf("backend called %d times", hits.Load())
			}
		})
	}
}

// TestForwardAuthBadTLSFiles reports a CA file that does not exist.
func TestForwardAuthBadTLSFiles(t *testing.T) {
	clients := NewAuthClients()
	defer clients.Close()
	_, _, err := NewForwardAuth(http.NotFoundHandler(), &config.ForwardAuth{Address: "https://auth.example", TLS: &config.ClientTLS{CA: filepath.Join(t.TempDir(), "none.pem")}}, clients, nil)
	if err == nil || !strings.Contains(err.Error(), "none.pem does not exist") {
		t.Errorf("err = %v, want one naming the missing file", err)
	}
}

// TestAuthClientsShared gives middlewares with the same TLS settings one
// client, and closes the idle connections of a retired one.
func TestAuthClientsShared(t *testing.T) {
	var conns atomic.Int32
	auth := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	auth.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			conns.Add(-1)
		} else if s == http.StateNew {
			conns.Add(1)
		}
	}
	auth.Start()
	t.Cleanup(auth.Close)
	clients := NewAuthClients()
	defer clients.Close()
	cfg := &config.ForwardAuth{Address: auth.URL}
	h1, k1, err := NewForwardAuth(echoSeen, cfg, clients, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, k2, err := NewForwardAuth(echoSeen, cfg, clients, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k1.c != k2.c {
		t.Error("two middlewares with the same settings got different clients")
	}
	h1.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if conns.Load() != 1 {
		t.Fatalf("%d open connections to the auth server, want 1 idle", conns.Load())
	}
	clients.Keep([]*ForwardAuthHandle{k1})
	if conns.Load() != 1 {
		t.Fatal("a kept client lost its idle connection")
	}
	clients.Keep(nil)
	// A request of the retired client in flight closes its connection
	// when it ends.
	h1.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	deadline := time.Now().Add(5 * time.Second)
	for conns.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections of a retired client are still open", n)
	}
}
