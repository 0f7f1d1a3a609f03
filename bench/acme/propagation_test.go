package acmebench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Propagation settings.
const (
	replicas = 3
	// pollInterval is the pause between two polling handshakes of one
	// replica that did not yet serve the new serial.
	pollInterval = time.Millisecond
	// trialGap is the pause after every replica serves a trial's serial,
	// within the trial's CPU window: the replicas then report the revision
	// applied to the node registry (at most every 100 ms) and the cache's
	// 20 ms settle timer fires.
	trialGap = 150 * time.Millisecond
	// quietGap is the time between two updates of the no-polling phase.
	quietGap = 250 * time.Millisecond
	// newNameEvery makes every tenth trial a certificate for a new name.
	newNameEvery = 10
)

// TestPropagation measures, on each network store, the time from a
// certificate record's write (a Put straight into the store, as the
// leader's) until each of three replicas serves its serial in a TLS
// handshake, over TRIALS renewals of one name and certificates for new
// names; then the replicas' CPU time per update.
func TestPropagation(t *testing.T) {
	enabled(t)
	for _, kind := range backends(t, "etcd", "consul") {
		t.Run(kind, func(t *testing.T) { propagation(t, kind) })
	}
}

// trial is one update's figures.
type trial struct {
	newName bool
	// ack is when the store acknowledged the write; serve when each
	// replica first served the new serial; both since just before the
	// write was sent.
	ack   time.Duration
	serve [replicas]time.Duration
}

func (tr trial) all() time.Duration   { return slices.Max(tr.serve[:]) }
func (tr trial) first() time.Duration { return slices.Min(tr.serve[:]) }

func propagation(t *testing.T, kind string) {
	trials := envInt(t, envTrials, 200)
	tck := ticksPerSecond(t)
	endpoint := startStore(t, kind)
	keyFile, kr := newKeyring(t)
	is := newIssuer(t, kr)
	keys := acme.NewKeys(prefix)
	st := openStore(t, endpoint)
	t.Cleanup(func() { st.Close() })

	reps := make([]*replica, replicas)
	for i := range reps {
		reps[i] = startReplica(t, endpoint, keyFile, fmt.Sprintf("r%d", i+1))
	}
	for _, r := range reps {
		r.waitReady(t, time.Minute)
	}
	w := leaderOf(t, st)
	t.Logf("%s: %d replicas ready, %s leads (term %d)", kind, replicas, w.node, w.token)

	cpu := func() (sum int64) {
		for _, r := range reps {
			n, err := cpuTicks(r.pid())
			if err != nil {
				t.Fatalf("replica %s: %v", r.id, err)
			}
			sum += n
		}
		return sum
	}
	var handshakes, hsNanos atomic.Int64
	// update writes a new certificate for name and, unless quiet, returns
	// when every replica serves it.
	update := func(name string, poll bool) trial {
		key, err := keys.Cert(name)
		if err != nil {
			t.Fatal(err)
		}
		val, serial, err := is.record(key, []string{name, "www." + name}, w)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var tr trial
		var errs [replicas]error
		var wg sync.WaitGroup
		t0 := time.Now()
		if poll {
			for i, r := range reps {
				wg.Go(func() {
					tr.serve[i], errs[i] = pollServed(ctx, r.addr(), name, serial, t0, &handshakes, &hsNanos)
				})
			}
		}
		_, err = kvstore.Put(ctx, st, key, val)
		tr.ack = time.Since(t0)
		if err != nil {
			t.Fatalf("write of %s: %v", key, err)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %s does not serve serial %s of %s: %v; its log ends:\n%s",
					reps[i].id, serial, name, err, reps[i].logTail(30))
			}
		}
		return tr
	}

	// Warm-up, not counted: the first record and handshakes.
	base := "renew.bench.test"
	update(base, true)
	time.Sleep(time.Second)
	// The resolution of the figures: one replica's handshakes, one at a
	// time, with nothing else going on.
	var idleHS []time.Duration
	for range 50 {
		hs := time.Now()
		if _, err := handshake(reps[0].addr(), pollConfig(base)); err != nil {
			t.Fatal(err)
		}
		idleHS = append(idleHS, time.Since(hs))
	}
	t.Logf("propagation %s: a polling handshake takes %s (median of 50, idle cluster)", kind, ms(median(idleHS)))

	results := make([]trial, 0, trials)
	hs0 := handshakes.Load()
	hsNanos.Store(0)
	cpu0 := cpu()
	for i := range trials {
		name := base
		isNew := i%newNameEvery == newNameEvery-1
		if isNew {
			name = fmt.Sprintf("new-%04d.bench.test", i)
		}
		tr := update(name, true)
		tr.newName = isNew
		results = append(results, tr)
		time.Sleep(trialGap)
	}
	pollCPU := cpu() - cpu0
	hs := handshakes.Load() - hs0

	// Updates without polling, then as long idle, for the CPU an update
	// costs the replicas by itself.
	quiet := max(trials/2, 10)
	cpu1 := cpu()
	start := time.Now()
	for range quiet {
		update(base, false)
		time.Sleep(quietGap)
	}
	quietTime := time.Since(start)
	quietCPU := cpu() - cpu1
	cpu2 := cpu()
	time.Sleep(quietTime)
	idleCPU := cpu() - cpu2
	// Every replica still follows the store.
	update(base, true)

	report(t, kind, results)
	perTrial := float64(pollCPU) * 1000 / tck / float64(trials)
	t.Logf("propagation %s: replica CPU per trial while polling: %.1f ms for the %d replicas together (%.0f handshakes served per trial, %.2f ms each on the client; %d ticks of 1/%.0f s over %d trials)",
		kind, perTrial, replicas, float64(hs)/float64(trials), float64(hsNanos.Load())/1e6/float64(hs), pollCPU, tck, trials)
	perUpdate := float64(quietCPU-idleCPU) * 1000 / tck / float64(quiet)
	t.Logf("propagation %s: replica CPU per update without polling: %.2f ms for the %d replicas together (%d updates %v apart: %d ticks; as long idle: %d ticks, subtracted)",
		kind, perUpdate, replicas, quiet, quietGap, quietCPU, idleCPU)
}

