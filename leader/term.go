package leader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Term is one period of leadership. Leader-only work runs under Context
// and stops when Done closes; every write it makes goes through Apply,
// fenced by the term's lock.
type Term struct {
	e      *Elector
	lock   kvstore.Lock
	since  time.Time
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newTerm(e *Elector, lock kvstore.Lock) *Term {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Term{e: e, lock: lock, since: e.cfg.Clock.Now(), ctx: ctx, cancel: cancel}
}

// Token is the term's fencing token: greater than every earlier term's.
func (t *Term) Token() int64 { return t.lock.Token() }

// Since is when the term began.
func (t *Term) Since() time.Time { return t.since }

// Done is closed the moment leadership is lost or uncertain.
func (t *Term) Done() <-chan struct{} { return t.ctx.Done() }

// Context is cancelled when the term ends; leader-only work runs under it.
func (t *Term) Context() context.Context { return t.ctx }

// Err is nil while the term lasts, then says why it ended.
func (t *Term) Err() error {
	if t.ctx.Err() == nil {
		return nil
	}
	return context.Cause(t.ctx)
}

func (t *Term) end(reason error) { t.cancel(reason) }

// Apply writes ops atomically, fenced by the term's lock: the store applies
// them only while this term's lease still holds the leader key. A refused
// fence ends the term at once; the error then wraps both ErrNotLeader and
// kvstore.ErrFenced.
func (t *Term) Apply(ctx context.Context, ops ...kvstore.Op) (int64, error) {
	if err := t.Err(); err != nil {
		return 0, fmt.Errorf("%w (term %d ended: %w): %w", ErrNotLeader, t.Token(), err, kvstore.ErrFenced)
	}
	rev, err := t.e.cfg.Store.Apply(ctx, t.lock, ops...)
	if errors.Is(err, kvstore.ErrFenced) {
		t.end(ErrWriteFenced)
		return 0, fmt.Errorf("%w (term %d): %w", ErrNotLeader, t.Token(), err)
	}
	return rev, err
}
