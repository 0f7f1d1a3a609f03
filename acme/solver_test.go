package acme

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
	"github.com/tollgate-proxy/tollgate/leader"
)

// TestPresentWaitsForReplicas: the leader's challenge answer is not
// handed to the CA until every replica in the registry has applied it;
// a replica that never does delays it by the propagation timeout only.
func TestPresentWaitsForReplicas(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) { testPresentWaits(t, b.Client(t)) })
	}
}

func testPresentWaits(t *testing.T, s kvstore.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := "present-" + t.Name()[len("TestPresentWaitsForReplicas/"):]
	el, err := leader.New(leader.Config{Store: s, Key: prefix + "/leader", Node: leader.Node{ID: "lead"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	wg.Go(func() { _ = el.Run(runCtx) })
	term, err := el.Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	regPrefix := prefix + "/nodes/"
	setApplied := func(rev int64) {
		b, _ := json.Marshal(leader.NodeRecord{Node: leader.Node{ID: "lagging"}, Applied: rev})
		if _, err := kvstore.Put(ctx, s, regPrefix+"lagging", b); err != nil {
			t.Fatal(err)
		}
	}
	setApplied(1)
	m := &Manager{cfg: ManagerConfig{Store: s, Keys: NewKeys(prefix), RegistryPrefix: regPrefix,
		PropagationTimeout: 20 * time.Second, Node: "lead"}, log: discard()}
	sv := &solver{m: m, ctx: ctx, term: term, kind: kindHTTP01}

	done := make(chan error, 1)
	go func() { done <- sv.Present("a.example.com", "tok-1", "tok-1.thumb") }()
	key, _ := m.cfg.Keys.HTTP01("tok-1")
	var rev int64
	for rev == 0 {
		if kv, err := s.Get(ctx, key); err == nil {
			rev = kv.Revision
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Present returned (%v) while a replica had not applied revision %d", err, rev)
	case <-time.After(300 * time.Millisecond):
	}
	setApplied(rev)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A replica that never catches up: Present proceeds after the timeout.
	m.cfg.PropagationTimeout = 200 * time.Millisecond
	if err := sv.Present("b.example.com", "tok-2", "tok-2.thumb"); err != nil {
		t.Fatal(err)
	}
	if err := sv.CleanUp("a.example.com", "tok-1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, key); err == nil {
		t.Fatal("CleanUp left the answer")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
