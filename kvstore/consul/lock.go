package consul

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Session TTL bounds Consul enforces.
const (
	minSessionTTL = 10 * time.Second
	maxSessionTTL = 24 * time.Hour
)

// lock is a held kvstore.Lock: a Consul session holding the key.
//
// Two goroutines keep it: renew beats every TTL/3 (see heartbeat.go) and
// gives the lock up when the server says it is gone or no beat was
// confirmed for the TTL less stopMargin; monitor follows the key with
// blocking queries and gives the lock up when the key is deleted or held
// by another session.
type lock struct {
	s       *Store
	key     string
	session string
	token   int64
	ttl     time.Duration

	// sem (capacity 1) serializes the writes of the key, beats and
	// Updates, and guards value and beats.
	sem   chan struct{}
	value []byte // the value the key holds
	beats uint64 // writes so far; the low bits of the key's Flags

	mu      sync.Mutex
	renewed time.Time // send time of the last confirmed beat

	done     chan struct{}
	doneOnce sync.Once
	cancel   context.CancelFunc // stops the goroutines
	wg       sync.WaitGroup     // the goroutines

	releaseOnce sync.Once
}

// Key returns the locked key.
func (l *lock) Key() string { return l.key }

// Token returns the ModifyIndex at which the key was locked: Consul's Raft
// index, so greater than that of every earlier holder.
func (l *lock) Token() int64 { return l.token }

// Done is closed when the lock is lost or released.
func (l *lock) Done() <-chan struct{} { return l.done }

func (l *lock) lost() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// markDone closes done; it reports whether this call did.
func (l *lock) markDone() bool {
	first := false
	l.doneOnce.Do(func() { close(l.done); first = true })
	return first
}

// sessionTTL applies the default and Consul's bounds, rounding up to whole
// seconds.
func sessionTTL(d time.Duration) (time.Duration, error) {
	switch {
	case d < 0:
		return 0, fmt.Errorf("negative lock TTL %s", d)
	case d == 0:
		d = kvstore.DefaultLockTTL
	case d > maxSessionTTL:
		return 0, fmt.Errorf("lock TTL %s exceeds Consul's maximum session TTL of %s", d, maxSessionTTL)
	}
	d = max(d, minSessionTTL)
	return (d + time.Second - 1).Truncate(time.Second), nil
}

// Lock blocks until it holds key in a new session of opts.TTL (at least
// 10s, whole seconds), waiting for the holder with blocking queries, or
// until ctx is done.
//
// While it holds the key the lock beats every TTL/3: it renews the session
// and rewrites the key, with its value unchanged and a new Flags counter,
// in a transaction fenced by the session, so that the key's ModifyIndex
// moves. Watchers of the key therefore see a put event with an unchanged
// value every TTL/3. Change the key's value with Lock.Update only: a beat
// rewrites the key with the lock's own value.
//
// A waiting Lock takes the key's ModifyIndex standing still for a whole
// TTL as its holder being dead: it ends the holder's session, as BreakLock
// does, and acquires once Consul's lock-delay has passed. A crashed
// holder's lock is thus taken over after about TTL plus lock-delay, not
// after the 2 x TTL Consul lets an unrenewed session live (which remains
// the backstop when nobody waits). heartbeat.go argues why the holder has
// stopped by then.
func (s *Store) Lock(ctx context.Context, key string, opts kvstore.LockOptions) (kvstore.Lock, error) {
	if err := kvstore.ValidateKey(key); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("lock %q", key)
	ttl, err := sessionTTL(opts.TTL)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s.endpoint, op, err)
	}
	if err := s.begin(); err != nil {
		return nil, s.fail(op, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	a := &acquirer{s: s, key: key, value: opts.Value, ttl: ttl}
	token, err := a.acquire(ctx)
	if err != nil {
		if a.session != "" {
			s.destroySession(context.WithoutCancel(ctx), a.session)
		}
		return nil, s.fail(op, err)
	}
	l := &lock{
		s: s, key: key, session: a.session, token: token, ttl: ttl,
		sem: make(chan struct{}, 1), value: bytes.Clone(opts.Value),
		// The lock op was sent after the session's last renewal.
		renewed: a.renewed,
		done:    make(chan struct{}), cancel: func() {},
	}
	if err := s.hold(l); err != nil {
		_ = l.release(context.WithoutCancel(ctx))
		return nil, s.fail(op, err)
	}
	return l, nil
}

// hold registers l with the Store and starts its goroutines.
func (s *Store) hold(l *lock) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return kvstore.ErrClosed
	}
	var ctx context.Context
	ctx, l.cancel = context.WithCancel(s.ctx)
	s.locks[l] = struct{}{}
	s.wg.Add(2)
	l.wg.Add(2)
	go l.renew(ctx)
	go l.monitor(ctx)
	return nil
}

