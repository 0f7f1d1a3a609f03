package kvstoretest

import (
	"context"
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// BenchTarget is what Bench measures.
type BenchTarget struct {
	// Client opens a new client Store of the cluster under test; Bench
	// closes what it opens.
	Client func(b *testing.B) kvstore.Store
	// ServerCPU returns the CPU time the server process has used so far,
	// so that the server's cost per operation is reported too. Nil for an
	// in-process store, whose cost the client figure already includes.
	ServerCPU func() time.Duration
}

// Bench runs the shared kvstore benchmarks: Get and Put throughput and
// watch latency (a put at one client until the event arrives at another).
// Besides ns/op (wall time, noisy on a shared machine) each reports the CPU
// time this process and the server spent per operation, which is steadier.
func Bench(b *testing.B, target BenchTarget) {
	value := make([]byte, 256)
	// Writes carry a sequence number that runs on across the benchmark's
	// rounds: Consul ignores a put of the value a key already holds.
	var seq uint64
	next := func() []byte {
		seq++
		v := make([]byte, len(value))
		binary.BigEndian.PutUint64(v, seq)
		return v
	}
	b.Run("Get", func(b *testing.B) { benchGet(b, target, value) })
	b.Run("GetStale", func(b *testing.B) { benchGet(b, target, value, kvstore.Stale) })
	b.Run("GetParallel", func(b *testing.B) {
		s := target.Client(b)
		defer s.Close()
		ctx := context.Background()
		if _, err := kvstore.Put(ctx, s, "bench/get", value); err != nil {
			b.Fatal(err)
		}
		measure(b, target, func() {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Get(ctx, "bench/get"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	})
	b.Run("Put", func(b *testing.B) {
		s := target.Client(b)
		defer s.Close()
		ctx := context.Background()
		measure(b, target, func() {
			for i := 0; i < b.N; i++ {
				if _, err := kvstore.Put(ctx, s, fmt.Sprintf("bench/put/%d", i%1000), next()); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("WatchLatency", func(b *testing.B) {
		writer, watcher := target.Client(b), target.Client(b)
		defer writer.Close()
		defer watcher.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events, err := watcher.Watch(ctx, "bench/watch/", 0)
		if err != nil {
			b.Fatal(err)
		}
		<-events // the initial resync
		measure(b, target, func() {
			for i := 0; i < b.N; i++ {
				rev, err := kvstore.Put(ctx, writer, "bench/watch/k", next())
				if err != nil {
					b.Fatal(err)
				}
				for ev := range events {
					if ev.Revision >= rev {
						break
					}
				}
			}
		})
	})
}

func benchGet(b *testing.B, target BenchTarget, value []byte, opts ...kvstore.ReadOption) {
	s := target.Client(b)
	defer s.Close()
	ctx := context.Background()
	if _, err := kvstore.Put(ctx, s, "bench/get", value); err != nil {
		b.Fatal(err)
	}
	measure(b, target, func() {
		for i := 0; i < b.N; i++ {
			if _, err := s.Get(ctx, "bench/get", opts...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// measure runs fn as the timed part of b and reports CPU per operation.
func measure(b *testing.B, target BenchTarget, fn func()) {
	b.ReportAllocs()
	cpu0, srv0 := processCPU(), serverCPU(target)
	b.ResetTimer()
	fn()
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(processCPU()-cpu0)/n, "client-cpu-ns/op")
	if target.ServerCPU != nil {
		b.ReportMetric(float64(serverCPU(target)-srv0)/n, "server-cpu-ns/op")
	}
}

func serverCPU(target BenchTarget) time.Duration {
	if target.ServerCPU == nil {
		return 0
	}
	return target.ServerCPU()
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
