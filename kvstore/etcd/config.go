package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// EnvPassword is the environment variable New reads the password from when
// neither Config.Password nor Config.PasswordFile gives one.
const EnvPassword = "ETCD_PASSWORD"

// defaultPort is etcd's client port, used for hosts given without one.
const defaultPort = "2379"

// urlParams are the query parameters ParseURL accepts.
var urlParams = append(slices.Clone(kvstore.TLSParams), "username", "password_file")

// ParseURL reads an etcd endpoint URL:
//
//	etcd://host1:2379,host2:2379?tls=true&ca_file=/etc/etcd/ca.pem
//
// Hosts without a port get 2379. Query parameters:
//
//	tls=true                  connect with TLS (implied by the file parameters)
//	ca_file=PATH              CA bundle the servers' certificates are checked against
//	cert_file=PATH, key_file=PATH   client certificate and key
//	server_name=NAME          name the servers' certificates must carry
//	insecure_skip_verify=true do not check the servers' certificates (tests only)
//	username=NAME             authenticate as NAME (also etcd://NAME@host:2379)
//	password_file=PATH        file holding the password
//
// A password is never read from the URL, which ends up in process listings
// and logs: it comes from Config.Password (a flag), password_file, or the
// ETCD_PASSWORD environment variable, in that order. Unknown parameters
// are rejected.
func ParseURL(u *url.URL) (Config, error) {
	var cfg Config
	if err := checkURLShape(u); err != nil {
		return cfg, err
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return cfg, errors.New("etcd URL: a password in the URL is not accepted: " +
				"remove it and use password_file=PATH, the password flag, or " + EnvPassword)
		}
		cfg.Username = u.User.Username()
	}
	hosts, err := parseHosts(u.Host)
	if err != nil {
		return cfg, err
	}
	cfg.Endpoints = hosts
	cfg.Endpoint = "etcd://" + joinHosts(hosts)
	if err := cfg.parseQuery(u.RawQuery); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func checkURLShape(u *url.URL) error {
	switch {
	case u.Scheme != "etcd":
		return fmt.Errorf("etcd URL: scheme %q, want \"etcd\" (etcd://host:2379)", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return errors.New("etcd URL: no host: write etcd://host:2379[,host2:2379]")
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("etcd URL: path %q not supported: write etcd://host:2379[,host2:2379]", u.Path)
	case u.Fragment != "":
		return errors.New("etcd URL: a #fragment is not supported")
	}
	return nil
}

// parseHosts splits the comma-separated host list of an etcd URL and adds
// the default port where there is none.
func parseHosts(list string) ([]string, error) {
	var hosts []string
	for h := range strings.SplitSeq(list, ",") {
		if h == "" {
			return nil, fmt.Errorf("etcd URL: empty host in %q: separate hosts with single commas", list)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = portless(h), defaultPort
		}
		if host == "" || strings.ContainsAny(host, "[]/@?#% ") {
			return nil, fmt.Errorf("etcd URL: bad host %q: write host:port", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("etcd URL: bad port in %q: write host:port with a port from 1 to 65535", h)
		}
		hosts = append(hosts, net.JoinHostPort(host, port))
	}
	return hosts, nil
}

// portless returns the host of h, given without a port ("host", "[::1]",
// "::1"), or "" when h is malformed.
func portless(h string) string {
	switch {
	case strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]"):
		if ip := net.ParseIP(h[1 : len(h)-1]); ip != nil {
			return h[1 : len(h)-1]
		}
	case !strings.Contains(h, ":"):
		return h
	case net.ParseIP(h) != nil:
		return h
	}
	return ""
}

// parseQuery sets cfg's fields from the URL's query parameters. The TLS
// file parameters, server_name and insecure_skip_verify imply tls=true
// unless tls=false is given, which contradicts them.
func (cfg *Config) parseQuery(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("etcd URL: bad query: %w", err)
	}
	for name, vals := range q {
		if len(vals) != 1 {
			return fmt.Errorf("etcd URL: parameter %q given %d times", name, len(vals))
		}
		if err := cfg.setParam(name, vals[0]); err != nil {
			return err
		}
	}
	tlsOnly := cfg.TLS
	tlsOnly.Enabled = false
	if tlsOnly != (kvstore.ClientTLS{}) {
		if _, given := q["tls"]; given && !cfg.TLS.Enabled {
			return errors.New("etcd URL: tls=false contradicts the TLS parameters given: drop one")
		}
		cfg.TLS.Enabled = true
	}
	if err := cfg.TLS.Check(); err != nil {
		return fmt.Errorf("etcd URL: %w", err)
	}
	return nil
}