func (s *Store) forget(l *lock) {
	s.mu.Lock()
	delete(s.locks, l)
	s.mu.Unlock()
}

// acquirer is the state of one Lock call.
type acquirer struct {
	s       *Store
	key     string
	value   []byte
	ttl     time.Duration
	session string
	renewed time.Time  // when the last creation or renewal of session was sent
	index   uint64     // of the last look at the key
	seen    holderView // the holder as last seen
}

// Reasons Consul refuses a lock op.
var (
	errHeld          = errors.New("lock is held")
	errLockDelay     = errors.New("lock delay")
	errSessionExpire = errors.New("session expired")
)

func (a *acquirer) acquire(ctx context.Context) (int64, error) {
	for {
		if err := a.keepSession(ctx); err != nil {
			return 0, err
		}
		token, err := a.s.tryLock(ctx, a.key, a.value, a.session)
		switch {
		case err == nil:
			return token, nil
		case errors.Is(err, errHeld):
			err = a.waitFree(ctx)
		case errors.Is(err, errLockDelay):
			err = sleep(ctx, min(max(a.s.lockDelay, 100*time.Millisecond), time.Second))
		case errors.Is(err, errSessionExpire):
			a.session = ""
			err = nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// keepSession creates the session, or renews it when a third of its TTL
// has passed, or replaces it when it expired.
//
// The renewal time recorded is when the request was sent, not when its
// answer came: the server starts the TTL somewhere in between, so the
// client's idea of the session's end is never later than the server's.
// (The lock op itself does not renew the session, so it moves nothing.)
func (a *acquirer) keepSession(ctx context.Context) error {
	if a.session != "" && time.Since(a.renewed) < a.ttl/3 {
		return nil
	}
	if a.session != "" {
		start := time.Now()
		ok, err := a.s.renewSession(ctx, a.session, a.s.timeout)
		if err != nil {
			return err
		}
		if ok {
			a.renewed = start
			return nil
		}
	}
	start := time.Now()
	id, err := a.s.createSession(ctx, a.key, a.ttl)
	if err != nil {
		return err
	}
	a.session, a.renewed = id, start
	return nil
}

// waitFree blocks until the key is unlocked or deleted, until the session
// is due for renewal, or until the holder has been silent for a whole TTL
// and its session was ended.
func (a *acquirer) waitFree(ctx context.Context) error {
	for {
		wait := a.ttl/3 - time.Since(a.renewed)
		if wait <= 0 {
			return nil
		}
		if a.seen.beats {
			left := time.Until(a.seen.since.Add(a.ttl))
			if left <= 0 {
				return a.endSilent(ctx)
			}
			// Consul may answer up to wait/16 late (jitter).
			wait = max(min(wait, left*16/17), time.Millisecond)
		}
		pair, idx, err := a.s.blockingGet(ctx, a.key, a.index, wait)
		if err != nil {
			return fmt.Errorf("wait for the holder: %w", err)
		}
		a.index = idx
		if pair == nil || pair.Session == "" || pair.Session == a.session {
			a.seen = holderView{}
			return nil
		}
		a.seen = a.seen.next(pair, time.Now())
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tryLock runs a lock op on key and returns its ModifyIndex. The key's
// Flags get beatMark: waiters may take its holder's silence for death.
func (s *Store) tryLock(ctx context.Context, key string, value []byte, session string) (int64, error) {
	rctx, cancel := s.opContext(ctx, 0)
	defer cancel()
	ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Value: value, Flags: beatMark, Session: session}}}
	ok, resp, _, err := s.client.Txn().Txn(ops, s.query(rctx))
	if err != nil {
		return 0, err
	}
	if ok {
		if len(resp.Results) == 0 || resp.Results[0].KV == nil {
			return 0, errors.New("lock op returned no entry")
		}
		return int64(resp.Results[0].KV.ModifyIndex), nil
	}
	if len(resp.Errors) == 0 {
		return 0, errors.New("lock op rolled back without an error")
	}
	what := resp.Errors[0].What
	switch {
	case strings.Contains(what, "lock is already held"):
		return 0, errHeld
	case strings.Contains(what, "lock delay"):
		return 0, errLockDelay
	case strings.Contains(what, "invalid session"):
		return 0, errSessionExpire
	}
	return 0, fmt.Errorf("consul refused the lock: %s", what)
}

func (s *Store) createSession(ctx context.Context, key string, ttl time.Duration) (string, error) {
	rctx, cancel := s.opContext(ctx, 0)
	defer cancel()
	// CreateNoChecks sends an empty NodeChecks list; without it Consul
	// would tie the session to the agent's serfHealth check, and an agent
	// restart would end the lock.
	id, _, err := s.client.Session().CreateNoChecks(&api.SessionEntry{
		Name:      "tollgate lock " + key,
		TTL:       fmt.Sprintf("%ds", int(ttl/time.Second)),
		Behavior:  api.SessionBehaviorDelete,
		LockDelay: s.lockDelay,
	}, s.write(rctx))
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return id, nil
}

// renewSession renews a session; false means it no longer exists.
func (s *Store) renewSession(ctx context.Context, id string, timeout time.Duration) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	entry, _, err := s.client.Session().Renew(id, s.write(rctx))
	if err != nil {
		return false, fmt.Errorf("renew session: %w", err)
	}
	return entry != nil, nil
}

// destroySession ends a session, best effort, within the request timeout.
func (s *Store) destroySession(ctx context.Context, id string) {
	if err := s.destroy(ctx, id); err != nil {
		s.log.Warn("consul session not destroyed; it expires after its TTL", "error", err)
	}
}

func (s *Store) destroy(ctx context.Context, id string) error {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.client.Session().Destroy(id, s.write(rctx)); err != nil {
		return fmt.Errorf("destroy session: %w", err)
	}
	return nil
}

// monitor follows the lock key until the lock ends.
func (l *lock) monitor(ctx context.Context) {
	defer l.s.wg.Done()
	defer l.wg.Done()
	index := uint64(l.token)
	b := retry.Backoff{What: "consul lock key watch", Log: l.s.log}
	for {
		pair, idx, err := l.s.blockingGet(ctx, l.key, index, blockWait)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			b.Failed(err)
			if !b.Wait(ctx) {
				return
			}
			continue
		case pair == nil:
			l.lose("lock key deleted")
			return
		case pair.Session != l.session:
			l.lose("lock key held by another session")
			return
		}
		b.Succeeded()
		index = idx
	}
}

