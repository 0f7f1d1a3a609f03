package consul

// Holder liveness.
//
// Consul ends an unrenewed session only after twice its TTL
// (structs.SessionTTLMultiplier), and a session's TTL is at least 10s, so a
// lock whose holder crashed would stay taken for 20s and more. Instead the
// holder beats every TTL/3: it writes the lock key, fenced by its session,
// with a new Flags counter (the same value again would change nothing in
// Consul, not even the ModifyIndex), then renews the session. A beat is
// confirmed when both succeed, as of the time the write was sent. A waiter
// blocked on the key notes when (on its own clock) it first saw the key's
// current ModifyIndex; once that index has stood still for a whole TTL it
// takes the holder for dead and ends its session, and Consul hands the key
// on after the session's lock-delay.
//
// Why the holder has stopped by then: say the holder's last confirmed beat
// was sent at S. The server applied it at A >= S and the waiter saw the
// resulting index (or a later one, applied later still) at W >= A. The
// waiter ends the session no earlier than W + TTL >= S + TTL. The holder
// closes Done at S + TTL - stopMargin, so it stops before anyone ends its
// session, let alone acquires. The two clocks only measure durations;
// stopMargin also absorbs their rates differing over one TTL. A beat that
// lands between the waiter's final read and its destroy (the holder was
// slow, not dead) is not covered by this argument: the holder then learns
// of the loss from its monitor, and the server refuses its fenced writes
// from the destroy on, as it always does; the lock-delay before the next
// holder acquires gives it time to notice.
//
// A holder without beatMark in its key's Flags (written by an older
// version, or by an Apply to the lock key, until the next beat) is never
// taken for dead: waiters then rely on the session's own expiry.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// beatMark is set in the Flags of a lock key whose holder beats; the low
// bits count the beats.
const beatMark uint64 = 1 << 63

// stopMargin is how long before a waiter may end its session a holder
// without a confirmed beat gives up: a tenth of the TTL, at least 500ms. It
// covers the holder noticing and stopping its work, and clock rates.
func stopMargin(ttl time.Duration) time.Duration {
	return max(500*time.Millisecond, ttl/10)
}

// lossError says the server reports the lock gone. reason names no key and
// may be logged; detail is Consul's own message, which may.
type lossError struct {
	reason, detail string
}

func (e *lossError) Error() string {
	if e.detail == "" {
		return e.reason
	}
	return e.reason + " (consul: " + e.detail + ")"
}

// Expires returns the send time of the last confirmed beat (or of the
// session's last renewal before the lock was acquired) plus the TTL.
func (l *lock) Expires() time.Time { return l.confirmed().Add(l.ttl) }

func (l *lock) confirmed() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewed
}

func (l *lock) confirm(start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if start.After(l.renewed) {
		l.renewed = start
	}
}

// stopAt is when the lock gives up unless a beat is confirmed first.
func (l *lock) stopAt() time.Time {
	return l.confirmed().Add(l.ttl - stopMargin(l.ttl))
}

// Update writes value at the lock key in a transaction fenced by the lock's
// session, then renews the session: a beat carrying a new value. It returns
// the key's new ModifyIndex, which is new even for an unchanged value (the
// key's Flags change with every write). When the server says the lock is
// gone, Done closes and the error wraps kvstore.ErrFenced.
func (l *lock) Update(ctx context.Context, value []byte) (int64, error) {
	op := fmt.Sprintf("update lock %q", l.key)
	if n, most := len(value), l.s.limits.MaxValueBytes; n > most {
		return 0, fmt.Errorf("%s: %s: %w: %d bytes, at most %d", l.s.endpoint, op, kvstore.ErrValueTooLarge, n, most)
	}
	fenced := fmt.Errorf("%s: %s: %w", l.s.endpoint, op, kvstore.ErrFenced)
	if l.lost() {
		return 0, fenced
	}
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return 0, fenced
	case <-ctx.Done():
		return 0, l.s.fail(op, ctx.Err())
	}
	defer func() { <-l.sem }()
	stop := l.stopAt()
	if l.lost() || !time.Now().Before(stop) {
		return 0, fenced
	}
	rctx, cancel := l.s.opContext(ctx, 0)
	defer cancel()
	rctx, cancelStop := context.WithDeadline(rctx, stop)
	defer cancelStop()
	idx, err := l.beat(rctx, value, true)
	var loss *lossError
	switch {
	case errors.As(err, &loss):
		l.lose(loss.reason)
		return 0, fmt.Errorf("%s: %s: %w: %w", l.s.endpoint, op, kvstore.ErrFenced, err)
	case idx > 0:
		return idx, nil // written; renewing is the renew loop's concern
	case l.lost():
		return 0, fmt.Errorf("%s: %s: %w: %w", l.s.endpoint, op, kvstore.ErrFenced, err)
	}
	return 0, l.s.fail(op, err)
}

// beat writes the lock key (value when update is set, else the lock's
// current value) with the next Flags, fenced by the session, and then
// renews the session. When both succeed the lock counts as renewed as of
// the write's send time. It returns the write's index (0 if it failed) and
// a *lossError when the server says the lock is gone. The caller holds sem.
func (l *lock) beat(ctx context.Context, value []byte, update bool) (int64, error) {
	start := time.Now()
	if !update {
		value = l.value
	}
	// Counted before sending: a write whose answer got lost must not be
	// repeated with the same Flags, which Consul would take as no change.
	l.beats++
	// A lock op by the holding session keeps the key's LockIndex; a set
	// keeps the session but resets LockIndex to 0 (Consul 1.21). The
	// check-session first keeps the lock op from re-creating a deleted key.
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: l.key, Session: l.session}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: l.key, Value: value, Flags: beatMark | l.beats, Session: l.session}},
	}
	ok, resp, _, err := l.s.client.Txn().Txn(ops, l.s.query(ctx))
	if err != nil {
		return 0, fmt.Errorf("write lock key: %w", err)
	}
	if !ok {
		return 0, keyWriteRefused(resp)
	}
	if update {
		l.value = bytes.Clone(value)
	}
	idx := commitIndex(txn{puts: true}, resp)
	alive, err := l.s.renewSession(ctx, l.session, l.s.timeout)
	if err != nil {
		return idx, err
	}
	if !alive {
		return idx, &lossError{reason: "session no longer exists"}
	}
	l.confirm(start)
	return idx, nil
}

