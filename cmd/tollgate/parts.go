package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"
)

// parts owns a replica's long-lived parts (entry points, configuration
// watcher, certificate cache, elector, registry, ACME manager). Each part
// either retries forever by design or fails for good: the first part to
// return an error — or to return at all before it was asked to stop —
// ends every part, and its error becomes the replica's. Nothing is logged
// and carried on.
type parts struct {
	g      *errgroup.Group
	ctx    context.Context // done when a part failed or stop was called
	cancel context.CancelFunc
	log    *slog.Logger
}

// newParts returns an owner whose parts run until stop, independently of
// ctx's cancellation: shutdown decides when each one stops.
func newParts(ctx context.Context, log *slog.Logger) *parts {
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(base)
	return &parts{g: g, ctx: gctx, cancel: cancel, log: log}
}

// errStoppedEarly is the error of a part that returned before its
// context ended.
var errStoppedEarly = errors.New("stopped on its own")

// run starts the part name under ctx: run(ctx) must return nil once ctx
// is done. A nil ctx means Context(); a part that stops before the others
// gets a context derived from Context() and cancels it itself.
func (p *parts) run(name string, ctx context.Context, run func(context.Context) error) {
	if ctx == nil {
		ctx = p.ctx
	}
	p.g.Go(func() error {
		err := run(ctx)
		if err == nil && ctx.Err() == nil {
			err = errStoppedEarly
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
			if p.ctx.Err() == nil {
				p.log.Error("a part of the replica failed; stopping", "part", name, "err", err)
			}
		}
		return err
	})
}

// Context is done when a part failed or stop was called.
func (p *parts) Context() context.Context { return p.ctx }

// stop ends every part and returns the first failure.
func (p *parts) stop() error {
	p.cancel()
	return p.g.Wait()
}
