package router

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// The test-side shapes of the API's answers carry Traefik v3's field
// names and the documented tollgate ones (marked): decoding with
// DisallowUnknownFields fails on any other, so a renamed field fails.

type tItem struct {
	Name     string   `json:"name"`
	Provider string   `json:"provider"`
	Status   string   `json:"status"`
	Error    []string `json:"error"`
}

type tRouter struct {
	tItem
	Rule        string   `json:"rule"`
	Priority    int      `json:"priority"`
	EntryPoints []string `json:"entryPoints"`
	Using       []string `json:"using"`
	Service     string   `json:"service"`
	Middlewares []string `json:"middlewares"`
	TLS         *struct {
		Options string `json:"options"`
		Domains []struct {
			Main string   `json:"main"`
			SANs []string `json:"sans"`
		} `json:"domains"`
	} `json:"tls"`
}

type tService struct {
	tItem
	Type         string `json:"type"`
	LoadBalancer struct {
		Servers []struct {
			URL    string `json:"url"`
			Weight int    `json:"weight"`
		} `json:"servers"`
		PassHostHeader *bool `json:"passHostHeader"`
		HealthCheck    *struct {
			Path     string            `json:"path"`
			Scheme   string            `json:"scheme"`
			Hostname string            `json:"hostname"`
			Port     int               `json:"port"`
			Interval string            `json:"interval"`
			Timeout  string            `json:"timeout"`
			Status   int               `json:"status"`
			Headers  map[string]string `json:"headers"`
		} `json:"healthCheck"`
		PassiveHealthCheck *struct {
			MaxFailedAttempts int    `json:"maxFailedAttempts"`
			FailureWindow     string `json:"failureWindow"`
		} `json:"passiveHealthCheck"`
		Sticky *struct {
			Cookie *struct {
				Name     string `json:"name"`
				Secure   bool   `json:"secure"`
				HTTPOnly bool   `json:"httpOnly"`
				SameSite string `json:"sameSite"`
				MaxAge   int    `json:"maxAge"`
				Path     string `json:"path"`
			} `json:"cookie"`
		} `json:"sticky"`
		ResponseForwarding *struct {
			FlushInterval string `json:"flushInterval"`
		} `json:"responseForwarding"`
	} `json:"loadBalancer"`
	Weighted *struct {
		Services []struct {
			Name   string `json:"name"`
			Weight int    `json:"weight"`
		} `json:"services"`
		Sticky *struct {
			Cookie *struct {
				Name string `json:"name"`
			} `json:"cookie"`
		} `json:"sticky"`
		HealthCheck *struct{} `json:"healthCheck"`
	} `json:"weighted"`
	Mirroring *struct {
		Service string `json:"service"`
		Mirrors []struct {
			Name    string `json:"name"`
			Percent int    `json:"percent"`
		} `json:"mirrors"`
		MirrorBody  bool      `json:"mirrorBody"`
		MaxBodySize int64     `json:"maxBodySize"`
		HealthCheck *struct{} `json:"healthCheck"`
	} `json:"mirroring"`
	Failover *struct {
		Service     string    `json:"service"`
		Fallback    string    `json:"fallback"`
		HealthCheck *struct{} `json:"healthCheck"`
	} `json:"failover"`
	ServerStatus map[string]string `json:"serverStatus"`
	UsedBy       []string          `json:"usedBy"`
	// tollgate
	MirrorsDropped int64 `json:"mirrorsDropped"`
	ServerDetails  []struct {
		URL     string `json:"url"`
		ID      string `json:"id"`
		Weight  int    `json:"weight"`
		Status  string `json:"status"`
		Healthy bool   `json:"healthy"`
		Ejected bool   `json:"ejected"`
	} `json:"serverDetails"`
}

type tMiddleware struct {
	tItem
	Type      string   `json:"type"`
	UsedBy    []string `json:"usedBy"`
	BasicAuth *struct {
		Users        []string `json:"users"`
		UsersFile    string   `json:"usersFile"`
		Realm        string   `json:"realm"`
		RemoveHeader bool     `json:"removeHeader"`
		HeaderField  string   `json:"headerField"`
	} `json:"basicAuth"`
	Headers *struct {
		CustomRequestHeaders  map[string]string `json:"customRequestHeaders"`
		CustomResponseHeaders map[string]string `json:"customResponseHeaders"`
		STSSeconds            int64             `json:"stsSeconds"`
		FrameDeny             bool              `json:"frameDeny"`
	} `json:"headers"`
	Chain *struct {
		Middlewares []string `json:"middlewares"`
	} `json:"chain"`
	StripPrefix *struct {
		Prefixes []string `json:"prefixes"`
	} `json:"stripPrefix"`
}

type tEntryPoint struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Transport struct {
		RespondingTimeouts struct {
			ReadHeaderTimeout string `json:"readHeaderTimeout"` // tollgate
			ReadTimeout       string `json:"readTimeout"`
			WriteTimeout      string `json:"writeTimeout"`
			IdleTimeout       string `json:"idleTimeout"`
		} `json:"respondingTimeouts"`
	} `json:"transport"`
	ForwardedHeaders *struct {
		Insecure   bool     `json:"insecure"`
		TrustedIPs []string `json:"trustedIPs"`
	} `json:"forwardedHeaders"`
	HTTP struct {
		Redirections *struct {
			EntryPoint struct {
				To        string `json:"to"`
				Scheme    string `json:"scheme"`
				Permanent bool   `json:"permanent"`
			} `json:"entryPoint"`
		} `json:"redirections"`
		TLS *struct {
			Options string `json:"options"`
		} `json:"tls"`
		MaxHeaderBytes int `json:"maxHeaderBytes"`
	} `json:"http"`
	HTTP3 *struct {
		AdvertisedPort int `json:"advertisedPort"`
	} `json:"http3"`
}

type tCounts struct {
	Total    int `json:"total"`
	Warnings int `json:"warnings"`
	Errors   int `json:"errors"`
}

type tKindCounts struct {
	Routers     tCounts `json:"routers"`
	Services    tCounts `json:"services"`
	Middlewares tCounts `json:"middlewares"`
}

