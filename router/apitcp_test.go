package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

type tTCPRouter struct {
	tItem
	Rule        string   `json:"rule"`
	Priority    int      `json:"priority"`
	EntryPoints []string `json:"entryPoints"`
	Using       []string `json:"using"`
	Service     string   `json:"service"`
	Middlewares []string `json:"middlewares"`
	TLS         *struct {
		Passthrough bool   `json:"passthrough"`
		Options     string `json:"options"`
		Domains     []struct {
			Main string   `json:"main"`
			SANs []string `json:"sans"`
		} `json:"domains"`
	} `json:"tls"`
}

type tTCPServer struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"`
	TLS     bool   `json:"tls"`
}

type tTCPService struct {
	tItem
	Type         string `json:"type"`
	LoadBalancer *struct {
		Servers          []tTCPServer `json:"servers"`
		ServersTransport string       `json:"serversTransport"`
		HealthCheck      *struct {
			Interval string `json:"interval"`
			Timeout  string `json:"timeout"`
			Send     string `json:"send"`
			Expect   string `json:"expect"`
		} `json:"healthCheck"`
	} `json:"loadBalancer"`
	Weighted *struct {
		Services []struct {
			Name   string `json:"name"`
			Weight int    `json:"weight"`
		} `json:"services"`
	} `json:"weighted"`
	ServerStatus map[string]string `json:"serverStatus"`
	UsedBy       []string          `json:"usedBy"`
}

type tTCPMiddleware struct {
	tItem
	Type        string   `json:"type"`
	UsedBy      []string `json:"usedBy"`
	IPAllowList *struct {
		SourceRange []string `json:"sourceRange"`
	} `json:"ipAllowList"`
	InFlightConn *struct {
		Amount int `json:"amount"`
	} `json:"inFlightConn"`
}

const apiTCPTestConfig = `
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.pg]
address = "127.0.0.1:0"

[http.routers.db]
rule = "Host(` + "`db.example.com`" + `)"
service = "db"
[http.services.db.loadBalancer]
[[http.services.db.loadBalancer.servers]]
url = "http://127.0.0.1:9"

[tcp.routers.db]
rule = "HostSNI(` + "`db.example.com`" + `)"
entryPoints = ["pg"]
service = "split"
middlewares = ["office", "limit"]
[tcp.routers.db.tls]
passthrough = true

[tcp.routers.plain]
rule = "HostSNI(` + "`*`" + `)"
service = "pg"
priority = 3
middlewares = ["office"]

[tcp.services.pg.loadBalancer]
serversTransport = "slow"
[[tcp.services.pg.loadBalancer.servers]]
address = "10.0.0.7:5432"
tls = true
[[tcp.services.pg.loadBalancer.servers]]
address = "10.0.0.8:5432"
weight = 0
[tcp.services.pg.loadBalancer.healthCheck]
interval = "10s"
send = "PING"
expect = "PONG"

[tcp.services.replica.loadBalancer]
[[tcp.services.replica.loadBalancer.servers]]
address = "10.0.0.9:5432"

[tcp.services.split.weighted]
[[tcp.services.split.weighted.services]]
name = "pg"
weight = 3
[[tcp.services.split.weighted.services]]
name = "replica"

[tcp.middlewares.office.ipAllowList]
sourceRange = ["10.0.0.0/8"]
[tcp.middlewares.limit.inFlightConn]
amount = 5

[tcp.serversTransports.slow]
dialTimeout = "1m"
`

