package acme_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
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
	if strings.Contains(key, "/challenges/") {
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

// TestChallengeMissFirstClientGone: the store read that misses of one key
// share does not end when the client that started it hangs up; the
// validation requests waiting on it get the answer.
func TestChallengeMissFirstClientGone(t *testing.T) {
	s := &slowGets{Store: backendtest.Embedded(t).Client(t), delay: 300 * time.Millisecond}
	f := newFixture(t, s).start()
	f.putWait(f.key(f.keys.Order, "h.example.com"), acme.OrderRecord{Domains: []string{"h.example.com"}})
	f.stop() // so that only the store read finds the answer
	const token = "tok_0123456789"
	f.put(f.key(f.keys.HTTP01, token), acme.ChallengeRecord{Domain: "h.example.com", Token: token, KeyAuth: token + ".ka"})
	get := func(ctx context.Context) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://h.example.com/.well-known/acme-challenge/"+token, nil)
		w := httptest.NewRecorder()
		f.c.ServeHTTP(w, r)
		return w
	}
	gone, hangUp := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { get(gone) })
	time.Sleep(50 * time.Millisecond) // the first request's read is under way
	var answered atomic.Int64
	for range 5 {
		wg.Go(func() {
			if w := get(context.Background()); w.Code == http.StatusOK && w.Body.String() == token+".ka" {
				answered.Add(1)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	hangUp()
	wg.Wait()
	if got := answered.Load(); got != 5 {
		t.Errorf("%d of 5 validation requests got the answer after the first client hung up", got)
	}
	if got := s.gets.Load(); got != 1 {
		t.Errorf("%d store reads, want 1", got)
	}
}
