// Package etcd is the kvstore backend for an etcd v3 cluster.
//
// Revisions are etcd's own: an entry's Revision is its mod revision, a
// listing's is the response header's, and Apply returns the revision of the
// transaction. Locks are keys bound to an etcd lease, created only if absent;
// the key's create revision is the fencing token, and fenced writes compare
// it inside their transaction. The lease is renewed every third of its TTL,
// and a lock's Done closes a margin before the server could expire the
// lease, so before anyone else can take the lock.
//
// A Store is opened from a URL (see ParseURL) or a Config with New.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

var (
	_ kvstore.Store       = (*Store)(nil)
	_ kvstore.LockBreaker = (*Store)(nil)
)

// Defaults for Config fields left zero.
const (
	// DefaultDialTimeout bounds connecting (and authenticating) in New.
	DefaultDialTimeout = 5 * time.Second
	// DefaultRequestTimeout bounds each request whose ctx has no earlier
	// deadline.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultMaxTxnOps is etcd's --max-txn-ops default.
	DefaultMaxTxnOps = 128
	// DefaultMaxRequestBytes is etcd's --max-request-bytes default (1.5 MiB).
	DefaultMaxRequestBytes = 1572864
)

// opOverhead is what one operation of a transaction costs on the wire
// besides its key and value (protobuf tags and lengths, about 15 bytes),
// rounded up generously so that the request header fits in the rest.
const opOverhead = 64

// cmpOverhead is what a comparison costs besides its key; conditional ops
// and the fence each add one (see requestBytes).
const cmpOverhead = 32

// Config configures a Store. Only Endpoints is required.
type Config struct {
	// Endpoint names the store in errors, e.g. "etcd://10.0.0.1:2379".
	// Empty: "etcd://" followed by Endpoints joined with commas.
	Endpoint string
	// Endpoints are the members' client addresses, "host:port", or URLs
	// "http://host:port" / "https://host:port". Addresses without a scheme
	// use https when TLS.Enabled is set, http otherwise.
	Endpoints []string

	// Username authenticates to an etcd cluster with auth enabled. Empty:
	// no authentication.
	Username string
	// Password is Username's password. Empty: read from PasswordFile, or
	// else from the ETCD_PASSWORD environment variable.
	Password string
	// PasswordFile holds Username's password (one trailing newline is
	// ignored). Used only when Password is empty.
	PasswordFile string

	// TLS configures TLS to the members; the zero value is plain TCP.
	TLS kvstore.ClientTLS

	// Logger receives warnings (a watch failing, a lock lost). Nil
	// discards them. Values, keys, tokens and passwords are never logged.
	Logger *slog.Logger
	// DialTimeout bounds New's connection and reachability check. Zero:
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// RequestTimeout bounds every request whose ctx has no earlier
	// deadline. Zero: DefaultRequestTimeout.
	RequestTimeout time.Duration

	// MaxTxnOps is the server's --max-txn-ops. Zero: DefaultMaxTxnOps.
	// Raise it only together with the server flag.
	MaxTxnOps int
	// MaxRequestBytes is the server's --max-request-bytes. Zero:
	// DefaultMaxRequestBytes. Raise it only together with the server flag.
	MaxRequestBytes int
}

// Store is a kvstore.Store backed by an etcd cluster. Create it with New.
type Store struct {
	cfg    Config
	cli    *clientv3.Client
	log    *slog.Logger
	limits kvstore.Limits

	// closed is set first thing in Close; bg is canceled (and closing
	// closed) once held locks are released, to stop watch and lock
	// goroutines and background cleanups.
	closed    atomic.Bool
	bg        context.Context
	stopBg    context.CancelFunc
	closing   <-chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex // guards locks and wg.Add against Close
	locks map[*lock]struct{}
	wg    sync.WaitGroup
}

