package router

import (
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// applyDoc returns a router that applied doc.
func applyDoc(t testing.TB, doc string) *Router {
	t.Helper()
	cfg, err := parseConfigErr(doc)
	if err != nil {
		t.Fatal(err)
	}
	rt := New(Config{})
	t.Cleanup(rt.Close)
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	return rt
}

// serveN sends n GET requests to h and counts them by the X-Backend of
// the answer ("" for none) and by status.
func serveN(h http.Handler, n int) (byBackend map[string]int, byStatus map[int]int) {
	byBackend, byStatus = map[string]int{}, map[int]int{}
	for range n {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/", nil))
		byBackend[rec.Header().Get("X-Backend")]++
		byStatus[rec.Code]++
	}
	return byBackend, byStatus
}

// lbs defines one loadBalancer service per name, each over its own
// backend answering with the name.
func lbs(t *testing.T, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "[[http.services.%s.loadBalancer.servers]]\nurl = %q\n", n, backendServer(t, n).URL)
	}
	return b.String()
}

func TestWeightedRatios(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want map[string]float64 // share of the requests by backend
	}{
		{"3:1", `
[http.services.s.weighted]
services = [{name = "a", weight = 3}, {name = "b", weight = 1}]
`, map[string]float64{"a": 0.75, "b": 0.25}},
		{"1:1:2", `
[http.services.s.weighted]
services = [{name = "a", weight = 1}, {name = "b", weight = 1}, {name = "c", weight = 2}]
`, map[string]float64{"a": 0.25, "b": 0.25, "c": 0.5}},
		{"weight 0", `
[http.services.s.weighted]
services = [{name = "a"}, {name = "b", weight = 0}, {name = "c"}]
`, map[string]float64{"a": 0.5, "c": 0.5}},
		{"nested", `
[http.services.s.weighted]
services = [{name = "inner", weight = 2}, {name = "c", weight = 2}]
[http.services.inner.weighted]
services = [{name = "a", weight = 1}, {name = "b", weight = 1}]
`, map[string]float64{"a": 0.25, "b": 0.25, "c": 0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := applyDoc(t, catchAll+tc.doc+lbs(t, "a", "b", "c"))
			const n = 10_000
			got, statuses := serveN(rt.Handler("web"), n)
			if statuses[http.StatusOK] != n {
				t.Fatalf("statuses %v, want %d × 200", statuses, n)
			}
			for backend, count := range got {
				share := float64(count) / n
				if math.Abs(share-tc.want[backend]) > 0.02 {
					t.Errorf("backend %q got %.3f of the requests, want %.3f", backend, share, tc.want[backend])
				}
			}
		})
	}
}

// stickyGet sends a GET with the cookies in jar and records the ones set.
func stickyGet(t *testing.T, h http.Handler, jar map[string]*http.Cookie) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	for _, c := range jar {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		jar[c.Name] = c
	}
	return rec.Header().Get("X-Backend")
}