// TestAPITCP checks /api/tcp/… in Traefik v3's shape: the routers,
// services and middlewares of [tcp], with names and provider as for HTTP,
// usedBy, and their counts in /api/overview. TCP and HTTP items of one
// name are apart.
func TestAPITCP(t *testing.T) {
	rt := New(Config{})
	t.Cleanup(rt.Close)
	if err := rt.Apply(parseConfig(t, apiTCPTestConfig)); err != nil {
		t.Fatal(err)
	}
	h := startAPIServer(t, rt, APIOptions{})

	var routers []tTCPRouter
	_, body := apiGet(t, h+"/api/tcp/routers", http.StatusOK, &routers)
	if strings.Contains(body, "null") {
		t.Errorf("the list holds a null:\n%s", body)
	}
	if len(routers) != 2 || routers[0].Name != "db@file" || routers[1].Name != "plain@file" {
		t.Fatalf("routers %+v", routers)
	}
	db, plain := routers[0], routers[1]
	if db.Provider != "file" || db.Status != "enabled" || db.Service != "split" || db.Priority != len("HostSNI(`db.example.com`)") ||
		!slices.Equal(db.EntryPoints, []string{"pg"}) || !slices.Equal(db.Using, []string{"pg"}) ||
		!slices.Equal(db.Middlewares, []string{"office", "limit"}) || db.TLS == nil || !db.TLS.Passthrough || db.Rule != "HostSNI(`db.example.com`)" {
		t.Errorf("db: %+v", db)
	}
	if plain.Priority != 3 || plain.TLS != nil || !slices.Equal(plain.EntryPoints, []string{"pg", "web"}) {
		t.Errorf("plain: %+v", plain)
	}
	var one tTCPRouter
	for _, name := range []string{"db", "db@file"} {
		apiGet(t, h+"/api/tcp/routers/"+name, http.StatusOK, &one)
		if one.Name != "db@file" || one.TLS == nil {
			t.Errorf("/api/tcp/routers/%s: %+v", name, one)
		}
	}
	var e tError
	apiGet(t, h+"/api/tcp/routers/nope", http.StatusNotFound, &e)
	var filtered []tTCPRouter
	apiGet(t, h+"/api/tcp/routers?middlewareName=limit@file", http.StatusOK, &filtered)
	if len(filtered) != 1 || filtered[0].Name != "db@file" {
		t.Errorf("middlewareName=limit@file: %+v", filtered)
	}
	apiGet(t, h+"/api/tcp/routers?serviceName=pg", http.StatusOK, &filtered)
	if len(filtered) != 1 || filtered[0].Name != "plain@file" {
		t.Errorf("serviceName=pg: %+v", filtered)
	}

	var services []tTCPService
	apiGet(t, h+"/api/tcp/services", http.StatusOK, &services)
	if len(services) != 3 || services[0].Name != "pg@file" || services[1].Name != "replica@file" || services[2].Name != "split@file" {
		t.Fatalf("services %+v", services)
	}
	pg := services[0]
	if pg.Type != "loadbalancer" || pg.Status != "enabled" || pg.LoadBalancer == nil || pg.LoadBalancer.ServersTransport != "slow" ||
		fmt.Sprint(pg.LoadBalancer.Servers) != fmt.Sprint([]tTCPServer{{"10.0.0.7:5432", 1, true}, {"10.0.0.8:5432", 0, false}}) ||
		pg.LoadBalancer.HealthCheck == nil || pg.LoadBalancer.HealthCheck.Interval != "10s" || pg.LoadBalancer.HealthCheck.Send != "PING" ||
		!slices.Equal(pg.UsedBy, []string{"db@file", "plain@file"}) || len(pg.ServerStatus) != 2 {
		t.Errorf("pg: %+v", pg)
	}
	split := services[2]
	if split.Type != "weighted" || split.Weighted == nil || len(split.Weighted.Services) != 2 ||
		split.Weighted.Services[0].Weight != 3 || split.Weighted.Services[1].Weight != 1 || !slices.Equal(split.UsedBy, []string{"db@file"}) {
		t.Errorf("split: %+v", split)
	}
	if r := services[1]; !slices.Equal(r.UsedBy, []string{"db@file"}) {
		t.Errorf("replica: usedBy %q, want the router of the weighted service", r.UsedBy)
	}
	var svc tTCPService
	apiGet(t, h+"/api/tcp/services/db", http.StatusNotFound, &e) // the HTTP one's name
	apiGet(t, h+"/api/tcp/services/split@file", http.StatusOK, &svc)

	var mws []tTCPMiddleware
	apiGet(t, h+"/api/tcp/middlewares", http.StatusOK, &mws)
	if len(mws) != 2 || mws[0].Name != "limit@file" || mws[1].Name != "office@file" {
		t.Fatalf("middlewares %+v", mws)
	}
	if l := mws[0]; l.Type != "inflightconn" || l.InFlightConn == nil || l.InFlightConn.Amount != 5 || !slices.Equal(l.UsedBy, []string{"db@file"}) {
		t.Errorf("limit: %+v", l)
	}
	if o := mws[1]; o.Type != "ipallowlist" || o.IPAllowList == nil || !slices.Equal(o.IPAllowList.SourceRange, []string{"10.0.0.0/8"}) ||
		!slices.Equal(o.UsedBy, []string{"db@file", "plain@file"}) {
		t.Errorf("office: %+v", o)
	}
	var mw tTCPMiddleware
	apiGet(t, h+"/api/tcp/middlewares/office", http.StatusOK, &mw)

	var o tOverview
	apiGet(t, h+"/api/overview", http.StatusOK, &o)
	if o.TCP.Routers.Total != 2 || o.TCP.Services.Total != 3 || o.TCP.Middlewares.Total != 2 || o.HTTP.Routers.Total != 1 {
		t.Errorf("overview %+v", o)
	}
	var httpRouter tRouter
	apiGet(t, h+"/api/http/routers/db", http.StatusOK, &httpRouter)
	if httpRouter.Rule != "Host(`db.example.com`)" {
		t.Errorf("the HTTP router db: %+v", httpRouter)
	}
}

// startAPIServer serves rt's API and returns its URL.
func startAPIServer(t *testing.T, rt *Router, opts APIOptions) string {
	t.Helper()
	h := httptest.NewServer(rt.APIHandler(opts))
	t.Cleanup(h.Close)
	return h.URL
}

// TestAPITCPServerStatus: serverStatus shows what the health check found:
// a server that refuses connections is DOWN, one that answers UP.
func TestAPITCPServerStatus(t *testing.T) {
	up := startTCPServer(t, nil, echoAs("up")).addr
	dead := deadAddr(t)
	rt := New(Config{})
	t.Cleanup(rt.Close)
	if err := rt.Apply(parseConfig(t, fmt.Sprintf(`
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
service = "db"
[[tcp.services.db.loadBalancer.servers]]
address = %q
[[tcp.services.db.loadBalancer.servers]]
address = %q
[tcp.services.db.loadBalancer.healthCheck]
interval = "50ms"
timeout = "40ms"
`, up, dead))); err != nil {
		t.Fatal(err)
	}
	h := startAPIServer(t, rt, APIOptions{})
	var svc tTCPService
	deadline := time.Now().Add(10 * time.Second)
	for {
		apiGet(t, h+"/api/tcp/services/db", http.StatusOK, &svc)
		if svc.ServerStatus[up] == "UP" && svc.ServerStatus[dead] == "DOWN" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serverStatus %v, want %s UP and %s DOWN", svc.ServerStatus, up, dead)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
