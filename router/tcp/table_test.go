package tcp

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
)

func TestMatch(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	tlsHello := func(sni string, alpn ...string) *Hello {
		return &Hello{TLS: true, ServerName: sni, ALPN: alpn, ClientIP: ip}
	}
	for _, tc := range []struct {
		rule  string
		hello *Hello
		want  bool
	}{
		{"HostSNI(`a.example.com`)", tlsHello("a.example.com"), true},
		{"HostSNI(`A.Example.com`)", tlsHello("a.example.com"), true},
		{"HostSNI(`a.example.com`)", tlsHello("b.example.com"), false},
		{"HostSNI(`a.example.com`)", tlsHello(""), false},
		{"HostSNI(`*.example.com`)", tlsHello("a.example.com"), true},
		{"HostSNI(`*.example.com`)", tlsHello("a.b.example.com"), false},
		{"HostSNI(`*.example.com`)", tlsHello("example.com"), false},
		{"HostSNI(`*`)", tlsHello(""), true},
		{"HostSNI(`*`)", &Hello{ClientIP: ip}, true},
		{"HostSNIRegexp(`^[a-z]+\\.example\\.com$`)", tlsHello("db.example.com"), true},
		{"HostSNIRegexp(`^[a-z]+\\.example\\.com$`)", tlsHello("db1.example.com"), false},
		{"ClientIP(`192.0.2.0/24`)", &Hello{ClientIP: ip}, true},
		{"ClientIP(`192.0.2.8`)", &Hello{ClientIP: ip}, false},
		{"ClientIP(`192.0.2.7`)", &Hello{ClientIP: netip.MustParseAddr("::ffff:192.0.2.7")}, true},
		{"HostSNI(`a.example.com`) && ALPN(`h2`)", tlsHello("a.example.com", "http/1.1", "h2"), true},
		{"HostSNI(`a.example.com`) && ALPN(`h2`)", tlsHello("a.example.com", "http/1.1"), false},
		{"HostSNI(`a.example.com`) || HostSNI(`b.example.com`)", tlsHello("b.example.com"), true},
		{"HostSNI(`*`) && !ClientIP(`192.0.2.0/24`)", &Hello{ClientIP: ip}, false},
	} {
		expr, err := rule.ParseTCP(tc.rule)
		if err != nil {
			t.Fatalf("%s: %v", tc.rule, err)
		}
		m, err := compile(expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.rule, err)
		}
		if got := m(tc.hello); got != tc.want {
			t.Errorf("%s on %+v: %v, want %v", tc.rule, *tc.hello, got, tc.want)
		}
	}
}

func router(rule, service string, priority int, tls *config.TCPRouterTLS) *config.TCPRouter {
	return &config.TCPRouter{Rule: rule, Service: service, Priority: priority, TLS: tls}
}

func lb(addrs ...string) *config.TCPService {
	s := &config.TCPService{LoadBalancer: &config.TCPLoadBalancer{}}
	for _, a := range addrs {
		s.LoadBalancer.Servers = append(s.LoadBalancer.Servers, config.TCPServer{Address: a})
	}
	return s
}

