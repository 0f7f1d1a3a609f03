package acmebench

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Scale targets.
const (
	readyTarget = 3 * time.Second
	rssTargetKB = 150 << 10
	// spotChecks is how many random names are checked in a handshake
	// once the replica is ready.
	spotChecks = 5
)

// TestScale stores CERTS certificate records on each store, then starts
// one replica on it RUNS times and measures the time from process start
// until /ready answers 200, which the replica does only once its cache has
// applied every record, and its resident memory then.
func TestScale(t *testing.T) {
	enabled(t)
	for _, kind := range backends(t, "file", "etcd", "consul") {
		t.Run(kind, func(t *testing.T) { scale(t, kind) })
	}
}

func scale(t *testing.T, kind string) {
	n := envInt(t, envCerts, 10000)
	runs := envInt(t, envRuns, 3)
	endpoint := startStore(t, kind)
	keyFile, kr := newKeyring(t)
	is := newIssuer(t, kr)
	keys := acme.NewKeys(prefix)
	// The records say a leader r1 in its first term wrote them.
	w := writer{node: "r1", token: 1}

	st := openStore(t, endpoint)
	names, serials := seed(t, kind, st, is, keys, n, w)
	if kind == "file" {
		// Only one process may open the embedded store.
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = nil
	} else {
		t.Cleanup(func() { st.Close() })
	}

	var ready []time.Duration
	var rss, hwm []int64
	var perRun []string
	for run := 1; run <= runs; run++ {
		r := startReplica(t, endpoint, keyFile, "r1")
		at := r.waitReady(t, 3*time.Minute)
		mem, err := memStatus(r.pid())
		if err != nil {
			t.Fatal(err)
		}
		d := at.Sub(r.started)
		ready, rss, hwm = append(ready, d), append(rss, mem["VmRSS"]), append(hwm, mem["VmHWM"])
		perRun = append(perRun, fmt.Sprintf("%.2fs %s/%s", d.Seconds(),
			strings.TrimSuffix(mib(mem["VmRSS"]), " MiB"), mib(mem["VmHWM"])))
		spotCheck(t, r, is, names, serials)
		if gc := r.gcTrace(4); gc != "" {
			t.Logf("scale %s run %d: replica's %s", kind, run, gc)
		}
		t.Logf("scale %s run %d: ready %.2fs after start; VmRSS %s, VmHWM %s (RssAnon %s, RssFile %s: %s); %d random names served with the stored serial and a valid chain",
			kind, run, d.Seconds(), mib(mem["VmRSS"]), mib(mem["VmHWM"]), mib(mem["RssAnon"]), mib(mem["RssFile"]),
			fileRSS(r), spotChecks)
		if run == runs {
			time.Sleep(3 * time.Second)
			if later, err := memStatus(r.pid()); err == nil {
				t.Logf("scale %s: 3 s after ready: VmRSS %s, VmHWM %s (RssAnon %s, RssFile %s)",
					kind, mib(later["VmRSS"]), mib(later["VmHWM"]), mib(later["RssAnon"]), mib(later["RssFile"]))
			}
			if st != nil {
				renewLoaded(t, kind, st, r, is, keys, names, w)
			}
		}
		r.stop(t)
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	t.Logf("scale %s: %d certificates: start to ready median %.2fs, VmRSS at ready median %s, VmHWM median %s (targets ≤ %v: %s, ≤ %s: %s); per run (ready RSS/HWM): %s",
		kind, n, median(ready).Seconds(), mib(median(rss)), mib(median(hwm)),
		readyTarget, verdict(median(ready) <= readyTarget), mib(rssTargetKB), verdict(median(rss) <= rssTargetKB),
		strings.Join(perRun, ", "))
}

// fileRSS says how much of r's resident memory is its binary's pages and
// those of other files of at least 1 MiB (the embedded store's file, which
// bbolt maps).
func fileRSS(r *replica) string {
	files, err := rssByFile(r.pid())
	if err != nil {
		return err.Error()
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", r.pid()))
	out := fmt.Sprintf("binary %s", mib(files[exe]))
	for path, kb := range files {
		if path != exe && kb >= 1024 {
			out += fmt.Sprintf(", %s %s", filepath.Base(path), mib(kb))
		}
	}
	return out
}

// seed stores n certificate records made by is for made-up names, each
// with its www. name, and returns the names and serials.
func seed(t testing.TB, kind string, st kvstore.Store, is *issuer, keys acme.Keys, n int, w writer) (names, serials []string) {
	t.Helper()
	names, serials = make([]string, n), make([]string, n)
	ops := make([]kvstore.Op, n)
	start := time.Now()
	err := parallel(n, func(i int) error {
		names[i] = fmt.Sprintf("site-%05d.bench.test", i)
		key, err := keys.Cert(names[i])
		if err != nil {
			return err
		}
		val, serial, err := is.record(key, []string{names[i], "www." + names[i]}, w)
		if err != nil {
			return err
		}
		ops[i], serials[i] = kvstore.PutOp(key, val), serial
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	made := time.Since(start)
	total := 0
	for _, op := range ops {
		total += len(op.Value)
	}
	start = time.Now()
	batches := putAll(t, st, ops)
	t.Logf("scale %s: %d records of %d bytes on average (%.1f MB) made in %v, written in %d batches in %v",
		kind, n, total/n, float64(total)/1e6, made.Round(time.Millisecond), batches, time.Since(start).Round(time.Millisecond))
	return names, serials
}

// spotCheck verifies that r serves random names, main or www., with the
// stored serial and a chain that verifies to the issuer's root.
func spotCheck(t *testing.T, r *replica, is *issuer, names, serials []string) {
	t.Helper()
	for range spotChecks {
		i := rand.IntN(len(names))
		name := names[i]
		if rand.IntN(2) == 0 {
			name = "www." + name
		}
		leaf, err := handshake(r.addr(), &tls.Config{ServerName: name, RootCAs: is.roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("replica %s: handshake for %s: %v", r.id, name, err)
		}
		if got := serialOf(leaf); got != serials[i] {
			t.Fatalf("replica %s serves serial %s for %s, the store holds %s", r.id, got, name, serials[i])
		}
	}
}

// renewLoaded renews one random certificate while r holds all of them and
// logs how long r took to serve it.
func renewLoaded(t *testing.T, kind string, st kvstore.Store, r *replica, is *issuer, keys acme.Keys, names []string, w writer) {
	t.Helper()
	name := names[rand.IntN(len(names))]
	key, err := keys.Cert(name)
	if err != nil {
		t.Fatal(err)
	}
	val, serial, err := is.record(key, []string{name, "www." + name}, w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, _ := cpuTicks(r.pid())
	var count, nanos atomic.Int64
	t0 := time.Now()
	if _, err := kvstore.Put(ctx, st, key, val); err != nil {
		t.Fatal(err)
	}
	d, err := pollServed(ctx, r.addr(), name, serial, t0, &count, &nanos)
	if err != nil {
		t.Fatalf("renewal of %s not served: %v", name, err)
	}
	time.Sleep(time.Second)
	after, _ := cpuTicks(r.pid())
	mem, _ := memStatus(r.pid())
	t.Logf("scale %s: one renewal with every certificate held: served after %s; replica CPU for it %.0f ms (incl. %d polling handshakes and 1 s after); VmRSS then %s, VmHWM %s",
		kind, ms(d), float64(after-before)*1000/ticksPerSecond(t), count.Load(), mib(mem["VmRSS"]), mib(mem["VmHWM"]))
}
