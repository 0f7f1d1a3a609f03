package acme_test

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

// slowGets is a real store whose reads of challenge answers take delay
// longer, and are counted.
type slowGets struct {
	kvstore.Store
	delay time.Duration
	gets  atomic.Int64
}

func (s *slowGets) Get(ctx context.Context, key string, opts ...kvstore.ReadOption) (kvstore.KV, error) {
	if strings.Contains(key, "/tls-alpn-01/") {
		s.gets.Add(1)
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return kvstore.KV{}, ctx.Err()
		}
	}
	return s.Store.Get(ctx, key, opts...)
}

// TestChallengeMissSingleFlight (issue 14, B3): validation handshakes
// arriving together for a name whose answer is not in memory yet make one
// store read, and all get the answer.
func TestChallengeMissSingleFlight(t *testing.T) {
	s := &slowGets{Store: backendtest.Embedded(t).Client(t), delay: 200 * time.Millisecond}
	f := newFixture(t, s).start()
	f.putWait(f.key(f.keys.Order, "c.example.com"), acme.OrderRecord{Domains: []string{"c.example.com"}})
	f.stop() // so that only the store read finds the answer
	f.put(f.key(f.keys.TLSALPN01, "c.example.com"), acme.ChallengeRecord{Domain: "c.example.com", KeyAuth: "c.ka"})
	s.gets.Store(0)

	var wg sync.WaitGroup
	var answered atomic.Int64
	for range 12 {
		wg.Go(func() {
			if c, err := f.c.ChallengeCertificate(&tls.ClientHelloInfo{ServerName: "c.example.com"}); c != nil && err == nil {
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	if got := s.gets.Load(); got != 1 {
		t.Errorf("%d store reads for 12 handshakes at once, want 1", got)
	}
	if got := answered.Load(); got != 12 {
		t.Errorf("%d of 12 handshakes got the answer", got)
	}
}
