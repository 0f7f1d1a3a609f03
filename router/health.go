package router

import (
	"cmp"
	"context"
	"io"
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
			ok := h.check(ctx, b)
			if ctx.Err() != nil {
				return
			}
			if was := b.healthy.Swap(ok); was != ok {
				h.svc.log.Warn("server health changed", "service", h.svc.name, "server", b.target.id, "healthy", ok)
			}
		})
	}
	wg.Wait()
}

// check requests the health path on b and reports whether the answer is
// the expected status (any 2xx or 3xx by default).
func (h *healthCheck) check(ctx context.Context, b *backend) bool {
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
		return false
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, backendKey, b), http.MethodGet, u.ResolveReference(ref).String(), nil)
	if err != nil {
		return false
	}
	if h.cfg.Hostname != "" {
		req.Host = h.cfg.Hostname
	}
	for k, v := range h.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if h.cfg.Status != 0 {
		return resp.StatusCode == h.cfg.Status
	}
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}
