package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

// tcpEverything sets every key of [tcp], each to a value other than its
// zero, in a valid configuration.
const tcpEverything = `
[entryPoints.websecure]
address = ":443"
[entryPoints.websecure.http.tls]
[entryPoints.postgres]
address = ":5432"

[tls.options.modern]
minVersion = "VersionTLS13"

[acme]
email = "ops@example.com"
insecurePlaintextKeys = true
onHostRule = true
[acme.tlsChallenge]

[tcp.routers.db]
rule = "HostSNI(` + "`db.example.com`" + `) && ALPN(` + "`postgresql`" + `)"
entryPoints = ["websecure"]
middlewares = ["office", "limit"]
service = "db"
priority = 10
[tcp.routers.db.tls]
options = "modern"
  [[tcp.routers.db.tls.domains]]
  main = "db.example.com"
  sans = ["db2.example.com"]

[tcp.routers.pass]
rule = 'HostSNIRegexp(` + "`^[a-z]+\\.example\\.org$`" + `)'
service = "split"
[tcp.routers.pass.tls]
passthrough = true

[tcp.routers.plain]
rule = "HostSNI(` + "`*`" + `) && ClientIP(` + "`10.0.0.0/8`" + `)"
entryPoints = ["postgres"]
service = "db"

[tcp.services.db.loadBalancer]
serversTransport = "backend"
  [[tcp.services.db.loadBalancer.servers]]
  address = "10.0.0.7:5432"
  tls = true
  weight = 2
  [tcp.services.db.loadBalancer.healthCheck]
  port = 5433
  send = "PING\r\n"
  expect = "+PONG"
  interval = "10s"
  unhealthyInterval = "3s"
  timeout = "2s"

[tcp.services.other.loadBalancer]
  [[tcp.services.other.loadBalancer.servers]]
  address = "db.internal:5432"

[tcp.services.split.weighted]
  [[tcp.services.split.weighted.services]]
  name = "db"
  weight = 3
  [[tcp.services.split.weighted.services]]
  name = "other"

[tcp.middlewares.office.ipAllowList]
sourceRange = ["10.0.0.0/8", "2001:db8::/32"]

[tcp.middlewares.limit.inFlightConn]
amount = 10

[tcp.serversTransports.backend]
dialTimeout = "5s"
dialKeepAlive = "-1s"
idleTimeout = "1h"
terminationDelay = "200ms"
[tcp.serversTransports.backend.proxyProtocol]
version = 1
[tcp.serversTransports.backend.tls]
serverName = "db.internal"
rootCAs = ["/etc/tollgate/ca.pem"]
  [[tcp.serversTransports.backend.tls.certificates]]
  certFile = "/etc/tollgate/client.pem"
  keyFile = "/etc/tollgate/client-key.pem"

[tcp.serversTransports.loose.tls]
insecureSkipVerify = true

# HTTP names are a namespace apart: a router and a service "db" again.
[http.routers.db]
rule = "Host(` + "`db.example.com`" + `)"
service = "db"
[http.services.db.loadBalancer]
  [[http.services.db.loadBalancer.servers]]
  url = "http://10.0.0.7:8080"
`

// TestTCPEverything checks that a configuration setting every key of
// [tcp] is valid and round-trips through the store encoding unchanged.
func TestTCPEverything(t *testing.T) {
	cfg, err := Parse("tcp.toml", []byte(tcpEverything))
	if err != nil {
		t.Fatal(err)
	}
	if unset := zeroFields("tcp", reflect.ValueOf(cfg.TCP)); len(unset) > 0 {
		t.Errorf("keys of [tcp] the test leaves unset: %s", strings.Join(unset, ", "))
	}
	roundTrip(t, cfg)
}

// zeroFields lists the fields under v that are zero in every instance:
// a map, slice or pointer counts as set if one of its elements sets the
// field.
func zeroFields(path string, v reflect.Value) []string {
	set := map[string]bool{}
	var all []string
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				walk(path, v.MapIndex(k))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(path, v.Index(i))
			}
		case reflect.Struct:
			if v.Type() == durationType {
				return
			}
			for _, f := range fieldsOf(v.Type()) {
				at := path + "." + f.name
				if !slices.Contains(all, at) {
					all = append(all, at)
				}
				fv := v.Field(f.index)
				if !fv.IsZero() {
					set[at] = true
				}
				walk(at, fv)
			}
		}
	}
	walk(path, v)
	var out []string
	for _, f := range all {
		if !set[f] {
			out = append(out, f)
		}
	}
	return out
}

// TestTCPThroughStore publishes a configuration setting every key of
// [tcp] to each store and loads it back equal.
func TestTCPThroughStore(t *testing.T) {
	cfg, err := Parse("tcp.toml", []byte(tcpEverything))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := testContext(t)
			s := b.Client(t)
			if _, err := Publish(ctx, s, cfg, PublishOptions{Prefix: "tcp"}); err != nil {
				t.Fatal(err)
			}
			snap, err := Load(ctx, s, "tcp")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(snap.Config.TCP, cfg.TCP) {
				t.Errorf("loaded [tcp] differs:\n got %+v\nwant %+v", snap.Config.TCP, cfg.TCP)
			}
		})
	}
}