// keyWriteRefused explains a rolled-back beat.
func keyWriteRefused(resp *api.TxnResponse) error {
	if resp == nil || len(resp.Errors) == 0 {
		return errors.New("lock key write rolled back without an error")
	}
	for _, e := range resp.Errors {
		if e.OpIndex == 0 && (strings.Contains(e.What, "session check") || strings.Contains(e.What, "check session")) {
			return &lossError{reason: "lock key deleted or held by another session", detail: e.What}
		}
		// Consul sets a key's lock delay when the session holding it is
		// invalidated, and can refuse the lock op for it while the
		// session check still passed (the release not yet applied to the
		// key): the session is gone all the same.
		if strings.Contains(e.What, "lock delay") || strings.Contains(e.What, "invalid session") {
			return &lossError{reason: "session no longer exists", detail: e.What}
		}
	}
	return fmt.Errorf("consul refused the lock key write: %s", resp.Errors[0].What)
}

// renew beats every TTL/3 until the lock ends, and gives the lock up when
// the server says it is gone or at stopAt. A failed beat is retried after
// TTL/9; every request is cut off at stopAt, so that Done closes then
// even while the server does not answer.
func (l *lock) renew(ctx context.Context) {
	defer l.s.wg.Done()
	defer l.wg.Done()
	interval := l.ttl / 3
	next := time.NewTimer(time.Until(l.confirmed().Add(interval)))
	defer next.Stop()
	deadline := time.NewTimer(time.Until(l.stopAt()))
	defer deadline.Stop()
	failing := false // a streak of failed beats, warned about once
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			if d := time.Until(l.stopAt()); d > 0 { // an Update beat
				deadline.Reset(d)
				continue
			}
			l.lose("no beat confirmed for the TTL less the safety margin")
			return
		case <-next.C:
		}
		if d := time.Until(l.confirmed().Add(interval)); d > 0 { // an Update beat
			failing = false
			next.Reset(d)
			continue
		}
		err := l.loopBeat(ctx, interval)
		var loss *lossError
		switch {
		case ctx.Err() != nil:
			return
		case errors.As(err, &loss):
			l.lose(loss.reason)
			return
		case err != nil:
			if !failing {
				l.s.log.Warn("consul lock heartbeat failing", "error", err)
				failing = true
			}
			next.Reset(interval / 3)
		default:
			failing = false
			deadline.Reset(time.Until(l.stopAt()))
			next.Reset(time.Until(l.confirmed().Add(interval)))
		}
	}
}

// loopBeat is one beat of the renew loop: it waits for sem (an Update
// holds it at most until stopAt) and bounds the beat by the request
// timeout, interval and stopAt.
func (l *lock) loopBeat(ctx context.Context, interval time.Duration) error {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.sem }()
	end := time.Now().Add(min(l.s.timeout, interval))
	if stop := l.stopAt(); stop.Before(end) {
		end = stop
	}
	rctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	_, err := l.beat(rctx, nil, false)
	return err
}

// holderView is what a waiting Lock last saw of the holder.
type holderView struct {
	session string
	index   uint64    // the key's ModifyIndex
	since   time.Time // when this waiter first saw index
	beats   bool      // the holder beats (beatMark)
}

// next is the view after seeing pair at now: unchanged if the holder and
// index are, else starting afresh.
func (v holderView) next(pair *api.KVPair, now time.Time) holderView {
	if pair.Session == v.session && pair.ModifyIndex == v.index {
		return v
	}
	return holderView{
		session: pair.Session,
		index:   pair.ModifyIndex,
		since:   now,
		beats:   pair.Flags&beatMark != 0,
	}
}

// endSilent ends the session of a holder whose key has not changed for a
// whole TTL, if a consistent read still shows the key as last seen. The
// caller then tries to acquire, waiting out the lock-delay.
func (a *acquirer) endSilent(ctx context.Context) error {
	seen := a.seen
	a.seen = holderView{}
	ended, err := a.s.endSessionIfUnchanged(ctx, a.key, seen.session, seen.index)
	if err != nil {
		return fmt.Errorf("end the session of a silent holder: %w", err)
	}
	if ended {
		a.s.log.Info("consul lock holder silent for a whole TTL; ended its session",
			"ttl", a.ttl, "silent_for", time.Since(seen.since).Round(time.Millisecond))
	}
	return nil
}

// endSessionIfUnchanged destroys session if it still holds key at
// ModifyIndex index; it reports whether it did.
func (s *Store) endSessionIfUnchanged(ctx context.Context, key, session string, index uint64) (bool, error) {
	pair, err := s.readConsistent(ctx, key)
	if err != nil {
		return false, fmt.Errorf("read the lock key: %w", err)
	}
	if pair == nil || pair.Session != session || pair.ModifyIndex != index {
		return false, nil
	}
	if err := s.destroy(ctx, session); err != nil {
		return false, err
	}
	return true, nil
}
