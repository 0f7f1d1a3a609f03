package tcp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/tollgate-proxy/tollgate/config"
)

// middleware admits a connection from client, or refuses it; an admitted
// connection calls release once it is closed.
type middleware interface {
	admit(client netip.Addr) (release func(), ok bool)
}

// allowList admits only the clients in its ranges.
type allowList []netip.Prefix

func newAllowList(name string, c *config.TCPIPAllowList) (allowList, error) {
	if len(c.SourceRange) == 0 {
		return nil, fmt.Errorf("middleware %s: ipAllowList needs a sourceRange", name)
	}
	var out allowList
	for _, r := range c.SourceRange {
		r = strings.TrimSpace(r)
		if p, err := netip.ParsePrefix(r); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(r)
		if err != nil {
			return nil, fmt.Errorf("middleware %s: ipAllowList: sourceRange %q is not an IP address or CIDR range", name, r)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (l allowList) admit(client netip.Addr) (func(), bool) {
	client = client.Unmap()
	return nil, slices.ContainsFunc(l, func(p netip.Prefix) bool { return p.Contains(client) })
}

// inFlight limits the connections open at once per client IP; a client's
// counter is removed when it drops to zero.
type inFlight struct {
	limit int64
	mu    sync.Mutex
	open  map[netip.Addr]int64
}

func (f *inFlight) admit(client netip.Addr) (func(), bool) {
	client = client.Unmap()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open[client] >= f.limit {
		return nil, false
	}
	f.open[client]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.open[client]--; f.open[client] <= 0 {
			delete(f.open, client)
		}
	}, true
}

func buildMiddleware(name string, c *config.TCPMiddleware) (middleware, string, error) {
	switch {
	case c == nil:
	case c.IPAllowList != nil:
		l, err := newAllowList(name, c.IPAllowList)
		return l, "ipAllowList", err
	case c.InFlightConn != nil:
		if c.InFlightConn.Amount <= 0 {
			return nil, "", fmt.Errorf("middleware %s: inFlightConn amount %d: want 1 or more", name, c.InFlightConn.Amount)
		}
		return &inFlight{limit: c.InFlightConn.Amount, open: map[netip.Addr]int64{}}, "inFlightConn", nil
	}
	return nil, "", fmt.Errorf("middleware %s: no middleware type is set", name)
}
