package acmebench

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Profiles of BenchmarkCacheLoad's loads alone (go test's -cpuprofile and
// -memprofile also cover making and writing the records).
const (
	// envCPUProfile names a file for the CPU profile of the loads.
	envCPUProfile = "TOLLGATE_ACME_CPUPROFILE"
	// envHeapProfile names a file for the heap profile taken once the
	// last load is done, after a GC: what a loaded cache keeps.
	envHeapProfile = "TOLLGATE_ACME_HEAPPROFILE"
)

// BenchmarkCacheLoad does in this process what a replica does at start:
// an acme.Cache follows CERTS certificate records in a store (file, etcd,
// consul; TOLLGATE_ACME_BACKENDS) until Ready. It reports the heap a
// loaded cache keeps (after a GC), per certificate, the peak heap of the
// load, how much the process's anonymous resident memory grew (at Ready,
// and after a GC that returns free memory to the OS: debug.FreeOSMemory),
// and how much of the kept heap the parsed leaf certificates are. For locating the scale
// benchmark's time and memory; it runs only with TOLLGATE_ACME_BENCH=1:
//
//	TOLLGATE_ACME_BENCH=1 TOLLGATE_ACME_BACKENDS=file TOLLGATE_ACME_HEAPPROFILE=/tmp/heap.pprof \
//	  go test -run '^$' -bench CacheLoad -benchtime 3x ./bench/acme
func BenchmarkCacheLoad(b *testing.B) {
	enabled(b)
	n := envInt(b, envCerts, 10000)
	for _, kind := range backends(b, "file", "etcd", "consul") {
		// Made once: the function given to b.Run runs more than once.
		endpoint := startStore(b, kind)
		_, kr := newKeyring(b)
		is := newIssuer(b, kr)
		keys := acme.NewKeys(prefix)
		st := openStore(b, endpoint)
		seed(b, kind, st, is, keys, n, writer{node: "r1", token: 1})
		b.Run(kind, func(b *testing.B) { cacheLoad(b, st, keys, kr, n) })
		st.Close()
	}
}

func cacheLoad(b *testing.B, st kvstore.Store, keys acme.Keys, kr *acme.Keyring, n int) {
	if f := os.Getenv(envCPUProfile); f != "" {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pprof.StopCPUProfile(); out.Close() })
	}
	runtime.GC()
	debug.FreeOSMemory()
	base, baseRSS := heapObjects(), anonRSS(b)
	var live, peak uint64
	var atReady, freed int64
	var leaves uint64
	b.ResetTimer()
	for i := range b.N {
		c, err := acme.NewCache(acme.CacheConfig{Store: st, Keys: keys, Keyring: kr})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		stop := samplePeak()
		go func() { done <- c.Run(ctx) }()
		select {
		case <-c.Ready():
		case err := <-done:
			b.Fatalf("cache stopped before it was ready: %v", err)
		case <-time.After(3 * time.Minute):
			b.Fatal("cache not ready after 3 minutes")
		}
		peak = max(peak, stop())
		b.StopTimer()
		atReady = anonRSS(b) - baseRSS
		if got := len(c.Snapshot().Certs); got != n {
			b.Fatalf("cache holds %d certificates, the store %d", got, n)
		}
		debug.FreeOSMemory()
		live, freed = heapObjects(), anonRSS(b)-baseRSS
		if f := os.Getenv(envHeapProfile); f != "" && i == b.N-1 {
			writeHeapProfile(b, f)
		}
		if i == b.N-1 {
			// What the parsed leaves (tls.Certificate.Leaf) take: drop them
			// here, in this process only, and see the heap shrink. Serving
			// does not need them (crypto/tls reads Leaf only to choose among
			// Config.Certificates, never for GetCertificate's answer).
			for _, e := range c.Snapshot().Certs {
				e.Pair.Leaf = nil
			}
			runtime.GC()
			leaves = live - heapObjects()
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		runtime.KeepAlive(c)
		runtime.GC()
		b.StartTimer()
	}
	b.ReportMetric(float64(live-base)/1e6, "kept-MB")
	b.ReportMetric(float64(live-base)/float64(n), "kept-B/cert")
	b.ReportMetric(float64(peak-base)/1e6, "peak-MB")
	b.ReportMetric(float64(leaves)/1e6, "leaf-MB")
	b.ReportMetric(float64(atReady)/1024, "rss-ready-MiB")
	b.ReportMetric(float64(freed)/1024, "rss-freed-MiB")
}

// anonRSS is this process's anonymous resident memory in kB.
func anonRSS(b *testing.B) int64 {
	m, err := memStatus(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	return m["RssAnon"]
}

// heapObjects is the heap's live and not yet swept objects in bytes.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// samplePeak samples heapObjects every millisecond until the returned
// function is called, which returns the highest value seen.
func samplePeak() (stop func() uint64) {
	done, out := make(chan struct{}), make(chan uint64)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var peak uint64
		for {
			peak = max(peak, heapObjects())
			select {
			case <-done:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-out }
}

func writeHeapProfile(b *testing.B, file string) {
	out, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	if err := pprof.Lookup("heap").WriteTo(out, 0); err != nil {
		b.Fatal(err)
	}
}
