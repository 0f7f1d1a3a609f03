package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// minLeaseSeconds is the shortest lease Lock grants. A lease is renewed
// every third of its TTL, and each renewal may take up to three quarters
// of that; it is given up a margin (see leaseMargin) before the server
// may expire it. With 3 seconds, a renewal is sent every second, may
// take 750ms, and the lock is given up 2.5s after the last successful
// renewal was sent, after two more attempts. Shorter leases would leave
// a renewal less time than a slow round trip to a loaded cluster takes.
const minLeaseSeconds = 3

// minLeaseMargin is the least of leaseMargin.
const minLeaseMargin = 500 * time.Millisecond

// leaseMargin is how much earlier than the server may expire a lease its
// holder considers it lost: a tenth of the TTL, at least 500ms. It covers
// the time from the holder's timer firing to Done being closed, and the
// holder's clock running slower than the server's.
func leaseMargin(ttl time.Duration) time.Duration {
	return max(minLeaseMargin, ttl/10)
}

// leaseSeconds converts a lock TTL into whole lease seconds.
func leaseSeconds(ttl time.Duration) int64 {
	if ttl <= 0 {
		ttl = kvstore.DefaultLockTTL
	}
	return max(int64(math.Ceil(ttl.Seconds())), minLeaseSeconds)
}

// lease is a granted lease being kept alive by Store.keepAlive.
//
// etcd expires a lease TTL after it processed the last renewal (or the
// grant); the client sends each request before that. So the holder
// counts the TTL from the moment it sent the last request that succeeded,
// less the margin, and gives the lease up when that deadline passes
// without a newer renewal: the server cannot have expired it earlier.
// (clientv3's KeepAlive counts from a response's arrival, and checks only
// once a second, so its holder learns of the loss after the server may
// have handed the lock to someone else.)
type lease struct {
	id  clientv3.LeaseID
	ttl time.Duration
	// lost is closed when the lease is gone or may be: etcd said it does
	// not exist, or no renewal succeeded in time. why says which.
	lost chan struct{}
	why  string
	// stop ends the keep-alive.
	stop context.CancelFunc

	mu sync.Mutex // guards expires
	// expires is when the server may expire the lease at the earliest:
	// the send time of the grant or of the last renewal that succeeded,
	// plus the TTL the server granted or confirmed.
	expires time.Time
}

// expiry returns when the server may expire the lease at the earliest.
func (ls *lease) expiry() time.Time {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.expires
}

// confirmed records that the grant or a renewal sent at sent kept the
// lease for ttl, and returns the deadline by which its holder gives it
// up: that expiry less the margin. Only grant and keepAlive, one after
// the other, call it.
func (ls *lease) confirmed(sent time.Time, ttl time.Duration) time.Time {
	ls.mu.Lock()
	ls.expires = sent.Add(ttl)
	ls.mu.Unlock()
	return sent.Add(ttl - leaseMargin(ttl))
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// grant creates a lease of ttl seconds and starts keeping it alive.
func (s *Store) grant(ctx context.Context, key string, ttl int64) (*lease, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	sent := time.Now()
	g, err := s.cli.Grant(rctx, ttl)
	if err == nil && g.TTL <= 0 {
		err = fmt.Errorf("granted a ttl of %d seconds", g.TTL)
	}
	if err != nil {
		return nil, s.wrap(ctx, "lock", key, fmt.Errorf("grant lease: %w", err))
	}
	kctx, stop := context.WithCancel(s.bg)
	ls := &lease{id: g.ID, ttl: time.Duration(g.TTL) * time.Second, lost: make(chan struct{}), stop: stop}
	deadline := ls.confirmed(sent, ls.ttl)
	if err := s.goOwned(func() { s.keepAlive(kctx, ls, deadline) }); err != nil {
		stop()
		// The store is closed: the lease expires by its TTL.
		return nil, s.wrap(ctx, "lock", key, err)
	}
	return ls, nil
}

// keepAlive renews ls every third of its TTL until ctx ends, and closes
// ls.lost when etcd no longer has the lease or when no renewal succeeded
// before deadline, the time the server may expire it less the margin.
// Each renewal may take three quarters of the interval (at most
// RequestTimeout), and never beyond deadline, so that a renewal hanging
// on an unreachable server cannot delay the loss.
func (s *Store) keepAlive(ctx context.Context, ls *lease, deadline time.Time) {
	interval := ls.ttl / 3
	bo := retry.Backoff{What: "etcd lease keep-alive", Log: s.log}
	expiry := time.NewTimer(time.Until(deadline))
	defer expiry.Stop()
	next := time.NewTimer(interval)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expiry.C:
			ls.end("lease not renewed in time, the server may expire it")
			return
		case <-next.C:
		}
		sent := time.Now()
		by := sent.Add(min(interval*3/4, s.cfg.RequestTimeout))
		if by.After(deadline) {
			by = deadline
		}
		ttl, err := s.renew(ctx, ls.id, by)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			ls.end("lease expired or revoked")
			return
		case err != nil:
			bo.Failed(fmt.Errorf("renew lease: %w", err))
		default:
			bo.Succeeded()
			deadline = ls.confirmed(sent, ttl)
			expiry.Reset(time.Until(deadline))
		}
		if !time.Now().Before(deadline) {
			ls.end("lease not renewed in time, the server may expire it")
			return
		}
		next.Reset(time.Until(sent.Add(interval)))
	}
}

// renew sends one keep-alive for id, waiting until by at the latest, and
// returns the lease's TTL. A lease etcd does not have is
// rpctypes.ErrLeaseNotFound.
func (s *Store) renew(ctx context.Context, id clientv3.LeaseID, by time.Time) (time.Duration, error) {
	rctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	resp, err := s.cli.KeepAliveOnce(rctx, id)
	switch {
	case err != nil:
		return 0, err
	case resp.TTL <= 0:
		return 0, rpctypes.ErrLeaseNotFound
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// end records why the lease is lost and closes lost. Only keepAlive calls
// it, once.
func (ls *lease) end(why string) {
	ls.why = why
	close(ls.lost)
}

// revokeLater revokes a lease in the background, best effort: it expires
// by its TTL anyway. Close cancels it.
func (s *Store) revokeLater(id clientv3.LeaseID) {
	_ = s.goOwned(func() {
		ctx, cancel := context.WithTimeout(s.bg, s.cfg.RequestTimeout)
		defer cancel()
		_ = s.revoke(ctx, id)
	})
}

// revoke ends a lease, deleting the keys bound to it. A lease that is
// already gone is not an error.
func (s *Store) revoke(ctx context.Context, id clientv3.LeaseID) error {
	_, err := s.cli.Revoke(ctx, id)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return err
	}
	return nil
}
