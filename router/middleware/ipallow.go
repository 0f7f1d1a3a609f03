package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/tollgate-proxy/tollgate/config"
)

// NewIPAllowList returns a handler that passes requests from clients in
// cfg.SourceRange to next and answers all others with
// cfg.RejectStatusCode (403 when zero) and its status text. The client IP
// is found with cfg.IPStrategy (see ClientIP); a request whose client IP
// cannot be determined is rejected, as in Traefik.
func NewIPAllowList(next http.Handler, cfg *config.IPAllowList) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("ip allow list: no configuration")
	}
	if len(cfg.SourceRange) == 0 {
		return nil, errors.New("ip allow list: sourceRange is empty")
	}
	ranges, err := parsePrefixes(cfg.SourceRange)
	if err != nil {
		return nil, fmt.Errorf("ip allow list: sourceRange: %w", err)
	}
	st, err := newIPStrategy(cfg.IPStrategy)
	if err != nil {
		return nil, fmt.Errorf("ip allow list: %w", err)
	}
	code := cfg.RejectStatusCode
	if code == 0 {
		code = http.StatusForbidden
	}
	if code < 400 || code > 599 {
		return nil, fmt.Errorf("ip allow list: rejectStatusCode %d is not an error status", code)
	}
	return &ipAllowList{next: next, ranges: ranges, strategy: st, reject: code}, nil
}

type ipAllowList struct {
	next     http.Handler
	ranges   []netip.Prefix
	strategy *ipStrategy
	reject   int
}

func (l *ipAllowList) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip, err := l.strategy.clientIP(r)
	if err != nil || !containsAddr(l.ranges, ip) {
		http.Error(w, http.StatusText(l.reject), l.reject)
		return
	}
	l.next.ServeHTTP(w, r)
}
