package middleware

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// errNoClientIP is returned when the strategy finds no usable address.
var errNoClientIP = errors.New("no client IP")

// ClientIP returns the address of the client that sent r, as strategy s
// finds it:
//
//   - s nil, or neither Depth nor ExcludedIPs set: the IP of r.RemoteAddr,
//     the peer of the connection.
//   - Depth N > 0: the Nth address counted from the right of
//     X-Forwarded-For, all X-Forwarded-For header lines joined in order.
//     Depth 1 is the rightmost entry, which is what the hop in front of
//     this proxy saw; there is no address when the header has fewer than
//     N entries.
//   - ExcludedIPs: the first address from the right that is not in one of
//     those IPs or CIDR ranges; there is none when every entry is excluded.
//
// As in Traefik, X-Forwarded-For is read as it reaches the middleware: the
// proxy appends the direct peer only when it forwards the request. The
// router removes X-Forwarded-For sent by untrusted clients before
// middlewares run, so the header can be trusted here.
//
// IPv4-mapped IPv6 addresses are returned as IPv4 and zones are dropped,
// so that the result compares with netip.Prefix values as expected. An
// entry may carry a port ("192.0.2.1:4711", "[2001:db8::1]:443").
func ClientIP(r *http.Request, s *config.IPStrategy) (netip.Addr, error) {
	st, err := newIPStrategy(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return st.clientIP(r)
}

// ipStrategy is a config.IPStrategy with its ranges parsed, so that
// middlewares do not parse them for every request.
type ipStrategy struct {
	depth    int
	excluded []netip.Prefix
}

// newIPStrategy parses s; nil means the remote address.
func newIPStrategy(s *config.IPStrategy) (*ipStrategy, error) {
	if s == nil {
		return &ipStrategy{}, nil
	}
	if s.Depth < 0 {
		return nil, fmt.Errorf("ip strategy: depth %d is negative", s.Depth)
	}
	st := &ipStrategy{depth: s.Depth}
	if s.Depth > 0 {
		// Depth wins over ExcludedIPs, as in Traefik; validation refuses
		// configurations that set both.
		return st, nil
	}
	ex, err := parsePrefixes(s.ExcludedIPs)
	if err != nil {
		return nil, fmt.Errorf("ip strategy: excluded IPs: %w", err)
	}
	st.excluded = ex
	return st, nil
}

// clientIP applies the strategy to r.
func (st *ipStrategy) clientIP(r *http.Request) (netip.Addr, error) {
	switch {
	case st.depth > 0:
		xff := forwardedFor(r)
		if len(xff) < st.depth {
			return netip.Addr{}, fmt.Errorf("%w: X-Forwarded-For has %d entries, depth is %d", errNoClientIP, len(xff), st.depth)
		}
		return parseHostAddr(xff[len(xff)-st.depth])
	case len(st.excluded) > 0:
		xff := forwardedFor(r)
		for i := len(xff) - 1; i >= 0; i-- {
			a, err := parseHostAddr(xff[i])
			if err != nil {
				return netip.Addr{}, fmt.Errorf("X-Forwarded-For entry %d from the right: %w", len(xff)-i, err)
			}
			if !containsAddr(st.excluded, a) {
				return a, nil
			}
		}
		return netip.Addr{}, fmt.Errorf("%w: every X-Forwarded-For entry is excluded", errNoClientIP)
	default:
		return parseHostAddr(r.RemoteAddr)
	}
}

// forwardedFor returns the X-Forwarded-For entries of r, left to right,
// trimmed, from all header lines; empty entries are skipped.
func forwardedFor(r *http.Request) []string {
	var out []string
	for _, line := range r.Header.Values("X-Forwarded-For") {
		for e := range strings.SplitSeq(line, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// parseHostAddr parses an IP with or without a port, normalised for
// comparison with prefixes. Errors do not quote the input, which comes
// from the client.
func parseHostAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		host, _, serr := net.SplitHostPort(s)
		if serr != nil {
			return netip.Addr{}, fmt.Errorf("%w: not an IP address", errNoClientIP)
		}
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, fmt.Errorf("%w: not an IP address", errNoClientIP)
		}
	}
	return a.Unmap().WithZone(""), nil
}

// parsePrefixes parses IPs and CIDR ranges; a single IP is a full-length
// prefix. IPv4-mapped IPv6 ranges are turned into IPv4 ranges, to match
// the addresses parseHostAddr returns.
func parsePrefixes(ranges []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ranges))
	for _, s := range ranges {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither an IP nor a CIDR range: %w", s, err)
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP nor a CIDR range: %w", s, err)
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// containsAddr reports whether a is in one of the prefixes.
func containsAddr(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IPRanges is a parsed list of IPs and CIDR ranges, for checking client
// addresses on the request path without parsing the configuration again.
type IPRanges []netip.Prefix

// ParseIPRanges parses IPs and CIDR ranges such as "10.0.0.0/8".
func ParseIPRanges(ranges []string) (IPRanges, error) {
	return parsePrefixes(ranges)
}

// ContainsHost reports whether the IP of hostport (an address with or
// without a port, such as http.Request.RemoteAddr) is in the ranges.
func (r IPRanges) ContainsHost(hostport string) bool {
	a, err := parseHostAddr(hostport)
	return err == nil && containsAddr(r, a)
}