type tOverview struct {
	HTTP     tKindCounts `json:"http"`
	TCP      tKindCounts `json:"tcp"`
	Features struct {
		Tracing   string `json:"tracing"`
		Metrics   string `json:"metrics"`
		AccessLog bool   `json:"accessLog"`
	} `json:"features"`
	Providers []string `json:"providers"`
}

type tVersion struct {
	Version   string    `json:"Version"`
	Commit    string    `json:"commit"`    // tollgate
	GoVersion string    `json:"goVersion"` // tollgate
	StartDate time.Time `json:"startDate"`
}

type tError struct {
	Message string `json:"message"`
}

// apiGet fetches url, checks the status and that the body is JSON, and
// decodes it into into (unless nil) refusing unknown fields. It returns
// the answer's header and body.
func apiGet(t *testing.T, url string, wantStatus int, into any) (http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s = %d, want %d:\n%s", url, resp.StatusCode, wantStatus, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	if into == nil {
		into = new(any)
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("GET %s: decoding: %v\n%s", url, err, body)
	}
	if dec.More() {
		t.Fatalf("GET %s: more than one JSON value:\n%s", url, body)
	}
	return resp.Header, body
}

// apiTestConfig has routers that are served, served in part and not
// served at all, and middlewares holding secrets.
const apiTestConfig = `
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.web.transport.respondingTimeouts]
readTimeout = "30s"
[entryPoints.web.forwardedHeaders]
trustedIPs = ["10.0.0.0/8"]
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
[entryPoints.websecure.http3]
advertisedPort = 8443
[entryPoints.redirect]
address = "127.0.0.1:0"
[entryPoints.redirect.http.redirections.entryPoint]
to = "websecure"

[http.routers.app]
rule = "Host(` + "`app.example.com`" + `)"
entryPoints = ["web"]
service = "app"
middlewares = ["auth", "hdr"]
[http.routers.wild]
rule = "Host(` + "`**.example.com`" + `)"
service = "app"
middlewares = ["both"]
[http.routers.pinned]
rule = "PathPrefix(` + "`/`" + `)"
priority = 7
entryPoints = ["web", "websecure"]
service = "app"
[http.routers.secure]
rule = "Host(` + "`secure.example.com`" + `)"
entryPoints = ["websecure"]
service = "sick"
[http.routers.secure.tls]
options = "modern"
[[http.routers.secure.tls.domains]]
main = "secure.example.com"
sans = ["www.secure.example.com"]
[http.routers.nowhere]
rule = "Host(` + "`a.example.com`" + `) && Host(` + "`b.example.com`" + `)"
entryPoints = ["web"]
service = "app"

[http.services.app.loadBalancer]
[[http.services.app.loadBalancer.servers]]
url = %q
weight = 2
[http.services.sick.loadBalancer]
[http.services.sick.loadBalancer.healthCheck]
path = "/health"
interval = "50ms"
timeout = "40ms"
[http.services.sick.loadBalancer.healthCheck.headers]
Authorization = "Bearer HEALTHSECRET"
[[http.services.sick.loadBalancer.servers]]
url = %q
[[http.services.sick.loadBalancer.servers]]
url = %q
[http.services.unused.loadBalancer]
[[http.services.unused.loadBalancer.servers]]
url = "http://user:PASSWORDSECRET@127.0.0.1:9/"
[[http.services.unused.loadBalancer.servers]]
url = "h2c://127.0.0.1:10"

[http.middlewares.auth.basicAuth]
users = [%q]
realm = "staff"
[http.middlewares.hdr.headers.customRequestHeaders]
Authorization = "Bearer HEADERSECRET"
X-Plain = "visible"
[http.middlewares.both.chain]
middlewares = ["auth"]
[http.middlewares.strip.stripPrefix]
prefixes = ["/a"]

[tls.options.modern]
minVersion = "VersionTLS13"
`

// apiRouter starts a router with apiTestConfig, its services' servers
// real, with the "kubernetes" provider adding a router and a service, and
// returns the API's URL and the router.
func startAPI(t *testing.T, opts APIOptions) (string, *Router) {
	t.Helper()
	app := backendServer(t, "app")
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "sick", http.StatusServiceUnavailable)
	}))
	t.Cleanup(sick.Close)
	hash, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	base := parseConfig(t, fmt.Sprintf(apiTestConfig, app.URL, app.URL, sick.URL, "admin:"+string(hash)))
	merged, refused := config.Merge(base, &config.Provided{Provider: "kubernetes", Parts: []*config.Part{{
		Owner:    "ingress default/shop",
		Routers:  map[string]*config.Router{"shop@kubernetes": {Rule: "Host(`shop.example.com`)", Service: "shop@kubernetes", Middlewares: []string{"strip"}}},
		Services: map[string]*config.Service{"shop@kubernetes": {LoadBalancer: &config.LoadBalancer{}}},
	}}})
	if len(refused) > 0 {
		t.Fatalf("merge refused %v", refused[0].Err)
	}
	rt := New(Config{})
	t.Cleanup(rt.Close)
	h := httptest.NewServer(rt.APIHandler(opts))
	t.Cleanup(h.Close)
	var e tError
	apiGet(t, h.URL+"/api/http/routers", http.StatusServiceUnavailable, &e)
	if err := rt.Apply(merged); err != nil {
		t.Fatal(err)
	}
	return h.URL, rt
}