func TestWeightedSticky(t *testing.T) {
	rt := applyDoc(t, catchAll+`
[http.services.s.weighted]
services = [{name = "a"}, {name = "inner"}]
[http.services.s.weighted.sticky.cookie]
name = "outer"
[http.services.inner.weighted]
services = [{name = "b"}, {name = "c"}]
[http.services.inner.weighted.sticky.cookie]
name = "inner"
`+lbs(t, "a", "b", "c"))
	h := rt.Handler("web")
	seen := map[string]bool{}
	for client := range 6 {
		jar := map[string]*http.Cookie{}
		first := stickyGet(t, h, jar)
		seen[first] = true
		if jar["outer"] == nil || strings.Contains(jar["outer"].Value, "inner") {
			t.Fatalf("client %d: outer cookie %v, want one that does not reveal the child's name", client, jar["outer"])
		}
		for range 5 {
			if got := stickyGet(t, h, jar); got != first {
				t.Fatalf("client %d with cookies %v went to %q, want %q", client, jar, got, first)
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("new clients went to %v, want all of a, b and c", seen)
	}
}

func TestWeightedHealth(t *testing.T) {
	good := backendServer(t, "good")
	dead := deadServerURL(t)
	rt := applyDoc(t, fmt.Sprintf(catchAll+`
[http.routers.none]
rule = "PathPrefix(`+"`/none`"+`)"
service = "none"
[http.services.s.weighted]
healthCheck = {}
services = [{name = "good"}, {name = "dead", weight = 5}]
[http.services.none.weighted]
healthCheck = {}
services = [{name = "dead"}]
[http.services.good.loadBalancer.passiveHealthCheck]
[[http.services.good.loadBalancer.servers]]
url = %q
[http.services.dead.loadBalancer.passiveHealthCheck]
failureWindow = "1m"
[[http.services.dead.loadBalancer.servers]]
url = %q
`, good.URL, dead))
	h := rt.Handler("web")
	// The dead child fails once, is ejected, and is skipped from then on.
	_, statuses := serveN(h, 100)
	if statuses[http.StatusOK] < 99 {
		t.Fatalf("statuses %v: want the dead child skipped after its first failure", statuses)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/none", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("no child up: status %d, want 503", rec.Code)
	}
	g := rt.current.Load()
	if !g.handlers["s"].up() || g.handlers["none"].up() {
		t.Errorf("up: s %v none %v, want true false", g.handlers["s"].up(), g.handlers["none"].up())
	}
}

// mirrorServer counts the requests it receives, records their bodies, and
// blocks each until release is closed (nil: answers at once).
type mirrorServer struct {
	*httptest.Server
	received, done atomic.Int32
	mu             sync.Mutex
	bodies         []string
}

func newMirrorServer(t *testing.T, status int, release chan struct{}) *mirrorServer {
	m := &mirrorServer{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		m.bodies = append(m.bodies, string(body))
		m.mu.Unlock()
		m.received.Add(1)
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		m.done.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(m.Close)
	return m
}

func mirrorDoc(main, mirror string, percent int, extra string) string {
	return fmt.Sprintf(catchAll+`
[http.services.s.mirroring]
service = "main"
%s
[[http.services.s.mirroring.mirrors]]
name = "mirror"
percent = %d
[[http.services.main.loadBalancer.servers]]
url = %q
[[http.services.mirror.loadBalancer.servers]]
url = %q
`, extra, percent, main, mirror)
}

func TestMirroringPercent(t *testing.T) {
	for _, percent := range []int{0, 1, 30, 50, 100} {
		t.Run(fmt.Sprint(percent), func(t *testing.T) {
			main := backendServer(t, "main")
			mirror := newMirrorServer(t, http.StatusOK, nil)
			rt := applyDoc(t, mirrorDoc(main.URL, mirror.URL, percent, ""))
			got, statuses := serveN(rt.Handler("web"), 200)
			if got["main"] != 200 || statuses[http.StatusOK] != 200 {
				t.Fatalf("main got %v with statuses %v, want all 200 requests", got, statuses)
			}
			want := int32(2 * percent)
			waitFor(t, "the mirror requests", func() bool { return mirror.done.Load() >= want })
			rt.Close() // waits for the mirror requests in flight
			if n := mirror.received.Load(); n != want {
				t.Errorf("the mirror got %d of 200 requests, want %d", n, want)
			}
		})
	}
}

// TestMirroringSlowMirror shows that the main answers complete while the
// mirror holds every copy, that copies beyond maxMirrorsInFlight are
// dropped and counted, and logs the median latency of main without a
// mirror, with a quick one and with the slow one.
func TestMirroringSlowMirror(t *testing.T) {
	main := backendServer(t, "main")
	release := make(chan struct{})
	slow := newMirrorServer(t, http.StatusOK, release)
	t.Cleanup(func() { close(release) }) // runs before slow.Close
	quick := newMirrorServer(t, http.StatusOK, nil)
	plain := applyDoc(t, catchAll+fmt.Sprintf("[[http.services.s.loadBalancer.servers]]\nurl = %q\n", main.URL))
	withQuick := applyDoc(t, mirrorDoc(main.URL, quick.URL, 100, ""))
	rt := applyDoc(t, mirrorDoc(main.URL, slow.URL, 100, ""))
	const n = maxMirrorsInFlight + 100
	median := func(h http.Handler) time.Duration {
		var took []time.Duration
		for range n {
			start := time.Now()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://example.com/", strings.NewReader("payload")))
			took = append(took, time.Since(start))
			if rec.Code != http.StatusOK || rec.Body.String() != "main" {
				t.Fatalf("main answered %d %q", rec.Code, rec.Body)
			}
		}
		slices.Sort(took)
		return took[n/2]
	}
	without, withQuickMirror := median(plain.Handler("web")), median(withQuick.Handler("web"))
	withSlow := median(rt.Handler("web"))
	if d := slow.done.Load(); d != 0 {
		t.Fatalf("%d mirror requests completed, want none: they are held", d)
	}
	waitFor(t, "the mirror requests to arrive", func() bool { return slow.received.Load() == maxMirrorsInFlight })
	if d := rt.current.Load().handlers["s"].(*mirroring).dropped.Load(); d != n-maxMirrorsInFlight {
		t.Errorf("%d copies dropped, want %d beyond the %d in flight", d, n-maxMirrorsInFlight, maxMirrorsInFlight)
	}
	t.Logf("median latency of main over %d requests: %v without a mirror, %v with a quick mirror, %v with a mirror that holds every copy", n, without, withQuickMirror, withSlow)
}

func TestMirroringFailingMirrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mirror func(t *testing.T) string
	}{
		{"mirror answers 500", func(t *testing.T) string { return newMirrorServer(t, http.StatusInternalServerError, nil).URL }},
		{"mirror down", deadServerURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			main := backendServer(t, "main")
			rt := applyDoc(t, mirrorDoc(main.URL, tc.mirror(t), 100, ""))
			got, statuses := serveN(rt.Handler("web"), 50)
			if got["main"] != 50 || statuses[http.StatusOK] != 50 {
				t.Errorf("the client saw %v %v, want 50 answers of main with 200", got, statuses)
			}
		})
	}
}

