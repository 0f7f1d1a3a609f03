package leader_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
	"github.com/tollgate-proxy/tollgate/leader"
)

// running is an elector whose Run goroutine the test owns.
type running struct {
	e    *leader.Elector
	stop func()
}

func start(t *testing.T, s kvstore.Store, id string) *running {
	t.Helper()
	e, err := leader.New(leader.Config{Store: s, Node: leader.Node{ID: id, Address: id + ":8443"}, TTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &running{e: e, stop: background(t, e.Run)}
}

// background runs run until the returned stop is called or the test ends.
func background(t *testing.T, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx); err != nil {
			t.Errorf("background run: %v", err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// awaitLeader waits until exactly one of rs leads and returns it.
func awaitLeader(t *testing.T, rs []*running) (*running, *leader.Term) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var leaders []*running
		for _, r := range rs {
			if r.e.Stats().IsLeader {
				leaders = append(leaders, r)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%d electors lead at once", len(leaders))
		}
		if len(leaders) == 1 {
			return leaders[0], leaders[0].e.Term()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader within a minute")
	return nil, nil
}

func TestElection(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) { testElection(t, b) })
	}
}

func testElection(t *testing.T, b backendtest.Backend) {
	var rs []*running
	for i := range 3 {
		rs = append(rs, start(t, b.Client(t), fmt.Sprintf("node-%d", i)))
	}
	first, term := awaitLeader(t, rs)
	if _, err := term.Apply(t.Context(), kvstore.PutOp("election/data", []byte("1"))); err != nil {
		t.Fatalf("leader's fenced write: %v", err)
	}
	info := waitInfo(t, b.Client(t), term.Token())
	if want := first.e.Term(); info.Token != want.Token() {
		t.Fatalf("Leader: got token %d, want %d", info.Token, want.Token())
	}

	// Resigning hands leadership over, with a greater token; the old
	// term's writes are refused.
	first.stop()
	if term.Err() == nil {
		t.Fatal("term still open after its elector stopped")
	}
	if _, err := term.Apply(t.Context(), kvstore.PutOp("election/data", []byte("stale"))); !errors.Is(err, leader.ErrNotLeader) || !errors.Is(err, kvstore.ErrFenced) {
		t.Fatalf("write of an ended term: got %v, want ErrNotLeader and ErrFenced", err)
	}
	var rest []*running
	for _, r := range rs {
		if r != first {
			rest = append(rest, r)
		}
	}
	_, next := awaitLeader(t, rest)
	if next.Token() <= term.Token() {
		t.Fatalf("tokens: new term %d after %d; want strictly greater", next.Token(), term.Token())
	}
	if st := first.e.Stats(); st.IsLeader || st.Transitions != 2 {
		t.Fatalf("stats of the resigned elector: got %+v, want not leading after 2 transitions", st)
	}
}

// waitInfo waits until the leader key publishes token.
func waitInfo(t *testing.T, s kvstore.Store, token int64) leader.Info {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		info, err := leader.Leader(t.Context(), s, "")
		if err == nil && info.Token == token {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader record: got %+v, %v; want token %d", info, err, token)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFencedWriteEndsTerm breaks the leader's lock behind its back: the
// next fenced write fails and ends the term at once.
func TestFencedWriteEndsTerm(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Client(t)
			r := start(t, s, "solo")
			_, term := awaitLeader(t, []*running{r})
			if err := s.(kvstore.LockBreaker).BreakLock(t.Context(), leader.DefaultKey); err != nil {
				t.Fatal(err)
			}
			_, err := term.Apply(t.Context(), kvstore.PutOp("fenced/data", []byte("late")))
			if !errors.Is(err, leader.ErrNotLeader) || !errors.Is(err, kvstore.ErrFenced) {
				t.Fatalf("fenced write after the lock was broken: got %v, want ErrNotLeader and ErrFenced", err)
			}
			select {
			case <-term.Done():
			case <-time.After(time.Minute):
				t.Fatal("term still open a minute after its lock was broken")
			}
			// The elector campaigns again and leads a new term.
			var next *leader.Term
			deadline := time.Now().Add(time.Minute)
			for next == nil || next == term {
				if time.Now().After(deadline) {
					t.Fatal("no new term after the lock was broken")
				}
				time.Sleep(10 * time.Millisecond)
				next = r.e.Term()
			}
			if next.Token() <= term.Token() {
				t.Fatalf("tokens: got %d after %d", next.Token(), term.Token())
			}
		})
	}
}

func TestAwait(t *testing.T) {
	b := backendtest.Embedded(t)
	r := start(t, b.Client(t), "solo")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	term, err := r.e.Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		<-term.Context().Done()
	})
	r.stop()
	wg.Wait()
	if term.Err() == nil {
		t.Fatal("term has no error after its elector stopped")
	}
}