func TestAPIRouters(t *testing.T) {
	api, rt := startAPI(t, APIOptions{})
	var list []tRouter
	h, body := apiGet(t, api+"/api/http/routers", http.StatusOK, &list)
	if strings.Contains(body, "null") || !strings.Contains(body, "`a.example.com`) && Host(") {
		t.Errorf("the list holds a null, or an escaped rule:\n%s", body)
	}
	if got := h.Get("X-Next-Page"); got != "1" {
		t.Errorf("X-Next-Page = %q on the only page, want 1", got)
	}
	var names []string
	for _, r := range list {
		names = append(names, r.Name)
	}
	if want := []string{"app@file", "nowhere@file", "pinned@file", "secure@file", "shop@kubernetes", "wild@file"}; !slices.Equal(names, want) {
		t.Fatalf("routers %q, want %q (sorted by name)", names, want)
	}
	byName := map[string]tRouter{}
	for _, r := range list {
		byName[r.Name] = r
	}
	// The priority shown is the one the route table orders by.
	table := rt.current.Load().tables["web"]
	for _, rs := range append(slices.Collect(func(yield func([]*route) bool) {
		for _, rs := range table.byHost {
			if !yield(rs) {
				return
			}
		}
	}), table.hostless) {
		for _, r := range rs {
			if got := byName[strings.TrimSuffix(r.name, "@kubernetes")+map[bool]string{true: "@kubernetes", false: "@file"}[strings.HasSuffix(r.name, "@kubernetes")]].Priority; got != r.priority {
				t.Errorf("router %s: priority %d, the table uses %d", r.name, got, r.priority)
			}
		}
	}
	tests := []struct {
		name        string
		status      string
		priority    int
		using       []string
		entryPoints []string
		errors      int
	}{
		{"app@file", "enabled", len("Host(`app.example.com`)"), []string{"web"}, []string{"web"}, 0},
		{"wild@file", "enabled", len("Host(`**.example.com`)") - 2, []string{"redirect", "web"}, []string{"redirect", "web", "websecure"}, 0},
		{"pinned@file", "warning", 7, []string{"web"}, []string{"web", "websecure"}, 1},
		{"secure@file", "enabled", len("Host(`secure.example.com`)"), []string{"websecure"}, []string{"websecure"}, 0},
		{"nowhere@file", "disabled", len("Host(`a.example.com`) && Host(`b.example.com`)"), nil, []string{"web"}, 1},
		{"shop@kubernetes", "enabled", len("Host(`shop.example.com`)"), []string{"redirect", "web"}, []string{"redirect", "web", "websecure"}, 0},
	}
	for _, tt := range tests {
		r := byName[tt.name]
		if r.Status != tt.status || r.Priority != tt.priority || !slices.Equal(r.Using, tt.using) || !slices.Equal(r.EntryPoints, tt.entryPoints) || len(r.Error) != tt.errors {
			t.Errorf("router %s: status %q priority %d using %q entryPoints %q errors %q; want %q %d %q %q and %d errors",
				tt.name, r.Status, r.Priority, r.Using, r.EntryPoints, r.Error, tt.status, tt.priority, tt.using, tt.entryPoints, tt.errors)
		}
	}
	if p := byName["shop@kubernetes"].Provider; p != "kubernetes" {
		t.Errorf("shop@kubernetes: provider %q, want kubernetes", p)
	}
	if p := byName["app@file"].Provider; p != "file" {
		t.Errorf("app@file: provider %q, want file", p)
	}
	s := byName["secure@file"]
	if s.TLS == nil || s.TLS.Options != "modern" || len(s.TLS.Domains) != 1 || s.TLS.Domains[0].Main != "secure.example.com" || !slices.Equal(s.TLS.Domains[0].SANs, []string{"www.secure.example.com"}) {
		t.Errorf("secure@file: tls %+v", s.TLS)
	}
	if a := byName["app@file"]; a.Service != "app" || !slices.Equal(a.Middlewares, []string{"auth", "hdr"}) || a.TLS != nil || a.Rule != "Host(`app.example.com`)" {
		t.Errorf("app@file: %+v", a)
	}

	// One router, by its name with or without the provider.
	for _, path := range []string{"app", "app@file"} {
		var one tRouter
		apiGet(t, api+"/api/http/routers/"+path, http.StatusOK, &one)
		if one.Name != "app@file" || one.Priority != len("Host(`app.example.com`)") {
			t.Errorf("/api/http/routers/%s: %+v", path, one)
		}
	}
	var one tRouter
	apiGet(t, api+"/api/http/routers/shop@kubernetes", http.StatusOK, &one)
	if one.Name != "shop@kubernetes" {
		t.Errorf("/api/http/routers/shop@kubernetes: %+v", one)
	}
	for _, path := range []string{"shop", "app@store", "app@kubernetes", "nope", ""} {
		var e tError
		apiGet(t, api+"/api/http/routers/"+path, http.StatusNotFound, &e)
		if e.Message == "" {
			t.Errorf("/api/http/routers/%s: 404 without a message", path)
		}
	}
}

func TestAPIStoreProvider(t *testing.T) {
	api, _ := startAPI(t, APIOptions{BaseProvider: "store"})
	var one tRouter
	apiGet(t, api+"/api/http/routers/app@store", http.StatusOK, &one)
	if one.Name != "app@store" || one.Provider != "store" {
		t.Errorf("app@store: %+v", one)
	}
	var e tError
	apiGet(t, api+"/api/http/routers/app@file", http.StatusNotFound, &e)
	var o tOverview
	apiGet(t, api+"/api/overview", http.StatusOK, &o)
	if !slices.Equal(o.Providers, []string{"Store"}) {
		t.Errorf("providers %q, want [Store]", o.Providers)
	}
}

func TestAPIFilterAndPages(t *testing.T) {
	api, _ := startAPI(t, APIOptions{})
	names := func(list []tRouter) []string {
		var out []string
		for _, r := range list {
			out = append(out, r.Name)
		}
		return out
	}
	tests := []struct {
		query    string
		want     []string
		nextPage string
	}{
		{"status=disabled", []string{"nowhere@file"}, "1"},
		{"status=WARNING", []string{"pinned@file"}, "1"},
		{"search=SHOP", []string{"shop@kubernetes"}, "1"},
		{"search=" + "**.", []string{"wild@file"}, "1"}, // in the rule
		{"serviceName=sick@file", []string{"secure@file"}, "1"},
		{"serviceName=shop@kubernetes", []string{"shop@kubernetes"}, "1"},
		{"middlewareName=hdr", []string{"app@file"}, "1"},
		{"per_page=4", []string{"app@file", "nowhere@file", "pinned@file", "secure@file"}, "2"},
		{"per_page=4&page=2", []string{"shop@kubernetes", "wild@file"}, "1"},
		{"per_page=2&page=2", []string{"pinned@file", "secure@file"}, "3"},
		{"status=enabled&per_page=1&page=3", []string{"shop@kubernetes"}, "4"},
		{"status=enabled&per_page=1&page=4", []string{"wild@file"}, "1"},
		{"search=nothing", nil, "1"},
	}
	for _, tt := range tests {
		var list []tRouter
		h, body := apiGet(t, api+"/api/http/routers?"+tt.query, http.StatusOK, &list)
		if got := names(list); !slices.Equal(got, tt.want) || h.Get("X-Next-Page") != tt.nextPage {
			t.Errorf("?%s: %q with X-Next-Page %q, want %q and %q", tt.query, got, h.Get("X-Next-Page"), tt.want, tt.nextPage)
		}
		if len(tt.want) == 0 && strings.TrimSpace(body) != "[]" {
			t.Errorf("?%s: body %q, want []", tt.query, body)
		}
	}
	for _, q := range []string{"page=2", "per_page=0", "page=-1", "per_page=x", "per_page=9223372036854775807&page=2", "status=nothing"} {
		var e tError
		apiGet(t, api+"/api/http/routers?"+q, http.StatusBadRequest, &e)
		if e.Message == "" {
			t.Errorf("?%s: 400 without a message", q)
		}
	}
	var svcs []tService
	apiGet(t, api+"/api/http/services?search=UNUS", http.StatusOK, &svcs)
	if len(svcs) != 1 || svcs[0].Name != "unused@file" {
		t.Errorf("services ?search=UNUS: %+v", svcs)
	}
}

