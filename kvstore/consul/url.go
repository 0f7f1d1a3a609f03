package consul

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// DefaultPort is the port of an endpoint URL without one: Consul's HTTP API.
const DefaultPort = "8500"

// urlParams are the query parameters ParseURL accepts, sorted: the shared
// TLS ones and Consul's own.
var urlParams = slices.Sorted(slices.Values(append([]string{"dc", "token_file"}, kvstore.TLSParams...)))

// ParseURL reads an endpoint URL into a Config:
//
//	consul://host[:port][?param=value&...]
//
// The port defaults to 8500. One host only: the Consul client talks to one
// agent (usually the local one), which forwards to the servers. Parameters:
//
//	dc=NAME                    datacenter (default: the agent's)
//	tls=true                   HTTPS
//	ca_file=PATH               CA bundle to verify the agent with (needs tls)
//	cert_file=PATH&key_file=PATH  client certificate (needs tls)
//	server_name=NAME           name to verify the agent's certificate against
//	insecure_skip_verify=true  do not verify the agent (testing only)
//	token_file=PATH            file holding the ACL token
//
// The ACL token itself never goes in the URL, which ends up in logs and
// process listings: use token_file, Config.Token (a command-line flag) or
// the CONSUL_HTTP_TOKEN environment variable. Unknown parameters and user
// info are rejected.
func ParseURL(u *url.URL) (Config, error) {
	if u == nil {
		return Config{}, errors.New("consul endpoint: no URL given; write consul://127.0.0.1:8500")
	}
	if u.Scheme != "consul" {
		return Config{}, fmt.Errorf("consul endpoint: scheme %q, want consul://host:port", u.Scheme)
	}
	// Never echo user info: it may be a token.
	shown := "consul://" + u.Host
	fail := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("consul endpoint %s: "+format, append([]any{shown}, args...)...)
	}
	switch {
	case u.Opaque != "":
		shown = "consul:" + strings.SplitN(u.Opaque, "?", 2)[0]
		return fail("missing \"//\": write consul://host:port")
	case u.User != nil:
		return fail("user info in the URL is not supported (it would show in logs); " +
			"pass the ACL token with token_file=PATH or the CONSUL_HTTP_TOKEN environment variable")
	case u.Path != "" && u.Path != "/":
		return fail("unexpected path %q: the URL is consul://host:port with no path", u.Path)
	case u.Fragment != "":
		return fail("unexpected fragment %q", u.Fragment)
	}
	addr, err := hostPort(u.Host)
	if err != nil {
		return fail("%v", err)
	}
	cfg := Config{Endpoint: "consul://" + addr, Address: addr}
	if err := parseParams(&cfg, u.RawQuery); err != nil {
		return fail("%v", err)
	}
	return cfg, nil
}

// hostPort checks the one host of an endpoint URL and adds the default port.
func hostPort(host string) (string, error) {
	if host == "" {
		return "", errors.New("missing host: write consul://127.0.0.1:8500")
	}
	if strings.Contains(host, ",") {
		return "", errors.New("several hosts are not supported: give one Consul agent (usually the local one) " +
			"or a load balancer in front of the servers")
	}
	name, port := host, DefaultPort
	if h, p, err := net.SplitHostPort(host); err == nil {
		name, port = h, p
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		name = host[1 : len(host)-1]
	}
	if name == "" {
		return "", errors.New("missing host name: write consul://127.0.0.1:8500")
	}
	if strings.ContainsAny(name, "[]") || strings.Contains(name, ":") && !isIP(name) {
		return "", fmt.Errorf("invalid host %q: want a name, an IPv4 address or a bracketed IPv6 address", name)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid port %q: want 1 to 65535", port)
	}
	return net.JoinHostPort(name, port), nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// parseParams reads the query parameters into cfg.
func parseParams(cfg *Config, raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vs := q[k]
		if !slices.Contains(urlParams, k) {
			return fmt.Errorf("unknown parameter %q; accepted: %s", k, strings.Join(urlParams, ", "))
		}
		if len(vs) != 1 {
			return fmt.Errorf("parameter %s given %d times, want once", k, len(vs))
		}
		if err := setParam(cfg, k, vs[0]); err != nil {
			return err
		}
	}
	return cfg.TLS.Check()
}

// setParam sets the field of one accepted parameter.
func setParam(cfg *Config, k, v string) error {
	if handled, err := cfg.TLS.SetParam(k, v); handled {
		return err
	}
	if v == "" {
		return fmt.Errorf("parameter %s is empty", k)
	}
	switch k {
	case "dc":
		cfg.Datacenter = v
	case "token_file":
		cfg.TokenFile = v
	}
	return nil
}