func TestMirroringBody(t *testing.T) {
	large := strings.Repeat("x", 2048)
	for _, tc := range []struct {
		name, extra, body string
		wantMirrored      []string
	}{
		{"body copied", "", "hello", []string{"hello"}},
		{"mirrorBody false", "mirrorBody = false", "hello", []string{""}},
		{"within maxBodySize", "maxBodySize = 2048", large, []string{large}},
		{"over maxBodySize", "maxBodySize = 1024", large, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mainBodies []string
			var mu sync.Mutex
			main := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				mainBodies = append(mainBodies, string(b))
				mu.Unlock()
			}))
			t.Cleanup(main.Close)
			mirror := newMirrorServer(t, http.StatusOK, nil)
			rt := applyDoc(t, mirrorDoc(main.URL, mirror.URL, 100, tc.extra))
			for _, sized := range []bool{true, false} { // with Content-Length, and chunked
				var body io.Reader = strings.NewReader(tc.body)
				if !sized {
					body = io.MultiReader(body)
				}
				req := httptest.NewRequest(http.MethodPost, "http://example.com/", body)
				if !sized {
					req.ContentLength = -1
				}
				rec := httptest.NewRecorder()
				rt.Handler("web").ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d", rec.Code)
				}
			}
			want := slices.Concat(tc.wantMirrored, tc.wantMirrored)
			waitFor(t, "the mirror requests", func() bool { return mirror.done.Load() >= int32(len(want)) })
			rt.Close() // ends the mirror requests in flight
			mirror.mu.Lock()
			defer mirror.mu.Unlock()
			if !slices.Equal(mirror.bodies, want) {
				t.Errorf("the mirror got %d bodies %.20q, want %.20q", len(mirror.bodies), mirror.bodies, want)
			}
			if !slices.Equal(mainBodies, []string{tc.body, tc.body}) {
				t.Errorf("main got bodies %.20q, want the body twice", mainBodies)
			}
		})
	}
}

// restartable is a backend on a fixed address that can be stopped and
// started again.
type restartable struct {
	t    *testing.T
	addr string
	name string
	mu   sync.Mutex
	srv  *httptest.Server
}

func newRestartable(t *testing.T, name string) *restartable {
	r := &restartable{t: t, name: name, addr: fmt.Sprintf("127.0.0.1:%d", testserver.FreePorts(t, 1)[0])}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Backend", r.name)
		fmt.Fprint(w, r.name)
	}))
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	r.mu.Lock()
	r.srv = s
	r.mu.Unlock()
}

