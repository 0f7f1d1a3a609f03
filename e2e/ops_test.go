package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
)

// tollgateCmd runs the tollgate binary with args and returns its exit code
// and output.
func tollgateCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// waitSerial waits until name's stored certificate is not old (a serial)
// and returns it.
func (c *cluster) waitSerial(name, old string, timeout time.Duration) *acme.CertRecord {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if rec := c.certs()[name]; rec != nil && rec.Serial != old {
			return rec
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s still has serial %s after %s", name, old, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestOperatorCommands: the operator's commands against a running
// cluster on etcd: cluster status names the leader and both replicas in
// sync; certs renew makes the leader renew at once; certs revoke revokes
// at the CA and the leader orders a new certificate, which every replica
// serves.
func TestOperatorCommands(t *testing.T) {
	c := newCluster(t, "etcd://"+etcdAddr(t), "ops", 2)
	all := names("o", 2)
	c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", all)
	c.start()
	got := c.waitCerts(all, 3*time.Minute, nil)
	cfg := c.replicas[0].configFile

	lead := c.leader()
	code, out := tollgateCmd(t, "cluster", "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "leader:        "+lead.id) || strings.Count(out, "  yes") != 2 || !strings.Contains(out, "certificates:  2 ") {
		t.Fatalf("cluster status: exit %d\n%s", code, out)
	}
	code, out = tollgateCmd(t, "certs", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, all[0]) || !strings.Contains(out, all[1]) {
		t.Fatalf("certs list: exit %d\n%s", code, out)
	}

	// renew
	code, out = tollgateCmd(t, "certs", "renew", "--config", cfg, all[0])
	if code != 0 {
		t.Fatalf("certs renew: exit %d\n%s", code, out)
	}
	renewed := c.waitSerial(all[0], got[all[0]].Serial, time.Minute)
	if renewed.ARI != nil && renewed.ARI.RenewAt.Before(time.Now()) {
		t.Fatalf("the renewed record is due again: %+v", renewed.ARI)
	}

	// revoke
	old := got[all[1]].Serial
	code, out = tollgateCmd(t, "certs", "revoke", "--config", cfg, "--reason", "superseded", all[1])
	if code != 0 || !strings.Contains(out, "revoked "+all[1]) {
		t.Fatalf("certs revoke: exit %d\n%s", code, out)
	}
	if st := c.pebble.CertStatus(t, old); st != "Revoked" {
		t.Fatalf("Pebble says the revoked certificate is %q", st)
	}
	replaced := c.waitSerial(all[1], old, time.Minute)
	if st := c.pebble.CertStatus(t, replaced.Serial); st != "Valid" {
		t.Fatalf("Pebble says the new certificate is %q", st)
	}
	want := c.certs()
	c.checkServed(want, all)
}