// New connects to the etcd cluster of cfg and checks within
// cfg.DialTimeout (or ctx's earlier deadline) that it answers.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ccfg, err := cfg.clientConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		err = fmt.Errorf("etcd connect to %s: %w", cfg.Endpoint, err)
		return nil, withDiagnosis(ctx, err, cfg.Endpoints)
	}
	bg, stopBg := context.WithCancel(context.Background())
	s := &Store{
		cfg:     cfg,
		cli:     cli,
		log:     cfg.Logger,
		limits:  cfg.limits(),
		bg:      bg,
		stopBg:  stopBg,
		closing: bg.Done(),
		locks:   make(map[*lock]struct{}),
	}
	if err := s.probe(ctx); err != nil {
		stopBg()
		_ = cli.Close()
		return nil, err
	}
	return s, nil
}

// withDefaults validates cfg and fills in its zero fields.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Endpoints) == 0 {
		return cfg, errors.New("etcd: no endpoints configured: give at least one host:port")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "etcd://" + joinHosts(cfg.Endpoints)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("endpoint", cfg.Endpoint)
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxRequestBytes < 64*1024 {
		return cfg, fmt.Errorf("etcd %s: max request bytes %d is below 64 KiB: set it to the server's --max-request-bytes",
			cfg.Endpoint, cfg.MaxRequestBytes)
	}
	return cfg, nil
}

// limits derives the kvstore limits from the server limits in cfg. A
// value may take the whole request but 4 KiB, left for its key and the
// request's framing.
func (cfg Config) limits() kvstore.Limits {
	return kvstore.Limits{
		Backend:       "etcd",
		MaxKeyBytes:   kvstore.MaxKeyBytes,
		MaxValueBytes: cfg.MaxRequestBytes - 4096,
		MaxTxnOps:     cfg.MaxTxnOps,
		MaxTxnBytes:   cfg.MaxRequestBytes,
		OpOverhead:    opOverhead,
	}
}

// clientConfig builds the etcd client's configuration.
func (cfg Config) clientConfig() (clientv3.Config, error) {
	password, err := cfg.password()
	if err != nil {
		return clientv3.Config{}, err
	}
	tlsConf, err := cfg.TLS.Config()
	if err != nil {
		return clientv3.Config{}, fmt.Errorf("etcd %s: tls: %w", cfg.Endpoint, err)
	}
	eps, err := cfg.clientEndpoints()
	if err != nil {
		return clientv3.Config{}, err
	}
	ccfg := clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  tlsConf,
		Username:             cfg.Username,
		Password:             password,
		// The client logs through zap: into cfg.Logger, at debug.
		Logger: clientLogger(cfg.Logger),
	}
	// The client refuses to send more than 2 MiB unless told otherwise.
	if send := cfg.MaxRequestBytes + 64*1024; send > 2*1024*1024 {
		ccfg.MaxCallSendMsgSize = send
	}
	return ccfg, nil
}

// probe checks that some member answers, with a serializable read that
// needs neither a leader nor read permission on any key.
func (s *Store) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	_, err := s.cli.Get(pctx, "tollgate-probe", clientv3.WithSerializable(), clientv3.WithCountOnly())
	if err == nil || errors.Is(err, rpctypes.ErrPermissionDenied) {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("no member answered within %s: %w", s.cfg.DialTimeout, err)
	}
	err = fmt.Errorf("etcd connect to %s: %w", s.cfg.Endpoint, err)
	return withDiagnosis(ctx, err, s.cfg.Endpoints)
}

// Limits returns the sizes this store accepts, from etcd's server limits
// (Config.MaxTxnOps, Config.MaxRequestBytes). Conditions are not counted
// by kvstore.Limits.TxnBytes; Apply checks their size too, so a batch of
// many conditional ops with long keys right at MaxTxnBytes can still be
// refused with kvstore.ErrTxnTooLarge before it is sent.
func (s *Store) Limits() kvstore.Limits { return s.limits }

// Get returns the entry at key, read linearizably unless kvstore.Stale is
// given (then serializably, from the member the client talks to).
func (s *Store) Get(ctx context.Context, key string, opts ...kvstore.ReadOption) (kvstore.KV, error) {
	if err := kvstore.ValidateKey(key); err != nil {
		return kvstore.KV{}, fmt.Errorf("etcd get: %w", err)
	}
	if s.closed.Load() {
		return kvstore.KV{}, s.wrap(ctx, "get", key, kvstore.ErrClosed)
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, key, readOpts(opts)...)
	if err != nil {
		return kvstore.KV{}, s.wrap(ctx, "get", key, err)
	}
	if len(resp.Kvs) == 0 {
		return kvstore.KV{}, fmt.Errorf("etcd get %q at %s: %w", key, s.cfg.Endpoint, kvstore.ErrNotFound)
	}
	kv := resp.Kvs[0]
	return kvstore.KV{Key: string(kv.Key), Value: kv.Value, Revision: kv.ModRevision}, nil
}