func (r *restartable) stop() {
	r.mu.Lock()
	s := r.srv
	r.srv = nil
	r.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

func (r *restartable) url() string { return "http://" + r.addr }

func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name, check string
	}{
		{"passive", "[http.services.main.loadBalancer.passiveHealthCheck]\nfailureWindow = \"300ms\"\n"},
		{"active", "[http.services.main.loadBalancer.healthCheck]\npath = \"/\"\ninterval = \"50ms\"\ntimeout = \"40ms\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			main := newRestartable(t, "main")
			// Through New, Apply and Listen: real connections.
			r := serveConfig(t, fmt.Sprintf(catchAll+`
[http.services.s.failover]
service = "main"
fallback = "fallback"
%s
[[http.services.main.loadBalancer.servers]]
url = %q
`, tc.check, main.url())+lbs(t, "fallback"))
			url := r.url("web") + "/"
			h := r.rt.current.Load().handlers
			send := func(n int) map[string]int {
				got := map[string]int{}
				for range n {
					resp, err := http.Get(url)
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						got[fmt.Sprint(resp.StatusCode)]++
						continue
					}
					got[resp.Header.Get("X-Backend")]++
				}
				return got
			}
			if got := send(10); got["main"] != 10 {
				t.Fatalf("while main is up: %v, want all to main", got)
			}
			main.stop()
			failed, bodied, bodiedFailed := 0, 0, 0
			waitFor(t, "main to be seen down", func() bool {
				got := send(5)
				failed += 5 - got["fallback"]
				// A request with a body cannot be sent again: it fails
				// until main is seen down, as it would without the
				// move to the fallback on a refused connection.
				resp, err := http.Post(url, "text/plain", strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				bodied++
				if resp.StatusCode != http.StatusOK {
					bodiedFailed++
				}
				return !h["main"].up()
			})
			t.Logf("between main's end and its detection: %d of %d requests without a body failed, %d of %d with one", failed, failed+bodied*5, bodiedFailed, bodied)
			if got := send(20); got["fallback"] != 20 {
				t.Errorf("main down: %v, want all to the fallback", got)
			}
			if failed != 0 {
				t.Errorf("%d requests failed or went to main between main's end and its detection, want 0", failed)
			}
			main.start()
			waitFor(t, "traffic back on main", func() bool { return send(1)["main"] == 1 })
			if got := send(10); got["main"] != 10 {
				t.Errorf("main back: %v, want all to main", got)
			}
		})
	}
}

func TestServicesReload(t *testing.T) {
	backends := lbs(t, "a", "b", "mirror")
	doc := func(wa, wb int) string {
		return fmt.Sprintf(catchAll+`
[http.services.s.mirroring]
service = "w"
[[http.services.s.mirroring.mirrors]]
name = "mirror"
percent = 100
[http.services.w.weighted]
services = [{name = "a", weight = %d}, {name = "b", weight = %d}]
`, wa, wb) + backends
	}
	rt := New(Config{})
	defer rt.Close()
	for _, step := range []struct {
		wa, wb int
		want   string
	}{{1, 0, "a"}, {0, 1, "b"}, {1, 0, "a"}} {
		cfg, err := parseConfigErr(doc(step.wa, step.wb))
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		if got, _ := serveN(rt.Handler("web"), 20); got[step.want] != 20 {
			t.Fatalf("weights %d:%d: %v, want all to %s", step.wa, step.wb, got, step.want)
		}
	}
}

