package acme_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

func procStatus(field string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			return strings.TrimSpace(strings.TrimPrefix(l, field))
		}
	}
	return ""
}

func TestMemAdhoc(t *testing.T) {
	if os.Getenv("MEMADHOC") == "" {
		t.Skip()
	}
	srv := testserver.Etcd(t)
	if os.Getenv("MEMADHOC") == "consul" {
		srv = testserver.Consul(t)
	}
	ep := os.Getenv("MEMADHOC") + "://" + srv.Addr
	ctx := context.Background()
	s, err := backend.Open(ctx, ep, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, kr := acme.NewKeys("bench"), parseKeyring(t, newKey(t))
	is := newIssuer(t)
	var ops []kvstore.Op
	n := 10000
	for i := range n {
		main := fmt.Sprintf("site%05d.example.com", i)
		key, _ := keys.Cert(main)
		ops = append(ops, kvstore.PutOp(key, is.record(t, kr, key, []string{main, "www." + main}, int64(i+2))))
		if len(ops) == 32 || i == n-1 {
			if _, err := s.Apply(ctx, nil, ops...); err != nil {
				t.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	ops = nil
	runtime.GC()
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	t.Logf("before: rss %s hwm %s", procStatus("VmRSS:"), procStatus("VmHWM:"))
	if os.Getenv("LISTONLY") != "" {
		l, err := s.List(ctx, keys.Prefix())
		t.Logf("list: %d %v rss %s hwm %s", len(l.KVs), err, procStatus("VmRSS:"), procStatus("VmHWM:"))
		runtime.KeepAlive(l)
		return
	}
	c, _ := acme.NewCache(acme.CacheConfig{Store: s, Keys: keys, Keyring: kr})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Run(rctx) }()
	stopPoll := make(chan struct{})
	polled := make(chan string)
	go func() {
		var peakAlloc, peakSys, peakGoal uint64
		var ms runtime.MemStats
		for {
			select {
			case <-stopPoll:
				polled <- fmt.Sprintf("peak alloc %d MB sys %d MB goal %d MB numgc %d", peakAlloc>>20, peakSys>>20, peakGoal>>20, ms.NumGC)
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peakAlloc, peakSys, peakGoal = max(peakAlloc, ms.HeapAlloc), max(peakSys, ms.HeapSys), max(peakGoal, ms.NextGC)
		}
	}()
	<-c.Ready()
	close(stopPoll)
	t.Log(<-polled)
	t.Logf("ready after %v: rss %s hwm %s certs %d", time.Since(start), procStatus("VmRSS:"), procStatus("VmHWM:"), len(c.Snapshot().Certs))
	for range 5 {
		time.Sleep(time.Second)
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("settled: rss %s hwm %s heapalloc %d MB heapsys %d MB", procStatus("VmRSS:"), procStatus("VmHWM:"), ms.HeapAlloc>>20, ms.HeapSys>>20)
	if f := os.Getenv("HEAPPROF"); f != "" {
		out, _ := os.Create(f)
		pprof.Lookup("heap").WriteTo(out, 0)
		out.Close()
	}
	runtime.KeepAlive(c)
	cancel()
	<-done
}
