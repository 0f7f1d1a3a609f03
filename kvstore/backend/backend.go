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
	"net/url"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/consul"
	"github.com/tollgate-proxy/tollgate/kvstore/embedded"
	"github.com/tollgate-proxy/tollgate/kvstore/etcd"
)

// DefaultEndpoint is the store tollgate uses when none is configured.
const DefaultEndpoint = "file:///var/lib/tollgate/state.db"

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

// Open parses endpoint and opens the store it names. Network backends
// check that the server answers before returning, so a wrong or
// unreachable endpoint fails here, within a bounded time, with an error
// naming it.
func Open(ctx context.Context, endpoint string, opts Options) (kvstore.Store, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("store endpoint %q: %w", Redact(endpoint), err)
	}
	switch u.Scheme {
	case "file":
		cfg, err := embedded.ParseURL(u)
		if err != nil {
			return nil, err
		}
		cfg.Logger = opts.Logger
		return nonNil(embedded.Open(cfg))
	case "consul":
		cfg, err := consul.ParseURL(u)
		if err != nil {
			return nil, err
		}
		cfg.Logger, cfg.Token = opts.Logger, opts.ConsulToken
		return nonNil(consul.New(ctx, cfg))
	case "etcd":
		cfg, err := etcd.ParseURL(u)
		if err != nil {
			return nil, err
		}
		cfg.Logger, cfg.Password = opts.Logger, opts.EtcdPassword
		return nonNil(etcd.New(ctx, cfg))
	}
	return nil, fmt.Errorf("store endpoint %q: unknown scheme %q; use one of %s (for example %s)",
		u.Redacted(), u.Scheme, strings.Join(Schemes, ", "), DefaultEndpoint)
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
