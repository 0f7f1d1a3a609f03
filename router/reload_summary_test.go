package router

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestReloadSummary: a reload logs one line saying which routers,
// services and middlewares were added, removed and changed, by name, at
// most ten names of each kind; the first configuration logs none.
func TestReloadSummary(t *testing.T) {
	var buf strings.Builder
	rt := New(Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	defer rt.Close()
	svc := func(name, url string) string {
		return fmt.Sprintf("[[http.services.%s.loadBalancer.servers]]\nurl = %q\n", name, url)
	}
	router := func(name, rule, service string) string {
		return fmt.Sprintf("[http.routers.%s]\nrule = \"%s\"\nservice = %q\n", name, rule, service)
	}
	doc := "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n" +
		router("keep", "Path(`/k`)", "a") + router("edit", "Path(`/e`)", "a") + router("gone", "Path(`/g`)", "a") +
		svc("a", "http://127.0.0.1:9") + svc("b", "http://127.0.0.1:9")
	if err := rt.Apply(parseConfig(t, doc)); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("the first configuration logged:\n%s", buf.String())
	}
	next := "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n" +
		router("keep", "Path(`/k`)", "a") + router("edit", "Path(`/e2`)", "a") +
		svc("a", "http://127.0.0.1:9") + svc("b", "http://127.0.0.1:10")
	for i := range 12 {
		next += router(fmt.Sprintf("new%02d", i), fmt.Sprintf("Path(`/n%d`)", i), "b")
	}
	if err := rt.Apply(parseConfig(t, next)); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Msg               string
		Routers, Services map[string]any
		Middlewares       map[string]any
	}
	out := strings.TrimSpace(buf.String())
	if strings.Count(out, "\n") != 0 {
		t.Fatalf("a reload logged more than one line:\n%s", out)
	}
	if err := json.Unmarshal([]byte(out), &line); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := `{"added":12,"added_names":["new00","new01","new02","new03","new04","new05","new06","new07","new08","new09","+2 more"],` +
		`"changed":1,"changed_names":["edit"],"removed":1,"removed_names":["gone"]}`
	if got, _ := json.Marshal(line.Routers); string(got) != want {
		t.Errorf("routers = %s\nwant %s", got, want)
	}
	if got, _ := json.Marshal(line.Services); string(got) != `{"added":0,"changed":1,"changed_names":["b"],"removed":0}` {
		t.Errorf("services = %s", got)
	}
	if got, _ := json.Marshal(line.Middlewares); string(got) != `{"added":0,"changed":0,"removed":0}` {
		t.Errorf("middlewares = %s", got)
	}
	if line.Msg != "configuration applied" {
		t.Errorf("msg = %q", line.Msg)
	}
}

// TestReloadSummaryTransports: a change of a servers transport alone is
// named in the reload line, which otherwise would say nothing changed.
func TestReloadSummaryTransports(t *testing.T) {
	var buf strings.Builder
	rt := New(Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	defer rt.Close()
	doc := func(serverName string) string {
		return "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n" +
			"[http.routers.r]\nrule = \"Path(`/`)\"\nservice = \"s\"\n" +
			"[http.services.s.loadBalancer]\nserversTransport = \"t\"\n[[http.services.s.loadBalancer.servers]]\nurl = \"https://127.0.0.1:9\"\n" +
			fmt.Sprintf("[http.serversTransports.t]\nserverName = %q\n", serverName)
	}
	for _, name := range []string{"a.internal", "b.internal"} {
		if err := rt.Apply(parseConfig(t, doc(name))); err != nil {
			t.Fatal(err)
		}
	}
	var line struct{ ServersTransports map[string]any }
	if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if got, _ := json.Marshal(line.ServersTransports); string(got) != `{"added":0,"changed":1,"changed_names":["t"],"removed":0}` {
		t.Errorf("serversTransports = %s, want t changed; line:\n%s", got, buf.String())
	}
}

// TestReloadSummaryTCP: TCP middlewares and servers transports are named
// in the reload line as the HTTP ones are; a change of either alone is
// not a line of zeros.
func TestReloadSummaryTCP(t *testing.T) {
	var buf strings.Builder
	rt := New(Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	defer rt.Close()
	doc := func(amount int, transports string) string {
		return "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n" +
			"[tcp.routers.r]\nrule = \"HostSNI(`*`)\"\nservice = \"s\"\nmiddlewares = [\"limit\"]\n" +
			"[tcp.services.s.loadBalancer]\n[[tcp.services.s.loadBalancer.servers]]\naddress = \"127.0.0.1:9\"\n" +
			fmt.Sprintf("[tcp.middlewares.limit.inFlightConn]\namount = %d\n", amount) + transports
	}
	steps := []struct {
		doc                    string
		middlewares, transport string
	}{
		{doc(2, ""), "", ""},
		{doc(3, ""), `{"added":0,"changed":1,"changed_names":["limit"],"removed":0}`, ""},
		{doc(3, "[tcp.serversTransports.x]\ndialTimeout = \"5s\"\n"), `{"added":0,"changed":0,"removed":0}`, `{"added":1,"added_names":["x"],"changed":0,"removed":0}`},
		{doc(3, "[tcp.serversTransports.x]\ndialTimeout = \"6s\"\n"), `{"added":0,"changed":0,"removed":0}`, `{"added":0,"changed":1,"changed_names":["x"],"removed":0}`},
	}
	for i, s := range steps {
		buf.Reset()
		if err := rt.Apply(parseConfig(t, s.doc)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &line); err != nil {
			t.Fatalf("step %d: %v: %s", i, err, buf.String())
		}
		group := func(key string) string { // sorted keys; "" when left out
			if line[key] == nil {
				return ""
			}
			b, _ := json.Marshal(line[key])
			return string(b)
		}
		if got := group("tcp_middlewares"); got != s.middlewares {
			t.Errorf("step %d: tcp_middlewares = %s, want %s; line:\n%s", i, got, s.middlewares, buf.String())
		}
		if got := group("tcp_serversTransports"); got != s.transport {
			t.Errorf("step %d: tcp_serversTransports = %s, want %s; line:\n%s", i, got, s.transport, buf.String())
		}
	}
}