// pollServed handshakes with addr for name every pollInterval until the
// serial served is want, and returns when that handshake completed,
// since t0.
func pollServed(ctx context.Context, addr, name, want string, t0 time.Time, count, nanos *atomic.Int64) (time.Duration, error) {
	cfg := pollConfig(name)
	var got string
	var last error
	for {
		hs := time.Now()
		leaf, err := handshake(addr, cfg)
		done := time.Now()
		count.Add(1)
		nanos.Add(int64(done.Sub(hs)))
		if err == nil {
			got = serialOf(leaf)
			if got == want {
				return done.Sub(t0), nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w; last serial served %q, last handshake error %v", ctx.Err(), got, last)
		case <-time.After(pollInterval):
		}
	}
}

// report logs the figure lines of the trials.
func report(t *testing.T, kind string, results []trial) {
	var all, first, ack, renew, fresh []time.Duration
	perReplica := make([][]time.Duration, replicas)
	for _, tr := range results {
		all = append(all, tr.all())
		first = append(first, tr.first())
		ack = append(ack, tr.ack)
		if tr.newName {
			fresh = append(fresh, tr.all())
		} else {
			renew = append(renew, tr.all())
		}
		for i, d := range tr.serve {
			perReplica[i] = append(perReplica[i], d)
		}
	}
	for _, s := range [][]time.Duration{all, first, ack, renew, fresh} {
		slices.Sort(s)
	}
	t.Logf("propagation %s: all %d replicas serving the new serial after p50 %s, p90 %s, p99 %s, max %s (%d trials: %d renewals of one name, %d new names)",
		kind, replicas, ms(percentile(all, 50)), ms(percentile(all, 90)), ms(percentile(all, 99)), ms(all[len(all)-1]),
		len(results), len(renew), len(fresh))
	repl := ""
	for i, s := range perReplica {
		slices.Sort(s)
		repl += fmt.Sprintf(", r%d %s", i+1, ms(percentile(s, 50)))
	}
	t.Logf("propagation %s: first replica p50 %s, p99 %s; write acknowledged p50 %s, p99 %s; all serving p50 renewals %s, new names %s; p50 per replica%s",
		kind, ms(percentile(first, 50)), ms(percentile(first, 99)), ms(percentile(ack, 50)), ms(percentile(ack, 99)),
		ms(percentile(renew, 50)), ms(percentile(fresh, 50)), repl)
}
