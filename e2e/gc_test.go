package e2e

import (
	"testing"
	"time"
)

// TestGarbageCollect: with garbage collection on, a certificate no longer
// configured is deleted after the grace period; the others stay.
func TestGarbageCollect(t *testing.T) {
	c := newCluster(t, "etcd://"+etcdAddr(t), "gc", 2)
	const challenge = "[acme.httpChallenge]\nentryPoint = \"web\"\n[acme.garbageCollect]\ngracePeriod = \"3s\"\n"
	all := names("g", 2)
	c.configure(challenge, all)
	c.start()
	c.waitCerts(all, 3*time.Minute, nil)
	c.configure(challenge, all[:1])
	deadline := time.Now().Add(time.Minute)
	for {
		got := c.certs()
		if got[all[1]] == nil {
			if got[all[0]] == nil {
				t.Fatalf("%s, still configured, was deleted too", all[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still stored a minute after it was unconfigured with a 3s grace period", all[1])
		}
		time.Sleep(250 * time.Millisecond)
	}
}