// setParam sets the field of one query parameter.
func (cfg *Config) setParam(name, v string) error {
	if handled, err := cfg.TLS.SetParam(name, v); handled {
		if err != nil {
			return fmt.Errorf("etcd URL: %w", err)
		}
		return nil
	}
	switch {
	case name == "password":
		return errors.New("etcd URL: a password in the URL is not accepted: " +
			"use password_file=PATH, the password flag, or " + EnvPassword)
	case name != "username" && name != "password_file":
		return fmt.Errorf("etcd URL: unknown parameter %q; known: %s", name, strings.Join(urlParams, ", "))
	case v == "":
		return fmt.Errorf("etcd URL: parameter %s is empty", name)
	case name == "password_file":
		cfg.PasswordFile = v
	case cfg.Username != "" && cfg.Username != v:
		return fmt.Errorf("etcd URL: username %q contradicts the URL's user %q: give one", v, cfg.Username)
	default:
		cfg.Username = v
	}
	return nil
}

// joinHosts strips schemes from endpoints and joins them with commas.
func joinHosts(eps []string) string {
	hosts := make([]string, len(eps))
	for i, ep := range eps {
		_, rest, ok := strings.Cut(ep, "://")
		if !ok {
			rest = ep
		}
		hosts[i] = rest
	}
	return strings.Join(hosts, ",")
}

// clientEndpoints gives every endpoint the scheme matching cfg.TLS.
func (cfg Config) clientEndpoints() ([]string, error) {
	want := "http"
	if cfg.TLS.Enabled {
		want = "https"
	}
	eps := make([]string, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		scheme, _, ok := strings.Cut(ep, "://")
		switch {
		case !ok:
			eps[i] = want + "://" + ep
		case scheme == want:
			eps[i] = ep
		default:
			return nil, fmt.Errorf("etcd %s: endpoint %q uses %s but TLS is %t", cfg.Endpoint, ep, scheme, cfg.TLS.Enabled)
		}
	}
	return eps, nil
}

// Check reads what New reads before it connects (the password file, the
// TLS files) and reports what New would refuse of them, such as a user
// without a password, without contacting the server. Its errors quote no
// secret.
func (cfg Config) Check() error {
	if _, err := cfg.password(); err != nil {
		return err
	}
	if _, err := cfg.TLS.Config(); err != nil {
		return fmt.Errorf("etcd %s: %w", cfg.Endpoint, err)
	}
	return nil
}

// password resolves the password: Password, else PasswordFile, else the
// environment. It never puts the password into an error.
func (cfg Config) password() (string, error) {
	p := cfg.Password
	if p == "" && cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("etcd %s: read password file: %w", cfg.Endpoint, err)
		}
		p = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if p == "" {
			return "", fmt.Errorf("etcd %s: password file %s is empty", cfg.Endpoint, cfg.PasswordFile)
		}
	}
	if p == "" && cfg.Username != "" {
		p = os.Getenv(EnvPassword)
	}
	switch {
	case cfg.Username == "" && p != "" && cfg.Password+cfg.PasswordFile != "":
		return "", fmt.Errorf("etcd %s: a password is given but no username: add username=NAME", cfg.Endpoint)
	case cfg.Username != "" && p == "":
		return "", fmt.Errorf("etcd %s: user %q has no password: use password_file=PATH, the password flag, or %s",
			cfg.Endpoint, cfg.Username, EnvPassword)
	}
	return p, nil
}

// withDiagnosis adds to err why each endpoint cannot be reached over TCP,
// when it cannot: a timeout from the gRPC client alone does not say.
func withDiagnosis(ctx context.Context, err error, endpoints []string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		notes []string
	)
	for _, ep := range endpoints {
		host := joinHosts([]string{ep})
		wg.Go(func() {
			var d net.Dialer
			conn, derr := d.DialContext(dctx, "tcp", host)
			if derr != nil {
				mu.Lock()
				notes = append(notes, derr.Error())
				mu.Unlock()
				return
			}
			_ = conn.Close()
		})
	}
	wg.Wait()
	if len(notes) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(notes, "; "))
}
