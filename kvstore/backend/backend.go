// Package backend opens a kvstore.Store from an endpoint URL, choosing the
// backend by the URL's scheme:
//
//	file:///var/lib/tollgate/state.db   embedded single-node store (default)
//	consul://127.0.0.1:8500             Consul (?dc=, tls=true, ca_file=, ...)
//	etcd://10.0.0.1:2379,10.0.0.2:2379  etcd (?tls=true, username=, ...)
//
// Each backend documents its query parameters in its ParseURL. Secrets are
// never taken from the URL, which ends up in process listings and logs:
// they come from Options (set from flags), files named in the URL, or the
// backends' environment variables.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/consul"
	"github.com/tollgate-proxy/tollgate/kvstore/embedded"
	"github.com/tollgate-proxy/tollgate/kvstore/etcd"
)

// DefaultEndpoint is the store tollgate uses when none is configured.
const DefaultEndpoint = "file:///var/lib/tollgate/state.db"

// ErrLocked is returned by Open when the embedded store's file is held by
// another process, such as a replica running on it.
var ErrLocked = embedded.ErrLocked

// Options carry what the endpoint URL must not.
type Options struct {
	// Logger receives the backend's warnings. Nil discards them.
	Logger *slog.Logger
	// ConsulToken is the Consul ACL token; empty means the token_file
	// parameter or CONSUL_HTTP_TOKEN.
	ConsulToken string
	// EtcdPassword is the etcd password; empty means the password_file
	// parameter or ETCD_PASSWORD.
	EtcdPassword string
}

// Schemes lists the endpoint schemes Open understands.
var Schemes = []string{"file", "consul", "etcd"}

// ErrEndpoint marks an endpoint that is wrong as written: a URL that does
// not parse, an unknown scheme or parameter, or a file it names (ACL token,
// password, CA bundle, client certificate) that cannot be read. It is a
// mistake to correct in the command line or the configuration, not a store
// that fails; Open and Check wrap it.
var ErrEndpoint = errors.New("invalid store endpoint")

// endpointError is an error that wraps ErrEndpoint without repeating its
// text.
type endpointError struct{ err error }

func (e *endpointError) Error() string        { return e.err.Error() }
func (e *endpointError) Unwrap() error        { return e.err }
func (e *endpointError) Is(target error) bool { return target == ErrEndpoint }

func invalid(err error) error { return &endpointError{err: err} }

// parsed is an endpoint read into its backend's configuration: exactly one
// field is set.
type parsed struct {
	file   *embedded.Config
	consul *consul.Config
	etcd   *etcd.Config
}

// Open parses endpoint and opens the store it names. Network backends
// check that the server answers before returning, so a wrong or
// unreachable endpoint fails here, within a bounded time, with an error
// naming it. An endpoint that is wrong as written fails before any
// connection, with an error wrapping ErrEndpoint.
func Open(ctx context.Context, endpoint string, opts Options) (kvstore.Store, error) {
	p, err := check(endpoint, opts)
	if err != nil {
		return nil, err
	}
	switch {
	case p.file != nil:
		cfg := *p.file
		cfg.Logger = opts.Logger
		return nonNil(embedded.Open(cfg))
	case p.consul != nil:
		cfg := *p.consul
		cfg.Logger, cfg.Token = opts.Logger, opts.ConsulToken
		return nonNil(consul.New(ctx, cfg))
	default:
		cfg := *p.etcd
		cfg.Logger, cfg.Password = opts.Logger, opts.EtcdPassword
		return nonNil(etcd.New(ctx, cfg))
	}
}

// Check reports whether Open would refuse endpoint as written: it parses
// the URL and reads the files it names, without contacting the store or
// opening the embedded store's file. Its errors wrap ErrEndpoint.
func Check(endpoint string, opts Options) error {
	_, err := check(endpoint, opts)
	return err
}

// Parse reports whether endpoint is well formed, as Check does but
// without reading the files it names. Its errors wrap ErrEndpoint.
func Parse(endpoint string) error {
	if _, err := parse(endpoint); err != nil {
		return invalid(err)
	}
	return nil
}

func check(endpoint string, opts Options) (parsed, error) {
	p, err := parse(endpoint)
	if err != nil {
		return parsed{}, invalid(err)
	}
	switch {
	case p.consul != nil:
		cfg := *p.consul
		cfg.Token = opts.ConsulToken
		if err := cfg.Check(); err != nil {
			return parsed{}, invalid(fmt.Errorf("consul endpoint %s: %w", cfg.Endpoint, err))
		}
	case p.etcd != nil:
		cfg := *p.etcd
		cfg.Password = opts.EtcdPassword
		if err := cfg.Check(); err != nil {
			return parsed{}, invalid(err) // names the endpoint
		}
	}
	return p, nil
}

// parse reads endpoint into its backend's configuration.
func parse(endpoint string) (parsed, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		err = fmt.Errorf("store endpoint %q: %w", Redact(endpoint), err)
		if _, _, splitErr := net.SplitHostPort(endpoint); splitErr == nil && !strings.Contains(endpoint, "@") {
			err = fmt.Errorf("%w; the scheme is missing: write consul://%s or etcd://%s", err, endpoint, endpoint)
		}
		return parsed{}, err
	}
	switch u.Scheme {
	case "file":
		cfg, err := embedded.ParseURL(u)
		return parsed{file: &cfg}, err
	case "consul":
		cfg, err := consul.ParseURL(u)
		return parsed{consul: &cfg}, err
	case "etcd":
		cfg, err := etcd.ParseURL(u)
		return parsed{etcd: &cfg}, err
	}
	return parsed{}, fmt.Errorf("store endpoint %q: unknown scheme %q; %s", u.Redacted(), u.Scheme, schemeHint(u))
}

// schemeHint says what to write instead of an endpoint with an unknown
// scheme: the Consul or etcd URL an http(s) address or a bare host:port
// most likely meant, else the schemes there are.
func schemeHint(u *url.URL) string {
	host := u.Host
	switch {
	case u.Scheme == "http" || u.Scheme == "https":
	case u.Opaque != "" && isPort(u.Opaque):
		// "consul-server:8500" parses as scheme "consul-server".
		host = u.Scheme + ":" + u.Opaque
	default:
		return fmt.Sprintf("use one of %s (for example %s)", strings.Join(Schemes, ", "), DefaultEndpoint)
	}
	scheme, tls := "consul", ""
	if _, port, _ := net.SplitHostPort(host); port == "2379" {
		scheme = "etcd"
	}
	if u.Scheme == "https" {
		tls = "?tls=true"
	}
	return fmt.Sprintf("write %s://%s%s", scheme, host, tls)
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// Redact hides the user information of an endpoint, even one that does
// not parse, so that a password in it reaches no log.
func Redact(endpoint string) string {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok {
		return endpoint
	}
	authority, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = "REDACTED" + authority[i:]
	}
	if path != "" || strings.HasSuffix(rest, "/") {
		authority += "/" + path
	}
	return scheme + "://" + authority
}

// nonNil keeps a nil *T from becoming a non-nil kvstore.Store.
func nonNil[T kvstore.Store](s T, err error) (kvstore.Store, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
