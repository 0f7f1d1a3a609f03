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
)

// DefaultPort is the port of an endpoint URL without one: Consul's HTTP API.
const DefaultPort = "8500"

// urlParams are the query parameters ParseURL accepts.
var urlParams = []string{
	"ca_file", "cert_file", "dc", "insecure_skip_verify", "key_file", "server_name", "tls", "token_file",
}

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
	if !cfg.TLS && (cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.ServerName != "" || cfg.InsecureSkipVerify) {
		return errors.New("ca_file, cert_file, key_file, server_name and insecure_skip_verify need tls=true")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return errors.New("a client certificate needs both cert_file and key_file")
	}
	return nil
}

func setParam(cfg *Config, k, v string) error {
	switch k {
	case "tls", "insecure_skip_verify":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("parameter %s=%q: want true or false", k, v)
		}
		if k == "tls" {
			cfg.TLS = b
		} else {
			cfg.InsecureSkipVerify = b
		}
		return nil
	}
	if v == "" {
		return fmt.Errorf("parameter %s is empty", k)
	}
	switch k {
	case "dc":
		cfg.Datacenter = v
	case "ca_file":
		cfg.CAFile = v
	case "cert_file":
		cfg.CertFile = v
	case "key_file":
		cfg.KeyFile = v
	case "server_name":
		cfg.ServerName = v
	case "token_file":
		cfg.TokenFile = v
	}
	return nil
}
