package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// TestDemo runs "make run" and "make demo-cluster" (on etcd and on
// Consul) in check mode: each must obtain a certificate from Pebble, serve
// it over HTTPS, and the curl command it prints must work.
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    options
		want []string
	}{
		{"single", options{}, []string{"replica r1 ready", "HTTPS works", "through replica r1", "curl --cacert"}},
		{"cluster etcd", options{cluster: true, kv: "etcd"}, []string{"replica r3 ready", "replica r2 serves the same certificate", "leader:        r", "curl --cacert"}},
		{"cluster consul", options{cluster: true, kv: "consul"}, []string{"Consul UI: http://", "replica r3 serves the same certificate", "leader:        r"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var out testserver.Buffer
			o := tc.o
			o.check, o.freePorts, o.out, o.dir = true, true, &out, t.TempDir()
			if err := run(ctx, o); err != nil {
				t.Fatalf("%v\noutput:\n%s", err, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestDemoUsage(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), options{cluster: true, kv: "zookeeper", out: &out})
	if err == nil || !strings.Contains(err.Error(), "--kv must be etcd or consul") {
		t.Fatalf("run with --kv zookeeper: %v", err)
	}
}
