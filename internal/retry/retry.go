// Package retry spaces the retries of long-running work (store watches,
// lock keep-alives, leader campaigns) and logs each failure streak once.
package retry

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Delays of a Backoff.
const (
	MinDelay = 100 * time.Millisecond
	MaxDelay = 5 * time.Second
)

// Backoff is a retry delay doubling from MinDelay to MaxDelay, each
// randomised to between half and all of it so that the watches of many
// replicas do not retry in step. The zero value is ready to use; it is not
// safe for concurrent use.
type Backoff struct {
	// What names the retried work in log messages ("consul watch").
	What string
	// Log receives one warning when a streak of failures starts and one
	// message when it ends. Nil logs nothing.
	Log *slog.Logger

	cur     time.Duration
	failing bool
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	b.cur = min(max(2*b.cur, MinDelay), MaxDelay)
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Wait sleeps for the next delay; false means ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Failed records a failed attempt, logging the first of a streak. The error
// must not carry stored values or secrets.
func (b *Backoff) Failed(err error) {
	if !b.failing && b.Log != nil {
		b.Log.Warn(b.What+" failing, retrying with backoff", "err", err)
	}
	b.failing = true
}

// Succeeded ends a failure streak and resets the delay.
func (b *Backoff) Succeeded() {
	if b.failing && b.Log != nil {
		b.Log.Info(b.What + " recovered")
	}
	b.cur, b.failing = 0, false
}