func TestAPIServices(t *testing.T) {
	api, _ := startAPI(t, APIOptions{})
	// The sick server's health checks fail: wait until it is down, its
	// neighbour staying up.
	var sick tService
	for deadline := time.Now().Add(10 * time.Second); ; {
		sick = tService{}
		apiGet(t, api+"/api/http/services/sick@file", http.StatusOK, &sick)
		down := 0
		for _, s := range sick.ServerStatus {
			if s == "DOWN" {
				down++
			}
		}
		if down == 1 && len(sick.ServerStatus) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sick server is not down: %+v", sick.ServerStatus)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var list []tService
	_, body := apiGet(t, api+"/api/http/services", http.StatusOK, &list)
	for _, secret := range []string{"HEALTHSECRET", "PASSWORDSECRET", "null"} {
		if strings.Contains(body, secret) {
			t.Errorf("the services show %q:\n%s", secret, body)
		}
	}
	byName := map[string]tService{}
	var names []string
	for _, s := range list {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	if want := []string{"app@file", "shop@kubernetes", "sick@file", "unused@file"}; !slices.Equal(names, want) {
		t.Fatalf("services %q, want %q", names, want)
	}
	app := byName["app@file"]
	if app.Status != "enabled" || app.Type != "loadbalancer" || app.Provider != "file" || !slices.Equal(app.UsedBy, []string{"app@file", "nowhere@file", "pinned@file", "wild@file"}) {
		t.Errorf("app@file: %+v", app)
	}
	if lb := app.LoadBalancer; len(lb.Servers) != 1 || lb.Servers[0].Weight != 2 || lb.PassHostHeader == nil || !*lb.PassHostHeader {
		t.Errorf("app@file loadBalancer: %+v", lb)
	}
	u := app.LoadBalancer.Servers[0].URL
	if app.ServerStatus[u] != "UP" || len(app.ServerDetails) != 1 || app.ServerDetails[0].URL != u || app.ServerDetails[0].Weight != 2 ||
		!app.ServerDetails[0].Healthy || app.ServerDetails[0].Ejected || app.ServerDetails[0].Status != "UP" || app.ServerDetails[0].ID == "" {
		t.Errorf("app@file servers: status %v details %+v", app.ServerStatus, app.ServerDetails)
	}
	if hc := sick.LoadBalancer.HealthCheck; hc == nil || hc.Path != "/health" || hc.Interval != "50ms" || hc.Headers["Authorization"] != "(hidden)" {
		t.Errorf("sick@file healthCheck: %+v", hc)
	}
	if !slices.Equal(sick.UsedBy, []string{"secure@file"}) || len(sick.ServerDetails) != 2 || !sick.ServerDetails[0].Healthy ||
		sick.ServerDetails[1].Healthy || sick.ServerDetails[1].Status != "DOWN" || sick.ServerStatus[sick.ServerDetails[1].URL] != "DOWN" {
		t.Errorf("sick@file: %+v", sick)
	}
	unused := byName["unused@file"]
	if unused.Status != "enabled" || len(unused.UsedBy) != 0 || len(unused.LoadBalancer.Servers) != 2 ||
		unused.LoadBalancer.Servers[0].URL != "http://127.0.0.1:9/" || unused.LoadBalancer.Servers[1].URL != "h2c://127.0.0.1:10" {
		t.Errorf("unused@file: %+v", unused)
	}
	// A script finds each configured server's state under its URL.
	for _, svc := range list {
		for _, srv := range svc.LoadBalancer.Servers {
			if _, ok := svc.ServerStatus[srv.URL]; !ok {
				t.Errorf("%s: server %s has no serverStatus: %v", svc.Name, srv.URL, svc.ServerStatus)
			}
		}
	}
	shop := byName["shop@kubernetes"]
	if shop.Status != "warning" || len(shop.Error) != 1 || shop.Provider != "kubernetes" || len(shop.LoadBalancer.Servers) != 0 || shop.ServerStatus != nil {
		t.Errorf("shop@kubernetes (no servers): %+v", shop)
	}
	var e tError
	apiGet(t, api+"/api/http/services/shop", http.StatusNotFound, &e)
	apiGet(t, api+"/api/http/services/app", http.StatusOK, nil)
}

func TestAPIServiceTypes(t *testing.T) {
	dead := deadServerURL(t)
	rt := applyDoc(t, fmt.Sprintf(catchAll+`
[http.services.s.failover]
service = "canary"
fallback = "shadow"
healthCheck = {}
[http.services.canary.weighted]
healthCheck = {}
services = [{name = "a", weight = 3}, {name = "b"}]
[http.services.canary.weighted.sticky.cookie]
name = "c"
[http.services.shadow.mirroring]
service = "a"
maxBodySize = 1024
healthCheck = {}
[[http.services.shadow.mirroring.mirrors]]
name = "b"
percent = 10
[http.services.a.loadBalancer.passiveHealthCheck]
[[http.services.a.loadBalancer.servers]]
url = %q
[http.services.b.loadBalancer.passiveHealthCheck]
[[http.services.b.loadBalancer.servers]]
url = %q
`, backendServer(t, "a").URL, dead))
	// b fails once and is ejected.
	serveN(rt.Handler("web"), 4)
	h := httptest.NewServer(rt.APIHandler(APIOptions{}))
	t.Cleanup(h.Close)
	var list []tService
	apiGet(t, h.URL+"/api/http/services", http.StatusOK, &list)
	byName := map[string]tService{}
	for _, s := range list {
		byName[s.Name] = s
	}
	w := byName["canary@file"]
	if w.Type != "weighted" || w.Weighted == nil || len(w.Weighted.Services) != 2 || w.Weighted.Services[0] != (struct {
		Name   string `json:"name"`
		Weight int    `json:"weight"`
	}{"a", 3}) || w.Weighted.Services[1].Weight != 1 || w.Weighted.Sticky == nil || w.Weighted.Sticky.Cookie.Name != "c" ||
		w.Weighted.HealthCheck == nil || w.LoadBalancer.Servers != nil {
		t.Errorf("canary@file: %+v", w)
	}
	if want := map[string]string{"a@file": "UP", "b@file": "DOWN"}; !maps.Equal(w.ServerStatus, want) {
		t.Errorf("canary@file serverStatus %v, want %v", w.ServerStatus, want)
	}
	m := byName["shadow@file"]
	if m.Type != "mirroring" || m.Mirroring == nil || m.Mirroring.Service != "a" || len(m.Mirroring.Mirrors) != 1 ||
		m.Mirroring.Mirrors[0].Name != "b" || m.Mirroring.Mirrors[0].Percent != 10 || !m.Mirroring.MirrorBody || m.Mirroring.MaxBodySize != 1024 {
		t.Errorf("shadow@file: %+v", m)
	}
	if want := map[string]string{"a@file": "UP"}; !maps.Equal(m.ServerStatus, want) {
		t.Errorf("shadow@file serverStatus %v, want %v", m.ServerStatus, want)
	}
	f := byName["s@file"]
	if f.Type != "failover" || f.Failover == nil || f.Failover.Service != "canary" || f.Failover.Fallback != "shadow" || f.Failover.HealthCheck == nil {
		t.Errorf("s@file: %+v", f)
	}
	if want := map[string]string{"canary@file": "UP", "shadow@file": "UP"}; !maps.Equal(f.ServerStatus, want) {
		t.Errorf("s@file serverStatus %v, want %v", f.ServerStatus, want)
	}
	// The router reaches every service through s.
	for _, s := range list {
		if !slices.Equal(s.UsedBy, []string{"all@file"}) {
			t.Errorf("%s usedBy %v, want [all@file]", s.Name, s.UsedBy)
		}
	}
}

func TestAPIMiddlewares(t *testing.T) {
	api, _ := startAPI(t, APIOptions{})
	var list []tMiddleware
	_, body := apiGet(t, api+"/api/http/middlewares", http.StatusOK, &list)
	for _, secret := range []string{"SECRET", "$2a$", "null"} {
		if strings.Contains(body, secret) {
			t.Errorf("the middlewares show %q:\n%s", secret, body)
		}
	}
	byName := map[string]tMiddleware{}
	var names []string
	for _, m := range list {
		byName[m.Name] = m
		names = append(names, m.Name)
	}
	if want := []string{"auth@file", "both@file", "hdr@file", "strip@file"}; !slices.Equal(names, want) {
		t.Fatalf("middlewares %q, want %q", names, want)
	}
	auth := byName["auth@file"]
	if auth.Type != "basicauth" || auth.Status != "enabled" || auth.BasicAuth == nil || !slices.Equal(auth.BasicAuth.Users, []string{"(hidden)"}) ||
		auth.BasicAuth.Realm != "staff" || !slices.Equal(auth.UsedBy, []string{"app@file", "both@file"}) {
		t.Errorf("auth@file: %+v %+v", auth, auth.BasicAuth)
	}
	hdr := byName["hdr@file"]
	if hdr.Type != "headers" || hdr.Headers == nil || hdr.Headers.CustomRequestHeaders["Authorization"] != "(hidden)" || hdr.Headers.CustomRequestHeaders["X-Plain"] != "visible" {
		t.Errorf("hdr@file: %+v", hdr.Headers)
	}
	if both := byName["both@file"]; both.Type != "chain" || both.Chain == nil || !slices.Equal(both.Chain.Middlewares, []string{"auth"}) || !slices.Equal(both.UsedBy, []string{"wild@file"}) {
		t.Errorf("both@file: %+v", both)
	}
	if strip := byName["strip@file"]; strip.Type != "stripprefix" || !slices.Equal(strip.UsedBy, []string{"shop@kubernetes"}) {
		t.Errorf("strip@file: %+v", strip)
	}
	var one tMiddleware
	apiGet(t, api+"/api/http/middlewares/auth@file", http.StatusOK, &one)
	if one.Name != "auth@file" || one.BasicAuth == nil {
		t.Errorf("auth@file alone: %+v", one)
	}
	var e tError
	apiGet(t, api+"/api/http/middlewares/auth@kubernetes", http.StatusNotFound, &e)
}

// TestAPIEntryPointsAsListening: the entry points shown are those the
// listeners were started with, not a later configuration's (their
// settings take effect only at a restart).
func TestAPIEntryPointsAsListening(t *testing.T) {
	api, _ := startAPI(t, APIOptions{EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:8000"}}})
	var eps []tEntryPoint
	apiGet(t, api+"/api/entrypoints", http.StatusOK, &eps)
	if len(eps) != 1 || eps[0].Name != "web" || eps[0].Address != "127.0.0.1:8000" {
		t.Fatalf("entry points %+v, want web at 127.0.0.1:8000 only", eps)
	}
}

// TestAPIRoutersOnNotListening: an entry point added in a reload does not
// listen until a restart, so neither HTTP nor TCP routers are served on
// it: using leaves it out, a router naming it warns, and one naming only
// it is disabled.
func TestAPIRoutersOnNotListening(t *testing.T) {
	rt := New(Config{})
	t.Cleanup(rt.Close)
	if err := rt.Apply(parseConfig(t, `
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.y]
address = "127.0.0.1:0"

[http.routers.both]
rule = "Host(`+"`a.example.com`"+`)"
entryPoints = ["web", "y"]
service = "app"
[http.routers.ony]
rule = "Host(`+"`b.example.com`"+`)"
entryPoints = ["y"]
service = "app"
[http.routers.all]
rule = "Host(`+"`c.example.com`"+`)"
service = "app"
[http.services.app.loadBalancer]
[[http.services.app.loadBalancer.servers]]
url = "http://127.0.0.1:9"

[tcp.routers.both]
rule = "HostSNI(`+"`*`"+`)"
entryPoints = ["web", "y"]
service = "banner"
[tcp.routers.ony]
rule = "HostSNI(`+"`*`"+`)"
entryPoints = ["y"]
service = "banner"
[tcp.routers.all]
rule = "HostSNI(`+"`*`"+`)"
service = "banner"
[tcp.services.banner.loadBalancer]
[[tcp.services.banner.loadBalancer.servers]]
address = "127.0.0.1:9"
`)); err != nil {
		t.Fatal(err)
	}
	api := startAPIServer(t, rt, APIOptions{EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:8000"}}})
	type want struct {
		status string
		using  []string
		errors int
	}
	wants := map[string]want{
		"both@file": {"warning", []string{"web"}, 1},
		"ony@file":  {"disabled", nil, 2},
		"all@file":  {"enabled", []string{"web"}, 0},
	}
	check := func(kind, name string, status string, using, errs []string) {
		t.Helper()
		w := wants[name]
		if status != w.status || !slices.Equal(using, w.using) || len(errs) != w.errors {
			t.Errorf("%s router %s: status %s, using %v, error %q; want %s, using %v, %d errors", kind, name, status, using, errs, w.status, w.using, w.errors)
		}
		if w.errors > 0 && len(errs) > 0 && !strings.Contains(errs[0], `entry point "y" is not listening`) {
			t.Errorf("%s router %s: error %q does not say that y is not listening", kind, name, errs)
		}
	}
	var routers []tRouter
	apiGet(t, api+"/api/http/routers", http.StatusOK, &routers)
	if len(routers) != 3 {
		t.Fatalf("HTTP routers %+v", routers)
	}
	for _, r := range routers {
		check("HTTP", r.Name, r.Status, r.Using, r.Error)
	}
	var tcpRouters []tTCPRouter
	apiGet(t, api+"/api/tcp/routers", http.StatusOK, &tcpRouters)
	if len(tcpRouters) != 3 {
		t.Fatalf("TCP routers %+v", tcpRouters)
	}
	for _, r := range tcpRouters {
		check("TCP", r.Name, r.Status, r.Using, r.Error)
	}
	var overview tOverview
	apiGet(t, api+"/api/overview", http.StatusOK, &overview)
	if c := overview.TCP.Routers; c.Warnings != 1 || c.Errors != 1 {
		t.Errorf("TCP routers counted %+v, want 1 warning and 1 error", c)
	}
}

func TestAPIEntryPointsOverviewVersion(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	api, _ := startAPI(t, APIOptions{Version: "v1.2.3", Commit: "abc123", Start: start})
	var eps []tEntryPoint
	_, body := apiGet(t, api+"/api/entrypoints", http.StatusOK, &eps)
	if strings.Contains(body, "null") {
		t.Errorf("the entry points hold a null:\n%s", body)
	}
	if len(eps) != 3 || eps[0].Name != "redirect" || eps[1].Name != "web" || eps[2].Name != "websecure" {
		t.Fatalf("entry points %+v", eps)
	}
	web := eps[1]
	rt := web.Transport.RespondingTimeouts
	if web.Address != "127.0.0.1:0" || rt.ReadTimeout != "30s" || rt.ReadHeaderTimeout != "10s" || rt.WriteTimeout != "0s" || rt.IdleTimeout != "3m0s" ||
		web.HTTP.MaxHeaderBytes != 1<<20 || web.HTTP.TLS != nil || web.ForwardedHeaders == nil || !slices.Equal(web.ForwardedHeaders.TrustedIPs, []string{"10.0.0.0/8"}) {
		t.Errorf("web: %+v", web)
	}
	if tls := eps[2].HTTP.TLS; tls == nil || tls.Options != "default" {
		t.Errorf("websecure tls: %+v", tls)
	}
	if h3 := eps[2].HTTP3; h3 == nil || h3.AdvertisedPort != 8443 || web.HTTP3 != nil {
		t.Errorf("http3: websecure %+v, web %+v; want websecure's advertisedPort 8443 and none on web", h3, web.HTTP3)
	}
	if rd := eps[0].HTTP.Redirections; rd == nil || rd.EntryPoint.To != "websecure" || rd.EntryPoint.Scheme != "https" || !rd.EntryPoint.Permanent {
		t.Errorf("redirect: %+v", rd)
	}
	var one tEntryPoint
	apiGet(t, api+"/api/entrypoints/websecure", http.StatusOK, &one)
	if one.Name != "websecure" {
		t.Errorf("websecure: %+v", one)
	}
	var e tError
	apiGet(t, api+"/api/entrypoints/nope", http.StatusNotFound, &e)

	var o tOverview
	apiGet(t, api+"/api/overview", http.StatusOK, &o)
	want := tOverview{}
	want.HTTP.Routers = tCounts{Total: 6, Warnings: 1, Errors: 1}
	want.HTTP.Services = tCounts{Total: 4, Warnings: 1}
	want.HTTP.Middlewares = tCounts{Total: 4}
	want.Providers = []string{"File"}
	if fmt.Sprint(o) != fmt.Sprint(want) {
		t.Errorf("overview %+v, want %+v", o, want)
	}

	var v tVersion
	apiGet(t, api+"/api/version", http.StatusOK, &v)
	if v.Version != "v1.2.3" || v.Commit != "abc123" || !v.StartDate.Equal(start) || v.GoVersion == "" {
		t.Errorf("version %+v", v)
	}
}

func TestAPIMethodsAndUnknownPaths(t *testing.T) {
	api, _ := startAPI(t, APIOptions{})
	resp, err := http.Post(api+"/api/http/routers", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var e tError
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || err != nil || e.Message == "" {
		t.Errorf("POST = %d, Allow %q, body %+v (%v)", resp.StatusCode, resp.Header.Get("Allow"), e, err)
	}
	resp, err = http.Head(api + "/api/http/routers")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/api/", "/api/rawdata", "/api/http", "/api/tcp", "/api/udp/routers"} {
		apiGet(t, api+path, http.StatusNotFound, &e)
	}
}

// testInspector is an Inspector whose answers the test sets; with block
// it answers only when its context ends.
type testInspector struct {
	certs   []CertificateInfo
	cluster ClusterInfo
	err     error
	block   bool
}

func (i *testInspector) Certificates(ctx context.Context) ([]CertificateInfo, error) {
	if i.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return i.certs, i.err
}

func (i *testInspector) Cluster(ctx context.Context) (ClusterInfo, error) {
	if i.block {
		<-ctx.Done()
		return ClusterInfo{}, ctx.Err()
	}
	return i.cluster, i.err
}

// certificateInfo describes a freshly made certificate and key the way
// the store's view does, and returns the pair's PEM too.
func certificateInfo(t *testing.T, names ...string) (CertificateInfo, string) {
	t.Helper()
	c := testcert.SelfSigned(t, testcert.Spec{Names: names, Serial: 4242, NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	cert := c.Cert
	pemText := string(c.CertPEM()) + string(c.KeyPEM(t))
	return CertificateInfo{
		Name: names[0], SANs: cert.DNSNames, Source: "acme", Key: "tollgate/certs/" + names[0], Revision: 7,
		Issuer: cert.Issuer.CommonName, Serial: hex.EncodeToString(cert.SerialNumber.Bytes()), KeyType: "EC256",
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, Status: "ok", StatusText: "valid; renewed 30 days before expiry",
		Renewal: &RenewalInfo{RenewAt: cert.NotAfter.Add(-30 * 24 * time.Hour)},
	}, pemText
}

type tCertificate struct {
	Name       string    `json:"name"`
	SANs       []string  `json:"sans"`
	Source     string    `json:"source"`
	Key        string    `json:"key"`
	Revision   int64     `json:"revision"`
	Issuer     string    `json:"issuer"`
	Serial     string    `json:"serial"`
	KeyType    string    `json:"keyType"`
	CA         string    `json:"ca"`
	NotBefore  time.Time `json:"notBefore"`
	NotAfter   time.Time `json:"notAfter"`
	Status     string    `json:"status"`
	StatusText string    `json:"statusText"`
	Error      string    `json:"error"`
	Renewal    *struct {
		RenewAt       time.Time `json:"renewAt"`
		WindowStart   time.Time `json:"windowStart"`
		WindowEnd     time.Time `json:"windowEnd"`
		Requested     bool      `json:"requested"`
		ARIFailures   int       `json:"ariFailures"`
		ARILastError  string    `json:"ariLastError"`
		Failures      int       `json:"failures"`
		LastError     string    `json:"lastError"`
		LastAttempt   time.Time `json:"lastAttempt"`
		NextAttempt   time.Time `json:"nextAttempt"`
		GaveUp        bool      `json:"gaveUp"`
		OrderingSince time.Time `json:"orderingSince"`
	} `json:"renewal"`
}

type tCluster struct {
	Leader *struct {
		Node  string    `json:"node"`
		Term  int64     `json:"term"`
		Since time.Time `json:"since"`
	} `json:"leader"`
	Configuration  string `json:"configuration"`
	LatestRevision int64  `json:"latestRevision"`
	Nodes          []struct {
		ID              string    `json:"id"`
		Role            string    `json:"role"`
		Version         string    `json:"version"`
		Started         time.Time `json:"started"`
		AppliedRevision int64     `json:"appliedRevision"`
		Lag             int64     `json:"lag"`
		InSync          bool      `json:"inSync"`
		// ChallengesAnswered and the rest are omitted while zero.
		ChallengesAnswered    *int64     `json:"challengesAnswered"`
		LastChallengeAnswered *time.Time `json:"lastChallengeAnswered"`
		LastChallengeName     *string    `json:"lastChallengeName"`
	} `json:"nodes"`
	Certificates struct {
		Total    int `json:"total"`
		Expiring int `json:"expiringWithin7Days"`
		Expired  int `json:"expired"`
		Ordering int `json:"ordering"`
		Failing  int `json:"failing"`
		Unusable int `json:"unusable"`
	} `json:"certificates"`
	Account string `json:"account"`
}

func TestAPICertificatesAndCluster(t *testing.T) {
	b, bPEM := certificateInfo(t, "b.example.com", "www.b.example.com")
	a, aPEM := certificateInfo(t, "a.example.com")
	waiting := CertificateInfo{Name: "c.example.com", Source: "acme", Status: "missing", StatusText: "no certificate stored yet"}
	insp := &testInspector{
		certs: []CertificateInfo{b, waiting, a},
		cluster: ClusterInfo{
			Leader:        &LeaderInfo{Node: "n1", Term: 3, Since: time.Now().UTC()},
			Configuration: "store", LatestRevision: 12,
			Nodes: []NodeInfo{{ID: "n1", Role: "leader", Version: "v1", Started: time.Now().UTC(), AppliedRevision: 12, InSync: true,
				ChallengesAnswered: 2, LastChallengeAnswered: time.Now().UTC(), LastChallengeName: "a.example.com"}, {ID: "n2", Role: "follower", InSync: true}},
			Certificates: CertificateCounts{Total: 3, Ordering: 1},
		},
	}
	api, _ := startAPI(t, APIOptions{Inspector: insp})
	var certs []tCertificate
	h, body := apiGet(t, api+"/api/certificates", http.StatusOK, &certs)
	if strings.Contains(body, "-----BEGIN") || strings.Contains(body, "null") {
		t.Errorf("the certificates hold key material or a null:\n%s", body)
	}
	for _, p := range []string{aPEM, bPEM} {
		for _, line := range strings.Split(p, "\n")[1:3] {
			if strings.Contains(body, line) {
				t.Errorf("the certificates hold a line of PEM %q", line)
			}
		}
	}
	if insp.certs[0].Name != "b.example.com" || insp.certs[1].SANs != nil {
		t.Errorf("the API changed the Inspector's list: %+v", insp.certs)
	}
	if h.Get("X-Next-Page") != "1" || len(certs) != 3 || certs[0].Name != "a.example.com" || certs[1].Name != "b.example.com" || certs[2].Name != "c.example.com" {
		t.Fatalf("certificates (sorted by name): %+v", certs)
	}
	if c := certs[1]; !slices.Equal(c.SANs, []string{"b.example.com", "www.b.example.com"}) || c.Serial != "1092" || c.Renewal == nil || c.Renewal.RenewAt.IsZero() || c.Status != "ok" {
		t.Errorf("b.example.com: %+v", c)
	}
	if c := certs[2]; c.SANs == nil || len(c.SANs) != 0 || c.Status != "missing" || c.Renewal != nil {
		t.Errorf("c.example.com: %+v", c)
	}
	var one tCertificate
	_, body = apiGet(t, api+"/api/certificates/b.example.com", http.StatusOK, &one)
	if one.Name != "b.example.com" || strings.Contains(body, "-----BEGIN") {
		t.Errorf("b.example.com alone: %s", body)
	}
	var missing []tCertificate
	apiGet(t, api+"/api/certificates?status=missing", http.StatusOK, &missing)
	if len(missing) != 1 || missing[0].Name != "c.example.com" {
		t.Errorf("?status=missing: %+v", missing)
	}
	var e tError
	apiGet(t, api+"/api/certificates/z.example.com", http.StatusNotFound, &e)

	var c tCluster
	apiGet(t, api+"/api/cluster", http.StatusOK, &c)
	if c.Leader == nil || c.Leader.Node != "n1" || len(c.Nodes) != 2 || c.Nodes[0].Role != "leader" || c.Certificates.Total != 3 || c.Configuration != "store" {
		t.Errorf("cluster %+v", c)
	}
	if n := c.Nodes[0]; n.ChallengesAnswered == nil || *n.ChallengesAnswered != 2 || n.LastChallengeAnswered == nil || n.LastChallengeName == nil || *n.LastChallengeName != "a.example.com" {
		t.Errorf("cluster node %+v: want 2 challenges answered, the latest for a.example.com", n)
	}
	if n := c.Nodes[1]; n.ChallengesAnswered != nil || n.LastChallengeAnswered != nil || n.LastChallengeName != nil {
		t.Errorf("cluster node %+v: a replica that answered none has no challenge fields", n)
	}

	// No leader and no nodes: the leader is null, the nodes an empty list.
	insp.cluster = ClusterInfo{Configuration: "file"}
	_, body = apiGet(t, api+"/api/cluster", http.StatusOK, &c)
	if !strings.Contains(body, `"leader": null`) || !strings.Contains(body, `"nodes": []`) {
		t.Errorf("cluster without leader:\n%s", body)
	}

	// A failing view answers 503 with the error.
	insp.err = errors.New("store unreachable")
	for _, path := range []string{"/api/certificates", "/api/certificates/a.example.com", "/api/cluster"} {
		var e tError
		apiGet(t, api+path, http.StatusServiceUnavailable, &e)
		if !strings.Contains(e.Message, "store unreachable") {
			t.Errorf("%s: message %q, want the error", path, e.Message)
		}
	}
}

// TestAPIInspectorTimeout checks that an Inspector that does not answer
// makes the request answer 503 once InspectTimeout has passed.
func TestAPIInspectorTimeout(t *testing.T) {
	api, _ := startAPI(t, APIOptions{Inspector: &testInspector{block: true}, InspectTimeout: 50 * time.Millisecond})
	for _, path := range []string{"/api/certificates", "/api/cluster"} {
		var e tError
		apiGet(t, api+path, http.StatusServiceUnavailable, &e)
		if !strings.Contains(e.Message, "deadline exceeded") {
			t.Errorf("%s: message %q, want the deadline", path, e.Message)
		}
	}
}

func TestAPIWithoutInspector(t *testing.T) {
	api, _ := startAPI(t, APIOptions{})
	for _, path := range []string{"/api/certificates", "/api/certificates/a.example.com", "/api/cluster"} {
		var e tError
		apiGet(t, api+path, http.StatusNotFound, &e)
		if !strings.Contains(e.Message, "no view of the ACME store") {
			t.Errorf("%s: message %q", path, e.Message)
		}
	}
}

// TestAPIFollowsReloads checks that the API shows the generation in
// force after a reload.
func TestAPIFollowsReloads(t *testing.T) {
	api, rt := startAPI(t, APIOptions{})
	apiGet(t, api+"/api/http/routers/app", http.StatusOK, nil)
	cfg := parseConfig(t, catchAll+"[[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:9\"\n")
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	var e tError
	apiGet(t, api+"/api/http/routers/app", http.StatusNotFound, &e)
	var all tRouter
	apiGet(t, api+"/api/http/routers/all@file", http.StatusOK, &all)
	if all.Priority != len("PathPrefix(`/`)") || !slices.Equal(all.Using, []string{"web"}) {
		t.Errorf("all@file after the reload: %+v", all)
	}
}

// BenchmarkAPIView measures working out the API's view of a generation
// of n routers, each with its own service: paid once per generation, at
// the first API request after a reload.
func BenchmarkAPIView(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routers=%d", n), func(b *testing.B) {
			rt := New(Config{})
			defer rt.Close()
			if err := rt.Apply(generatedConfig(b, n)); err != nil {
				b.Fatal(err)
			}
			g := rt.current.Load()
			for b.Loop() {
				newAPIView(g, "file", nil)
			}
		})
	}
}

// TestAPIServersTransport: a service shows the name of its
// serversTransport in its loadBalancer.
func TestAPIServersTransport(t *testing.T) {
	api, rt := startAPI(t, APIOptions{})
	cfg := parseConfig(t, catchAll+"[http.services.s.loadBalancer]\nserversTransport = \"backend\"\n[[http.services.s.loadBalancer.servers]]\nurl = \"https://127.0.0.1:9\"\n[http.serversTransports.backend]\ninsecureSkipVerify = true\n")
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	apiGet(t, api+"/api/http/services/s@file", http.StatusOK, &s)
	if lb, _ := s["loadBalancer"].(map[string]any); lb["serversTransport"] != "backend" {
		t.Errorf("loadBalancer = %v, want serversTransport \"backend\"", s["loadBalancer"])
	}
}