func TestConfigErrors(t *testing.T) {
	s := backendtest.Embedded(t).Client(t)
	for _, tc := range []struct {
		name string
		cfg  leader.Config
	}{
		{"no store", leader.Config{Node: leader.Node{ID: "a"}}},
		{"no node ID", leader.Config{Store: s}},
		{"bad key", leader.Config{Store: s, Node: leader.Node{ID: "a"}, Key: "../x"}},
		{"short TTL", leader.Config{Store: s, Node: leader.Node{ID: "a"}, TTL: time.Millisecond}},
		{"margin over half the TTL", leader.Config{Store: s, Node: leader.Node{ID: "a"}, TTL: 5 * time.Second, Margin: 3 * time.Second}},
		{"negative margin", leader.Config{Store: s, Node: leader.Node{ID: "a"}, Margin: -time.Second}},
	} {
		if _, err := leader.New(tc.cfg); err == nil {
			t.Errorf("%s: got nil error", tc.name)
		}
	}
}

func TestRegistry(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Client(t)
			started := time.Now().UTC().Truncate(time.Second)
			r, err := leader.NewRegistry(leader.RegistryConfig{
				Store:       s,
				Record:      leader.NodeRecord{Node: leader.Node{ID: "node-a", Address: "10.0.0.1:8443"}, Version: "test", Started: started},
				TTL:         3 * time.Second,
				MinInterval: 50 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			stop := background(t, r.Run)

			nodes := waitNodes(t, s, func(ns []leader.NodeRecord) bool { return len(ns) == 1 })
			if n := nodes[0]; n.ID != "node-a" || n.Address != "10.0.0.1:8443" || n.Version != "test" || !n.Started.Equal(started) {
				t.Fatalf("entry: got %+v", n)
			}
			for rev := int64(1); rev <= 20; rev++ {
				r.SetApplied(rev)
			}
			waitNodes(t, s, func(ns []leader.NodeRecord) bool { return len(ns) == 1 && ns[0].Applied == 20 })

			stop()
			waitNodes(t, s, func(ns []leader.NodeRecord) bool { return len(ns) == 0 })
		})
	}
}

