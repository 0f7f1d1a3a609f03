package leader_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/embedded"
	"github.com/tollgate-proxy/tollgate/leader"
)

// TestRunEndsWhenStoreClosed: a closed store can never be won or
// registered in again, so the leader, a candidate and the registry end Run
// with an error wrapping kvstore.ErrClosed instead of retrying forever
// (their owner then stops the replica).
func TestRunEndsWhenStoreClosed(t *testing.T) {
	s, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	var electors []*leader.Elector
	for _, id := range []string{"a", "b"} {
		e, err := leader.New(leader.Config{Store: s, Node: leader.Node{ID: id}, TTL: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		electors = append(electors, e)
		go func() { results <- result{"elector " + id, e.Run(ctx)} }()
	}
	r, err := leader.NewRegistry(leader.RegistryConfig{Store: s, Prefix: "nodes", Record: leader.NodeRecord{Node: leader.Node{ID: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { results <- result{"registry", r.Run(ctx)} }()
	for deadline := time.Now().Add(30 * time.Second); !electors[0].Stats().IsLeader && !electors[1].Stats().IsLeader; {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for range 3 {
		select {
		case res := <-results:
			if !errors.Is(res.err, kvstore.ErrClosed) {
				t.Errorf("%s: Run returned %v, want an error wrapping ErrClosed", res.name, res.err)
			}
		case <-timeout:
			cancel()
			t.Fatal("Run still retrying 30s after the store was closed")
		}
	}
}