// List returns the entries under prefix, sorted by key, and the revision
// the listing was read at.
func (s *Store) List(ctx context.Context, prefix string, opts ...kvstore.ReadOption) (kvstore.List, error) {
	if err := kvstore.ValidatePrefix(prefix); err != nil {
		return kvstore.List{}, fmt.Errorf("etcd list: %w", err)
	}
	if s.closed.Load() {
		return kvstore.List{}, s.wrap(ctx, "list", prefix, kvstore.ErrClosed)
	}
	// Pages of listPage keys, all read at the revision of the first, keep
	// the client's peak memory near the size of the result instead of
	// several times it (a response is buffered, decoded and copied).
	var l kvstore.List
	from, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
	if prefix == "" {
		from, end = "\x00", "\x00"
	}
	for {
		ropts := append(readOpts(opts), clientv3.WithRange(end), clientv3.WithLimit(listPage),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		if l.Revision != 0 {
			ropts = append(ropts, clientv3.WithRev(l.Revision))
		}
		rctx, cancel := s.reqCtx(ctx)
		resp, err := s.cli.Get(rctx, from, ropts...)
		cancel()
		if err != nil {
			return kvstore.List{}, s.wrap(ctx, "list", prefix, err)
		}
		if l.Revision == 0 {
			l.Revision = resp.Header.Revision
			l.KVs = make([]kvstore.KV, 0, resp.Count)
		}
		for _, kv := range resp.Kvs {
			l.KVs = append(l.KVs, kvstore.KV{Key: string(kv.Key), Value: kv.Value, Revision: kv.ModRevision})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return l, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// listPage is how many keys one List request reads.
const listPage = 500

func readOpts(opts []kvstore.ReadOption) []clientv3.OpOption {
	if kvstore.IsStale(opts) {
		return []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return nil
}

// Close releases held locks (waiting at most RequestTimeout), stops the
// watches, closing their channels, and closes the client. Later calls
// fail with kvstore.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		locks := slices.Collect(maps.Keys(s.locks))
		s.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		var wg sync.WaitGroup
		for _, l := range locks {
			wg.Go(func() { _ = l.release(ctx) })
		}
		wg.Wait()
		cancel()

		s.stopBg()
		s.wg.Wait()
		_ = s.cli.Close()
	})
	return nil
}

// goOwned starts f as a goroutine that Close waits for, unless the store
// is closed.
func (s *Store) goOwned(f func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return kvstore.ErrClosed
	}
	s.wg.Go(f)
	return nil
}

// untilClose returns a context that also ends, with cause
// kvstore.ErrClosed, when the store closes: calls into the etcd client
// that wait for a connection then return.
func (s *Store) untilClose(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.bg, func() { cancel(kvstore.ErrClosed) })
	return cctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// reqCtx bounds one request by RequestTimeout unless ctx ends earlier.
func (s *Store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.cfg.RequestTimeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// wrap adds the operation, key and endpoint to err and says what a
// timeout or a closed store means. A ctx from untilClose that the store's
// closing ended counts as not done.
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	where := fmt.Sprintf("etcd %s %q at %s", op, key, s.cfg.Endpoint)
	callerLive := ctx.Err() == nil || errors.Is(context.Cause(ctx), kvstore.ErrClosed)
	switch {
	case s.closed.Load() && callerLive:
		return fmt.Errorf("%s: %w", where, kvstore.ErrClosed)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("%s: no answer within %s (is etcd reachable and does it have a leader?): %w",
			where, s.cfg.RequestTimeout, err)
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%s: %w: %w (set MaxTxnOps/MaxRequestBytes to the server's flags)",
			where, kvstore.ErrTxnTooLarge, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}