func waitNodes(t *testing.T, s kvstore.Store, ok func([]leader.NodeRecord) bool) []leader.NodeRecord {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ns, err := leader.Nodes(t.Context(), s, "")
		if err == nil && ok(ns) {
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes: got %+v, %v", ns, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegistryBadID(t *testing.T) {
	s := backendtest.Embedded(t).Client(t)
	for _, id := range []string{"", "a/b", "..", "sp ace"} {
		if _, err := leader.NewRegistry(leader.RegistryConfig{Store: s, Record: leader.NodeRecord{Node: leader.Node{ID: id}}}); err == nil {
			t.Errorf("node ID %q: got nil error", id)
		}
	}
}

// skewClock is the system clock moved forward by a settable offset.
type skewClock struct{ offset atomic.Int64 }

func (c *skewClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *skewClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// TestLeaseClock makes the leader's clock jump past its lease: the term
// must end as unconfirmed even though the store still holds the lock.
func TestLeaseClock(t *testing.T) {
	for _, b := range backendtest.All(t) {
		if b.Name == "embedded" {
			continue // its leases do not expire by time
		}
		t.Run(b.Name, func(t *testing.T) {
			clock := &skewClock{}
			e, err := leader.New(leader.Config{Store: b.Client(t), Node: leader.Node{ID: "solo"}, TTL: 3 * time.Second, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			background(t, e.Run)
			term, err := e.Await(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			// Once the token is published the elector waits on its
			// lease clock; move the clock past the lease then.
			waitInfo(t, b.Client(t), term.Token())
			clock.offset.Store(int64(time.Hour))
			select {
			case <-term.Done():
			case <-time.After(time.Minute):
				t.Fatal("term still open a minute after the clock passed its lease")
			}
			if !errors.Is(term.Err(), leader.ErrLeaseUnconfirmed) {
				t.Fatalf("term ended with %v, want ErrLeaseUnconfirmed", term.Err())
			}
		})
	}
}

func TestObserve(t *testing.T) {
	b := backendtest.Embedded(t)
	s := b.Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	infos, err := leader.Observe(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	next := func() leader.Info {
		t.Helper()
		select {
		case info := <-infos:
			return info
		case <-time.After(time.Minute):
			t.Fatal("no leader change observed within a minute")
		}
		return leader.Info{}
	}
	if info := next(); info.ID != "" {
		t.Fatalf("first observation: got %+v, want no leader", info)
	}
	r := start(t, s, "node-a")
	info := next()
	for info.Token == 0 { // the record before its token is published
		info = next()
	}
	if info.ID != "node-a" || info.Address != "node-a:8443" || info.Token != r.e.Term().Token() {
		t.Fatalf("observed %+v, want node-a with the term's token", info)
	}
	r.stop()
	if info := next(); info.ID != "" {
		t.Fatalf("after resignation: got %+v, want no leader", info)
	}
}

// TestRegistryUpdates covers a change made while registering and the rate
// limit on updates.
func TestRegistryUpdates(t *testing.T) {
	s := backendtest.Embedded(t).Client(t)
	// Someone holds the entry's key, so Run waits in Lock.
	blocker, err := s.Lock(t.Context(), "nodes/node-a", kvstore.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := leader.NewRegistry(leader.RegistryConfig{
		Store:       s,
		Record:      leader.NodeRecord{Node: leader.Node{ID: "node-a"}},
		MinInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	background(t, r.Run)
	r.SetApplied(7)
	if err := blocker.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, s, func(ns []leader.NodeRecord) bool { return len(ns) == 1 && ns[0].Applied == 7 })

	// A burst of changes within MinInterval of the last write collapses
	// into one write of the latest.
	events, err := s.Watch(t.Context(), "nodes/node-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	<-events // the current entry
	for rev := int64(8); rev <= 20; rev++ {
		r.SetApplied(rev)
	}
	ev := <-events
	if !strings.Contains(string(ev.KV.Value), `"applied":20`) {
		t.Fatalf("first write after a burst: got %s, want applied 20", ev.KV.Value)
	}
}

// TestRegistryChallengeAnswers covers the challenge answers in the entry:
// absent from a new replica's entry, then a burst of answers (and a new
// Applied) within MinInterval of the last write collapses into one write
// of the count, the time and the domain of the latest.
func TestRegistryChallengeAnswers(t *testing.T) {
	s := backendtest.Embedded(t).Client(t)
	r, err := leader.NewRegistry(leader.RegistryConfig{
		Store:       s,
		Record:      leader.NodeRecord{Node: leader.Node{ID: "node-a"}},
		MinInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	background(t, r.Run)
	waitNodes(t, s, func(ns []leader.NodeRecord) bool { return len(ns) == 1 })
	events, err := s.Watch(t.Context(), "nodes/node-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := <-events // the registration
	if v := string(ev.KV.Value); strings.Contains(v, "answered") || strings.Contains(v, "lastAnswered") {
		t.Fatalf("entry of a replica that answered nothing: got %s, want no answer fields", v)
	}

	before := time.Now()
	for i := range 10 {
		r.ChallengeAnswered(fmt.Sprintf("d%d.example.com", i))
	}
	r.SetApplied(3)
	ev = <-events
	var rec leader.NodeRecord
	if err := json.Unmarshal(ev.KV.Value, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Answered != 10 || rec.LastAnsweredName != "d9.example.com" || rec.Applied != 3 || rec.LastAnswered.Before(before.Truncate(time.Second)) {
		t.Fatalf("first write after a burst: got %s, want 10 answers, the latest for d9.example.com, applied 3", ev.KV.Value)
	}
	ns := waitNodes(t, s, func(ns []leader.NodeRecord) bool { return len(ns) == 1 && ns[0].Answered == 10 })
	if !ns[0].LastAnswered.Equal(rec.LastAnswered) {
		t.Fatalf("Nodes: lastAnswered %s, want %s", ns[0].LastAnswered, rec.LastAnswered)
	}
}

// TestNodesOldRecord: an entry written before the challenge answers were
// recorded still decodes.
func TestNodesOldRecord(t *testing.T) {
	s := backendtest.Embedded(t).Client(t)
	old := `{"id":"node-old","version":"v1","started":"2026-01-02T03:04:05Z","applied":4}`
	if _, err := kvstore.Put(t.Context(), s, "nodes/node-old", []byte(old)); err != nil {
		t.Fatal(err)
	}
	ns, err := leader.Nodes(t.Context(), s, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].ID != "node-old" || ns[0].Applied != 4 || ns[0].Answered != 0 || !ns[0].LastAnswered.IsZero() {
		t.Fatalf("got %+v, want node-old with applied 4 and no answers", ns)
	}
}
