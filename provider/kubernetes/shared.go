package kubernetes

import (
	"context"
	"log/slog"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/tollgate-proxy/tollgate/internal/retry"
)

// This file holds what every Kubernetes provider of tollgate does the same
// way: following informers, rebuilding on changes, and the leader's terms.

// Follow registers handler on inf, and logs through log why a list or
// watch fails (a missing RBAC right, a missing CRD, the API server away)
// while client-go retries; it returns the informer's cache.
func Follow(log *slog.Logger, what string, inf cache.SharedIndexInformer, handler cache.ResourceEventHandler) (cache.Indexer, error) {
	if _, err := inf.AddEventHandler(handler); err != nil {
		return nil, err
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		log.Warn("kubernetes list or watch failing; retrying", "resource", what, "err", err)
	}); err != nil {
		return nil, err
	}
	return inf.GetIndexer(), nil
}

// Factory is a shared informer factory: client-go's, or one generated for
// custom resources.
type Factory interface {
	Start(stopCh <-chan struct{})
	WaitForCacheSync(stopCh <-chan struct{}) map[reflect.Type]bool
	Shutdown()
}

// Sync starts factories and waits until their caches hold a complete
// listing or ctx is done, logging waiting (with args) every 10 seconds
// meanwhile. The caller must call the returned stop after ctx is done:
// it waits for the informers to end.
func Sync(ctx context.Context, log *slog.Logger, factories []Factory, waiting string, args ...any) (stop func()) {
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		for _, f := range factories {
			f.WaitForCacheSync(ctx.Done())
		}
	}()
	for done := false; !done; {
		select {
		case <-synced:
			done = true
		case <-time.After(10 * time.Second):
			log.Warn(waiting, args...)
		}
	}
	return func() {
		for _, f := range factories {
			f.Shutdown()
		}
	}
}

// Rebuilds calls rebuild after each signal on kick (the caller sends the
// first), gathering the signals of a burst that come within throttle of
// the first into one call, until ctx is done. rebuild returns false when
// the configuration was refused whole: it is called again after a
// backoff. ready is closed after the first rebuild that returns true.
func Rebuilds(ctx context.Context, kick chan struct{}, throttle time.Duration, rebuild func() bool, ready chan struct{}) {
	first, isReady := true, false
	var retryC <-chan time.Time
	bo := retry.Backoff{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-retryC:
		}
		retryC = nil
		if !first {
			// Gather the rest of a burst into one rebuild.
			select {
			case <-ctx.Done():
				return
			case <-time.After(throttle):
			}
			select {
			case <-kick:
			default:
			}
		}
		first = false
		if !rebuild() {
			retryC = time.After(bo.Next())
			continue
		}
		bo.Succeeded()
		if !isReady {
			close(ready)
			isReady = true
		}
	}
}

// Terms runs lead for each term of leadership l, once ready is closed,
// until ctx is done; then it returns nil. lead's context ends with the
// term.
func Terms(ctx context.Context, ready <-chan struct{}, l Leadership, lead func(context.Context, Fence)) error {
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}
	for {
		term, err := l.Await(ctx)
		if err != nil {
			return nil
		}
		func() {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-term.Done():
					cancel()
				case <-ctx.Done():
				}
			}()
			lead(ctx, term)
		}()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// EventRecorder records Events through client until ctx is done; stop
// flushes and ends it.
func EventRecorder(ctx context.Context, client kubernetes.Interface) (recorder record.EventRecorder, stop func()) {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "tollgate"}), broadcaster.Shutdown
}
