package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDNS01Wildcard: a wildcard certificate through DNS-01 with lego's
// exec provider, which here sets TXT records on the test DNS server that
// the CA asks; every replica serves it for any one-label subdomain.
func TestDNS01Wildcard(t *testing.T) {
	c := newCluster(t, "etcd://"+etcdAddr(t), "dns", 2)
	script := filepath.Join(t.TempDir(), "dns-hook")
	hook := fmt.Sprintf(`#!/bin/sh
# Called by lego as: dns-hook present|cleanup FQDN VALUE
case "$1" in
present) exec curl -fsS -X POST -d "{\"host\":\"$2\",\"value\":\"$3\"}" %[1]s/set-txt ;;
cleanup) exec curl -fsS -X POST -d "{\"host\":\"$2\"}" %[1]s/clear-txt ;;
esac
`, c.pebble.DNSManagement())
	if err := os.WriteFile(script, []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	c.env = []string{"EXEC_PATH=" + script, "EXEC_SEQUENCE_INTERVAL=1", "EXEC_POLLING_INTERVAL=1", "EXEC_PROPAGATION_TIMEOUT=30"}
	// The test DNS server answers no SOA queries, which lego's propagation
	// check needs: the check is off.
	c.configure(fmt.Sprintf("[acme.dnsChallenge]\nprovider = \"exec\"\nresolvers = [%q]\ndisablePropagationCheck = true\n", c.pebble.DNSAddr()),
		[]string{"*.wild.tollgate.test"})
	c.start()
	got := c.waitCerts([]string{"*.wild.tollgate.test"}, 3*time.Minute, nil)
	got["a.wild.tollgate.test"] = got["*.wild.tollgate.test"]
	got["b.wild.tollgate.test"] = got["*.wild.tollgate.test"]
	c.checkServed(got, []string{"a.wild.tollgate.test", "b.wild.tollgate.test"})
}
