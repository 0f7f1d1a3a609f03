package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// healthCheck actively checks the servers of one service.
type healthCheck struct {
	svc      *service
	cfg      *config.HealthCheck
	client   *http.Client
	interval time.Duration
	timeout  time.Duration
}

func newHealthCheck(svc *service, cfg *config.HealthCheck, rt http.RoundTripper) *healthCheck {
	return &healthCheck{
		svc:      svc,
		cfg:      cfg,
		client:   &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		interval: cmp.Or(cfg.Interval.Std(), 30*time.Second),
		timeout:  cmp.Or(cfg.Timeout.Std(), 5*time.Second),
	}
}

// run checks every server at once, then every interval, until ctx is
// done.
func (h *healthCheck) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		h.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *healthCheck) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range h.svc.lb.backends {
		wg.Go(func() {
			err := h.check(ctx, b)
			if ctx.Err() != nil {
				return
			}
			h.svc.setHealthy(b, err)
		})
	}
	wg.Wait()
}

// check requests the health path on b and returns why the answer is not
// the expected status (any 2xx or 3xx by default), or nil when it is.
// The error names no URL: the caller logs the server's, without userinfo.
func (h *healthCheck) check(ctx context.Context, b *backend) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	u := *b.target.url
	if h.cfg.Scheme != "" {
		u.Scheme = h.cfg.Scheme
	}
	if h.cfg.Port != 0 {
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(h.cfg.Port))
	}
	ref, err := url.Parse(h.cfg.Path)
	if err != nil {
		return fmt.Errorf("health check path %q: %w", h.cfg.Path, err)
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, backendKey, b), http.MethodGet, u.ResolveReference(ref).String(), nil)
	if err != nil {
		return fmt.Errorf("health check request: %w", err)
	}
	if h.cfg.Hostname != "" {
		req.Host = h.cfg.Hostname
	}
	for k, v := range h.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, userinfo included: keep what it
		// wraps.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within the timeout of %s", h.timeout)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if h.cfg.Status != 0 {
		if resp.StatusCode != h.cfg.Status {
			return fmt.Errorf("status %d, want %d", resp.StatusCode, h.cfg.Status)
		}
		return nil
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("status %d, want 2xx or 3xx", resp.StatusCode)
	}
	return nil
}

// A server is up while its active health check passes (or it has none)
// and passive health checking has not ejected it: the balancer may send
// it new requests. tollgate_service_server_up reports that state, and
// each change of it is logged once: "server down" at warn, "server up" at
// info, with the service, the server's URL (without userinfo), the check
// that changed it (active or passive) and the reason. A change of one
// check that leaves the server's state as it was (an active check failing
// while the server is ejected) is logged at debug.

// inherit takes over the state of the servers prev, the same service in
// the generation a reload replaces, had under the same URL: a reload
// neither sends requests to a server known to be down nor logs its change
// again. The verdict of active checks is taken only when s has them (it
// would never be corrected otherwise), and is checked again at once when
// the new generation starts; an ejection only when s checks passively.
func (s *service) inherit(prev *service, active bool) {
	if prev == nil {
		return
	}
	for _, b := range s.lb.backends {
		o := prev.byID[b.target.id]
		if o == nil {
			continue
		}
		if active {
			b.healthy.Store(o.healthy.Load())
		}
		if s.passive != nil {
			b.ejectedUntil.Store(o.ejectedUntil.Load())
		}
	}
}

// setHealthy records the verdict of an active health check on b: err nil
// means it passed.
func (s *service) setHealthy(b *backend, err error) {
	ok := err == nil
	ejected := b.ejected(s.now())
	if was := b.healthy.Swap(ok); was == ok {
		return
	}
	switch {
	case ejected:
		s.log.Debug("server health check changed while the server is ejected", "service", s.name, "url", b.target.shown,
			"check", "active", "healthy", ok, "reason", reasonOf(err))
	case ok:
		s.log.Info("server up", "service", s.name, "url", b.target.shown, "check", "active", "reason", "health check passed")
	default:
		s.log.Warn("server down", "service", s.name, "url", b.target.shown, "check", "active", "reason", reasonOf(err))
	}
}

// ejectionEnded logs that b's passive ejection has run out.
func (s *service) ejectionEnded(b *backend) {
	if !b.healthy.Load() {
		s.log.Debug("server ejection ended while its health check fails", "service", s.name, "url", b.target.shown, "check", "passive")
		return
	}
	s.log.Info("server up", "service", s.name, "url", b.target.shown, "check", "passive", "reason", "ejection ended")
}

func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// logEjected logs a passive ejection of b for window after failures
// consecutive failed requests, the last failing with cause; wasUp says
// whether b was up before.
func (s *service) logEjected(b *backend, wasUp bool, failures int32, window time.Duration, cause error) {
	level := slog.LevelWarn
	msg := "server down"
	if !wasUp {
		level, msg = slog.LevelDebug, "server ejected while down"
	}
	s.log.Log(context.Background(), level, msg, "service", s.name, "url", b.target.shown, "check", "passive",
		"reason", fmt.Sprintf("%d consecutive failed requests, the last: %v", failures, cause), "for", window)
}
