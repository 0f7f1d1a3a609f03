package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Checks on single values shared by the validators. Each returns nil or an
// error whose text completes "<key>: …" and says how to fix the value.

// maxNameBytes bounds the names of entry points, routers, services,
// middlewares and TLS options.
const maxNameBytes = 64

// checkName accepts the names of configuration objects: they become store
// key segments and appear in logs and metrics.
func checkName(name string) error {
	ok := name != "" && len(name) <= maxNameBytes && isAlnum(name[0]) && isAlnum(name[len(name)-1])
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = isAlnum(c) || c == '-' || c == '_' || c == '.'
	}
	if !ok {
		return fmt.Errorf("name %q is not allowed: use letters, digits, \"-\", \"_\" and \".\" (starting and ending with a letter or digit, at most %d)", truncate(name, 80), maxNameBytes)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// maxMapKeyBytes bounds header names and other keys chosen in the
// configuration, which become store key segments.
const maxMapKeyBytes = 128

// checkMapKey accepts a key that can be a store key segment: printable
// ASCII without spaces or "/", not "." or "..", at most maxMapKeyBytes.
func checkMapKey(what, k string) error {
	if len(k) > maxMapKeyBytes {
		return fmt.Errorf("%s of %d bytes: at most %d allowed", what, len(k), maxMapKeyBytes)
	}
	if _, err := kvstore.Join(k); err != nil {
		return fmt.Errorf("%s %q cannot be stored: use printable ASCII without spaces or \"/\", other than \".\" and \"..\"", what, truncate(k, 80))
	}
	return nil
}

// checkToken accepts an HTTP token: a header name or a method.
func checkToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return fmt.Errorf("%s %q contains %q, which HTTP does not allow in it", what, truncate(s, 80), c)
		}
	}
	return nil
}

// checkHostname accepts a DNS name in ASCII (IDNs in punycode), optionally
// with a leading "*." when wildcard is true.
func checkHostname(name string, wildcard bool) error {
	host := name
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if !wildcard {
			return fmt.Errorf("%q: a wildcard is not allowed here", name)
		}
		host = rest
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return fmt.Errorf("%q is an IP address; certificates need a DNS name", name)
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("%q is not a DNS name (1 to 253 characters)", truncate(name, 80))
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%q is not a fully qualified DNS name; write it with its domain, like app.example.com", name)
	}
	for _, l := range labels {
		if err := checkLabel(name, l); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(name, l string) error {
	if l == "" || len(l) > 63 {
		return fmt.Errorf("%q has an empty label or one longer than 63 characters", truncate(name, 80))
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("%q has a label starting or ending with \"-\"", name)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c >= 0x80 {
			return fmt.Errorf("%q is not ASCII; write internationalized names in punycode (xn--…)", truncate(name, 80))
		}
		if !(isAlnum(c) || c == '-') {
			return fmt.Errorf("%q contains %q; DNS names have letters, digits, \"-\" and \".\"", truncate(name, 80), c)
		}
	}
	return nil
}

// checkURL accepts an absolute URL with one of schemes and a host.
func checkURL(s string, schemes ...string) error {
	shown := truncate(redactURL(s), 80)
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%q is not a URL: %v", shown, err)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return fmt.Errorf("%q: the scheme must be %s", shown, orList(schemes))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host; write it like %s://host:port/", shown, schemes[0])
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return fmt.Errorf("%q: %w", shown, err)
		}
	}
	return nil
}

// redactURL hides the user information of a URL, which may hold a
// password, for messages: "http://xxxxx@host/", even when s does not
// parse.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	if j := strings.LastIndex(s, "@"); j > i+3 {
		if k := strings.IndexAny(s[i+3:], "/?#"); k < 0 || i+3+k > j {
			return s[:i+3] + "xxxxx" + s[j:]
		}
	}
	return s
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return nil
}

// checkIPOrCIDR accepts "10.0.0.1", "10.0.0.0/8" or IPv6 equivalents.
func checkIPOrCIDR(s string) error {
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Errorf("%q is not a CIDR range such as 10.0.0.0/8", truncate(s, 80))
		}
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("%q is not an IP address or a CIDR range such as 10.0.0.0/8", truncate(s, 80))
	}
	return nil
}

// checkListen accepts a listen address host:port, where host is empty, an
// IP or a name, and port is a number (0 picks a free port).
func checkListen(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port; write \":%s\" to listen on every interface", truncate(addr, 80), strings.TrimPrefix(addr, ":"))
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, p)
	}
	return h, n, nil
}

func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return fmt.Errorf("%q is not an email address such as ops@example.com", truncate(s, 80))
	}
	return nil
}

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// CheckHostname reports whether name is a fully qualified DNS name in
// ASCII that a certificate can be ordered for (no IP address, no
// wildcard). It checks names from outside, such as TLS server names.
func CheckHostname(name string) error { return checkHostname(name, false) }