// TestOrder: higher priority first, zero meaning the rule's length; ties
// by name. Routers without TLS match connections without TLS only.
func TestOrder(t *testing.T) {
	pass := &config.TCPRouterTLS{Passthrough: true}
	cfg := &config.Config{
		EntryPoints: map[string]*config.EntryPoint{"web": {Address: ":0"}},
		TCP: &config.TCP{
			Routers: map[string]*config.TCPRouter{
				"short":  router("HostSNI(`*`)", "s", 0, pass),
				"long":   router("HostSNI(`a.example.com`)", "s", 0, pass),
				"b-tie":  router("HostSNI(`*.example.com`)", "s", 100, pass),
				"a-tie":  router("HostSNI(`*.example.com`)", "s", 100, pass),
				"plain":  router("HostSNI(`*`)", "s", 1000, nil),
				"plain2": router("ClientIP(`10.0.0.0/8`)", "s", 2000, nil),
			},
			Services: map[string]*config.TCPService{"s": lb("127.0.0.1:1")},
		},
	}
	tab, err := Build(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	ep := tab.EntryPoint("web")
	var names []string
	for _, r := range ep.routes {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, " "); got != "plain2 plain a-tie b-tie long short" {
		t.Errorf("order: %s", got)
	}
	if !ep.HasTLS() {
		t.Error("HasTLS false")
	}
	for _, tc := range []struct {
		hello *Hello
		want  string
	}{
		{&Hello{TLS: true, ServerName: "a.example.com"}, "a-tie"},
		{&Hello{TLS: true, ServerName: "x.y.example.com"}, "short"},
		{&Hello{ClientIP: netip.MustParseAddr("10.1.2.3")}, "plain2"},
		{&Hello{ClientIP: netip.MustParseAddr("192.0.2.1")}, "plain"},
	} {
		if r := ep.Match(tc.hello); r == nil || r.Name != tc.want {
			t.Errorf("%+v: %v, want %s", *tc.hello, r, tc.want)
		}
	}
	if tab.EntryPoint("other") != nil {
		t.Error("an unknown entry point has routers")
	}
}

func TestBuildErrors(t *testing.T) {
	pass := &config.TCPRouterTLS{Passthrough: true}
	one := 1
	for _, tc := range []struct {
		name string
		tcp  *config.TCP
		want string
	}{
		{"no tls, server name", &config.TCP{
			Routers:  map[string]*config.TCPRouter{"r": router("HostSNI(`a.example.com`)", "s", 0, nil)},
			Services: map[string]*config.TCPService{"s": lb("127.0.0.1:1")},
		}, "can match TLS connections only"},
		{"unknown service", &config.TCP{
			Routers: map[string]*config.TCPRouter{"r": router("HostSNI(`*`)", "nope", 0, nil)},
		}, `tcp service "nope" is not defined`},
		{"bad rule", &config.TCP{
			Routers:  map[string]*config.TCPRouter{"r": router("Host(`a`)", "s", 0, pass)},
			Services: map[string]*config.TCPService{"s": lb("127.0.0.1:1")},
		}, "tcp router r: rule"},
		{"cycle", &config.TCP{
			Routers: map[string]*config.TCPRouter{"r": router("HostSNI(`*`)", "w", 0, nil)},
			Services: map[string]*config.TCPService{"w": {Weighted: &config.TCPWeighted{
				Services: []config.WeightedService{{Name: "w", Weight: &one}}}}},
		}, "send connections to each other"},
		{"bad address", &config.TCP{
			Routers:  map[string]*config.TCPRouter{"r": router("HostSNI(`*`)", "s", 0, nil)},
			Services: map[string]*config.TCPService{"s": lb("no-port")},
		}, "want host:port"},
		{"unknown middleware", &config.TCP{
			Routers:  map[string]*config.TCPRouter{"r": {Rule: "HostSNI(`*`)", Service: "s", Middlewares: []string{"m"}}},
			Services: map[string]*config.TCPService{"s": lb("127.0.0.1:1")},
		}, `tcp middleware "m" is not defined`},
	} {
		cfg := &config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: ":0"}}, TCP: tc.tcp}
		tab, err := Build(cfg, Options{})
		if err == nil {
			tab.Close()
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestInFlightRemovesCounters(t *testing.T) {
	f := &inFlight{limit: 2, open: map[netip.Addr]int64{}}
	a := netip.MustParseAddr("192.0.2.1")
	r1, ok1 := f.admit(a)
	r2, ok2 := f.admit(a)
	_, ok3 := f.admit(a)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("admitted %v %v %v, want true true false", ok1, ok2, ok3)
	}
	r1()
	r2()
	if len(f.open) != 0 {
		t.Errorf("counters left: %v", f.open)
	}
}

// TestInFlightAcrossReload: a table built to replace another keeps the
// connections its inFlightConn middleware counted, unless the amount
// changed.
func TestInFlightAcrossReload(t *testing.T) {
	build := func(amount int64, prev *Table) *Table {
		t.Helper()
		cfg := &config.Config{
			EntryPoints: map[string]*config.EntryPoint{"web": {Address: ":0"}},
			TCP: &config.TCP{
				Routers:     map[string]*config.TCPRouter{"r": {Rule: "HostSNI(`*`)", Service: "s", Middlewares: []string{"one"}}},
				Services:    map[string]*config.TCPService{"s": lb("127.0.0.1:1")},
				Middlewares: map[string]*config.TCPMiddleware{"one": {InFlightConn: &config.InFlightConn{Amount: amount}}},
			},
		}
		tab, err := Build(cfg, Options{Previous: prev})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tab.Close)
		return tab
	}
	a := netip.MustParseAddr("192.0.2.1")
	old := build(1, nil)
	if _, ok := old.inFlight["one"].admit(a); !ok {
		t.Fatal("first connection refused")
	}
	if _, ok := build(1, old).inFlight["one"].admit(a); ok {
		t.Error("after a reload, a second connection was admitted above the limit")
	}
	if _, ok := build(2, old).inFlight["one"].admit(a); !ok {
		t.Error("with a new amount, the connection was refused")
	}
}