// lose gives the lock up after it was lost: Done closes, the goroutines
// stop, and the session is destroyed in case it still exists.
func (l *lock) lose(reason string) {
	if !l.markDone() {
		return
	}
	l.s.log.Warn("consul lock lost", "reason", reason)
	l.cancel()
	l.s.forget(l)
	l.s.destroySession(context.Background(), l.session)
}

// Release gives the lock up: it deletes the key if this session still
// holds it, then destroys the session. Done is closed first. Release is
// idempotent; calls after the first return nil. When ctx is already done
// it still tries, within the Store's request timeout.
func (l *lock) Release(ctx context.Context) error {
	return l.release(ctx)
}

func (l *lock) release(ctx context.Context) error {
	var err error
	l.releaseOnce.Do(func() {
		l.markDone()
		l.cancel()
		l.wg.Wait()
		if ctx.Err() != nil {
			ctx = context.WithoutCancel(ctx)
		}
		ctx, cancel := context.WithTimeout(ctx, l.s.timeout)
		defer cancel()
		// Deleting the key before the session ends spares the next holder
		// the lock-delay Consul applies to keys of an ended session.
		err = errors.Join(l.s.unlock(ctx, l), l.s.destroy(ctx, l.session))
		l.s.forget(l)
		if err != nil {
			err = fmt.Errorf("%s: release lock %q: %w", l.s.endpoint, l.key, err)
		}
	})
	return err
}

// unlock deletes the lock key if the lock's session still holds it.
func (s *Store) unlock(ctx context.Context, l *lock) error {
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: l.key, Session: l.session}},
		{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: l.key}},
	}
	_, _, _, err := s.client.Txn().Txn(ops, s.query(ctx))
	if err != nil {
		return fmt.Errorf("delete lock key: %w", err)
	}
	return nil // not ours any more: nothing to delete
}

// BreakLock destroys the session holding key, if any: the holder's Done
// closes and its fenced writes fail. Consul then deletes the key and keeps
// it from new holders for the broken session's lock-delay.
func (s *Store) BreakLock(ctx context.Context, key string) error {
	if err := kvstore.ValidateKey(key); err != nil {
		return err
	}
	op := fmt.Sprintf("break lock %q", key)
	if err := s.begin(); err != nil {
		return s.fail(op, err)
	}
	pair, err := s.readConsistent(ctx, key)
	if err != nil {
		return s.fail(op, err)
	}
	if pair == nil || pair.Session == "" {
		return nil
	}
	if err := s.destroy(ctx, pair.Session); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// readConsistent reads key's entry (nil when missing) with a consistent
// read, bounded by the request timeout.
func (s *Store) readConsistent(ctx context.Context, key string) (*api.KVPair, error) {
	rctx, cancel := s.opContext(ctx, 0)
	defer cancel()
	q := s.query(rctx)
	q.RequireConsistent = true
	pair, _, err := s.client.KV().Get(key, q)
	return pair, err
}