func BenchmarkWeighted(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	for _, bc := range []struct{ name, doc string }{
		{"loadBalancer", fmt.Sprintf("[[http.services.s.loadBalancer.servers]]\nurl = %q\n", backend.URL)},
		{"weighted of two loadBalancers", fmt.Sprintf(`
[http.services.s.weighted]
services = [{name = "a", weight = 3}, {name = "b", weight = 1}]
[[http.services.a.loadBalancer.servers]]
url = %q
[[http.services.b.loadBalancer.servers]]
url = %q
`, backend.URL, backend.URL)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rt := applyDoc(b, catchAll+bc.doc)
			h := rt.Handler("web")
			req := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
	// The choice alone, without the round trip that dominates the above.
	for _, check := range []bool{false, true} {
		b.Run(fmt.Sprintf("pick, healthCheck %v", check), func(b *testing.B) {
			hc := ""
			if check {
				hc = "healthCheck = {}\n[http.services.a.loadBalancer.passiveHealthCheck]\n[http.services.b.loadBalancer.passiveHealthCheck]\n"
			}
			rt := applyDoc(b, catchAll+fmt.Sprintf(`
[http.services.s.weighted]
services = [{name = "a", weight = 3}, {name = "b", weight = 1}]
%s
[[http.services.a.loadBalancer.servers]]
url = %q
[[http.services.b.loadBalancer.servers]]
url = %q
`, hc, backend.URL, backend.URL))
			w := rt.current.Load().handlers["s"].(*weighted)
			req := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			b.ReportAllocs()
			for b.Loop() {
				if c, _ := w.pick(req); c == nil {
					b.Fatal("no child")
				}
			}
		})
	}
}

// parseConfigErr parses a test configuration.
func parseConfigErr(doc string) (*config.Config, error) {
	return config.Parse("test.toml", []byte(doc))
}

// TestServicesCountedOnce checks that a request through nested services is
// counted once, under the innermost service that handled it.
func TestServicesCountedOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfigErr(catchAll + `
[http.routers.none]
rule = "PathPrefix(` + "`/none`" + `)"
service = "none"
[http.services.s.mirroring]
service = "w"
mirrors = [{ name = "a", percent = 100 }]
[http.services.w.weighted]
services = [{ name = "a" }, { name = "b" }]
[http.services.none.weighted]
services = [{ name = "a", weight = 0 }]
` + lbs(t, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	rt := New(Config{Metrics: m})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	h := rt.Handler("web")
	serveN(h, 10)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://example.com/none", nil))
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_http_requests_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var svc, code string
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "service":
					svc = l.GetValue()
				case "code":
					code = l.GetValue()
				}
			}
			got[svc+" "+code] += mt.GetCounter().GetValue()
		}
	}
	if want := map[string]float64{"a 200": 5, "b 200": 5, "none 503": 1}; !maps.Equal(got, want) {
		t.Errorf("tollgate_http_requests_total by service and code: %v, want %v", got, want)
	}
}

// TestFailoverRefusedNested sends requests whose connection a nested main
// service's server refuses to the fallback, without the sticky cookie of
// main's weighted service; a request with a body cannot be sent again and
// gets 502.
func TestFailoverRefusedNested(t *testing.T) {
	rt := applyDoc(t, fmt.Sprintf(catchAll+`
[http.services.s.failover]
service = "main"
fallback = "fallback"
[http.services.main.weighted]
healthCheck = {}
services = [{ name = "dead" }]
[http.services.main.weighted.sticky.cookie]
name = "pin"
[http.services.dead.loadBalancer.passiveHealthCheck]
maxFailedAttempts = 1000
[[http.services.dead.loadBalancer.servers]]
url = %q
`, deadServerURL(t))+lbs(t, "fallback"))
	h := rt.Handler("web")
	for range 5 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/", nil))
		if rec.Code != http.StatusOK || rec.Header().Get("X-Backend") != "fallback" || rec.Header().Get("Set-Cookie") != "" {
			t.Fatalf("got %d from %q with cookies %q, want 200 from the fallback without a cookie", rec.Code, rec.Header().Get("X-Backend"), rec.Header().Values("Set-Cookie"))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://example.com/", strings.NewReader("x")))
	if rec.Code != http.StatusBadGateway {
		t.Errorf("a request with a body: %d, want 502", rec.Code)
	}
}

// TestUnavailableStatus: a provider may ask a loadBalancer without an
// available server to answer another status than 503.
func TestUnavailableStatus(t *testing.T) {
	cfg, err := parseConfigErr(catchAll + `
[http.routers.none]
rule = "PathPrefix(` + "`/none`" + `)"
service = "none"
[http.services.none.loadBalancer]
servers = [{ url = "http://127.0.0.1:1", weight = 0 }]
[http.services.s.weighted]
services = [{ name = "a" }]
` + lbs(t, "a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{http.StatusServiceUnavailable, http.StatusInternalServerError} {
		if want != http.StatusServiceUnavailable {
			cfg.HTTP.Services["none"].LoadBalancer.UnavailableStatus = want
		}
		rt := New(Config{})
		if err := rt.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		rt.Handler("web").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/none", nil))
		rt.Close()
		if rec.Code != want {
			t.Errorf("status %d, want %d", rec.Code, want)
		}
	}
}
