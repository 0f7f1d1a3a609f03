// Package consul is the kvstore backend on Consul's KV store, spoken to over
// Consul's HTTP API with github.com/hashicorp/consul/api.
//
// Every write is a Consul transaction (/v1/txn), so a batch is atomic, can
// carry revision conditions and a lock fence, and reports the index it was
// committed at. Revisions are Consul's ModifyIndex and X-Consul-Index. Locks
// are sessions without health checks, kept alive by TTL renewal and a
// heartbeat write of the lock key: a lock therefore survives the holder's
// Consul agent restarting, and ends only when the holder releases it, an
// operator breaks it, or the holder falls silent (a waiting Lock then ends
// its session after one TTL; Consul itself would after two).
package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Defaults of Config fields left zero.
const (
	DefaultAddress        = "127.0.0.1:8500"
	DefaultRequestTimeout = 10 * time.Second
	DefaultLockDelay      = time.Second
	// DefaultMaxTxnBytes is Consul's default txn_max_req_len: the largest
	// /v1/txn request body an agent accepts.
	DefaultMaxTxnBytes = 512 << 10
)

// tokenEnv is the environment variable the Consul CLI reads its ACL token
// from; Config falls back to it.
const tokenEnv = "CONSUL_HTTP_TOKEN"

// Config configures New. Its zero value talks plain HTTP to a Consul agent
// on 127.0.0.1:8500 without an ACL token (unless CONSUL_HTTP_TOKEN is set).
type Config struct {
	// Endpoint names the store in errors and logs, e.g.
	// "consul://127.0.0.1:8500". Empty means "consul://" + Address.
	Endpoint string
	// Address is the host:port of the Consul agent's HTTP API. Empty means
	// DefaultAddress. Only one address is supported: point it at the local
	// agent or at a load balancer in front of the servers.
	Address string
	// Datacenter is sent with every request; empty means the agent's own.
	Datacenter string

	// Token is the ACL token. It takes precedence over TokenFile, which
	// takes precedence over the CONSUL_HTTP_TOKEN environment variable.
	// (When all three are empty, the Consul client library may still pick
	// up CONSUL_HTTP_TOKEN_FILE.) The token never appears in errors or logs.
	Token string
	// TokenFile is a file holding the ACL token, read once by New.
	TokenFile string

	// TLS configures HTTPS to the agent; the zero value is plain HTTP. An
	// empty TLS.ServerName means the host of Address.
	TLS kvstore.ClientTLS

	// Logger receives warnings about watches and locks, and notes such as
	// a silent lock holder's session being ended. Nil discards them.
	Logger *slog.Logger

	// RequestTimeout bounds each HTTP request whose ctx has no earlier
	// deadline (a blocking query gets it on top of its wait time), and
	// dialling the agent. Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// LockDelay is the lock-delay of lock sessions: after a holder's
	// session ends without releasing its lock (expiry, BreakLock, a waiter
	// ending the session of a silent holder), Consul
	// refuses to hand the key to anyone else for this long, so that a
	// holder that has not noticed yet has time to stop. Zero means
	// DefaultLockDelay; Consul accepts at most 60s. Lock waits this long
	// (at most 1s at a time) between attempts refused for lock-delay.
	LockDelay time.Duration
	// MaxTxnBytes is the largest transaction body to send. Zero means
	// DefaultMaxTxnBytes, the least accepted 16 KiB; raise it only together
	// with the agents' txn_max_req_len. Values stay capped at 512 KiB,
	// Consul's default kv_max_value_size.
	MaxTxnBytes int
}

// Store is a kvstore.Store on Consul. Create it with New.
type Store struct {
	client    *api.Client
	transport *http.Transport
	endpoint  string
	dc        string
	token     string
	log       *slog.Logger
	timeout   time.Duration
	lockDelay time.Duration
	limits    kvstore.Limits

	// ctx is cancelled by Close; every operation and goroutine stops on it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	locks  map[*lock]struct{}
	wg     sync.WaitGroup // watch and lock goroutines
	once   sync.Once
}

var (
	_ kvstore.Store       = (*Store)(nil)
	_ kvstore.LockBreaker = (*Store)(nil)
)

// consulMaxTxnOps is the number of operations Consul accepts in one
// transaction (hard-coded in the agent).
const consulMaxTxnOps = 128

// maxTxnFraming is what MaxValueBytes leaves of MaxTxnBytes for everything
// around the one value: the JSON framing of the op, a key of up to
// kvstore.MaxKeyBytes, and a fence check op with a key of the same size.
const maxTxnFraming = 4 << 10

// consulMaxValueBytes is Consul's default kv_max_value_size.
const consulMaxValueBytes = 512 << 10

// New returns a Store talking to the Consul agent cfg describes, after
// checking that the agent answers (GET /v1/status/leader). ctx bounds that
// check.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg = withDefaults(cfg)
	if err := validate(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Endpoint, err)
	}
	token, err := resolveToken(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Endpoint, err)
	}
	transport, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Endpoint, err)
	}
	scheme := "http"
	if cfg.TLS.Enabled {
		scheme = "https"
	}
	client, err := api.NewClient(&api.Config{
		Address:    cfg.Address,
		Scheme:     scheme,
		Datacenter: cfg.Datacenter,
		Token:      token,
		Transport:  transport,
		HttpClient: &http.Client{Transport: transport},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: create client: %w", cfg.Endpoint, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		client:    client,
		transport: transport,
		endpoint:  cfg.Endpoint,
		dc:        cfg.Datacenter,
		token:     token,
		log:       cfg.Logger.With("endpoint", cfg.Endpoint),
		timeout:   cfg.RequestTimeout,
		lockDelay: cfg.LockDelay,
		limits:    limitsFor(cfg.MaxTxnBytes),
		ctx:       sctx,
		cancel:    cancel,
		locks:     make(map[*lock]struct{}),
	}
	if err := s.checkReachable(ctx); err != nil {
		cancel()
		transport.CloseIdleConnections()
		return nil, err
	}
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "consul://" + cfg.Address
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.LockDelay <= 0 {
		cfg.LockDelay = DefaultLockDelay
	}
	if cfg.MaxTxnBytes <= 0 {
		cfg.MaxTxnBytes = DefaultMaxTxnBytes
	}
	return cfg
}

// Bounds of Config fields.
const (
	maxLockDelay   = 60 * time.Second // Consul's maximum
	minMaxTxnBytes = 16 << 10
)

func validate(cfg Config) error {
	if err := cfg.TLS.Check(); err != nil {
		return err
	}
	if cfg.LockDelay > maxLockDelay {
		return fmt.Errorf("LockDelay %s exceeds Consul's maximum of %s", cfg.LockDelay, maxLockDelay)
	}
	if cfg.MaxTxnBytes < minMaxTxnBytes {
		return fmt.Errorf("MaxTxnBytes %d is below %d; Consul's default txn_max_req_len is %d",
			cfg.MaxTxnBytes, minMaxTxnBytes, DefaultMaxTxnBytes)
	}
	return nil
}

// limitsFor derives the limits from the transaction body limit.
//
// Values travel base64-encoded inside the transaction body, which the agent
// caps at txn_max_req_len; each value is also capped at kv_max_value_size
// (512 KiB by default). MaxValueBytes is set so that one value of that size
// with a key of the longest length, in a fenced batch, still fits the body:
// (MaxTxnBytes - framing) * 3/4, and never above Consul's default value cap.
func limitsFor(maxTxnBytes int) kvstore.Limits {
	maxValue := max((maxTxnBytes-maxTxnFraming)*3/4, 0)
	return kvstore.Limits{
		Backend:       "consul",
		MaxKeyBytes:   kvstore.MaxKeyBytes,
		MaxValueBytes: min(maxValue, consulMaxValueBytes),
		// One of Consul's operations is kept for the fence, so that any
		// batch of MaxTxnOps ops can be fenced. A conditional delete of an
		// existing revision takes two (Consul's delete-cas succeeds on a
		// missing key), which Apply counts on the exact encoding.
		MaxTxnOps:   consulMaxTxnOps - 1,
		MaxTxnBytes: maxTxnBytes,
		// The JSON of one op besides key and value is at most 144 bytes
		// ({"KV":{"Verb":"check-index","Key":"","Value":null,"Flags":0,
		// "Index":<20 digits>,"Session":""},"Node":null,"Service":null,
		// "Check":null} and a comma). Conditional deletes (two Consul ops)
		// and the fence are checked on the exact encoding in Apply.
		OpOverhead:   160,
		Base64Values: true,
	}
}

// resolveToken applies the token precedence: Token, TokenFile, environment.
// Check reads what New reads before it connects (the ACL token file, the
// TLS files) and reports what New would refuse, without contacting the
// server. Its errors quote no secret.
func (cfg Config) Check() error {
	if _, err := resolveToken(cfg); err != nil {
		return err
	}
	_, err := cfg.TLS.Config()
	return err
}

func resolveToken(cfg Config) (string, error) {
	if cfg.Token != "" {
		return cfg.Token, nil
	}
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return "", fmt.Errorf("read ACL token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("ACL token file %s is empty", cfg.TokenFile)
		}
		return tok, nil
	}
	return os.Getenv(tokenEnv), nil
}

func newTransport(cfg Config) (*http.Transport, error) {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   cfg.RequestTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout: cfg.RequestTimeout,
		// Every watch and lock holds a connection in a blocking query.
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	tc, err := cfg.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("TLS setup: %w", err)
	}
	if tc != nil && tc.ServerName == "" {
		tc.ServerName = addressHost(cfg.Address)
	}
	t.TLSClientConfig = tc
	return t, nil
}

// addressHost is the host of a host[:port] address, without brackets.
func addressHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
}

// checkReachable asks the agent for the Raft leader.
func (s *Store) checkReachable(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	leader, err := s.client.Status().LeaderWithQueryOptions(s.query(rctx))
	if err != nil {
		return fmt.Errorf("%s: unreachable: get /v1/status/leader: %w", s.endpoint, err)
	}
	if leader == "" {
		s.log.Warn("consul reachable but has no leader yet; writes and consistent reads fail until it has one")
	}
	return nil
}

// Limits returns the sizes this Store accepts.
func (s *Store) Limits() kvstore.Limits { return s.limits }

// query returns QueryOptions carrying ctx and the token.
func (s *Store) query(ctx context.Context) *api.QueryOptions {
	q := &api.QueryOptions{Token: s.token, Datacenter: s.dc}
	return q.WithContext(ctx)
}

// write returns WriteOptions carrying ctx and the token.
func (s *Store) write(ctx context.Context) *api.WriteOptions {
	w := &api.WriteOptions{Token: s.token, Datacenter: s.dc}
	return w.WithContext(ctx)
}

// opContext derives the context of one request from ctx: cancelled by
// Close, and bounded by the request timeout plus extra (a blocking query's
// wait) unless ctx has an earlier deadline.
func (s *Store) opContext(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	tctx, cancel := context.WithTimeout(ctx, s.timeout+extra)
	stop := context.AfterFunc(s.ctx, cancel)
	return tctx, func() { stop(); cancel() }
}

// begin fails with ErrClosed once the Store is closed.
func (s *Store) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return kvstore.ErrClosed
	}
	return nil
}

// fail wraps err of operation op, replacing a cancellation caused by Close
// with ErrClosed.
func (s *Store) fail(op string, err error) error {
	if s.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = kvstore.ErrClosed
	}
	return fmt.Errorf("%s: %s: %w", s.endpoint, op, err)
}

// Get returns the entry at key. Reads are consistent (checked with the
// leader) unless kvstore.Stale is given.
func (s *Store) Get(ctx context.Context, key string, opts ...kvstore.ReadOption) (kvstore.KV, error) {
	if err := kvstore.ValidateKey(key); err != nil {
		return kvstore.KV{}, err
	}
	if err := s.begin(); err != nil {
		return kvstore.KV{}, s.fail(fmt.Sprintf("get %q", key), err)
	}
	rctx, cancel := s.opContext(ctx, 0)
	defer cancel()
	pair, _, err := s.client.KV().Get(key, s.readOptions(rctx, opts))
	if err != nil {
		return kvstore.KV{}, s.fail(fmt.Sprintf("get %q", key), err)
	}
	if pair == nil {
		return kvstore.KV{}, s.fail(fmt.Sprintf("get %q", key), kvstore.ErrNotFound)
	}
	return toKV(pair), nil
}

// List returns the entries under prefix sorted by key, and the index the
// listing reflects.
func (s *Store) List(ctx context.Context, prefix string, opts ...kvstore.ReadOption) (kvstore.List, error) {
	if err := kvstore.ValidatePrefix(prefix); err != nil {
		return kvstore.List{}, err
	}
	if err := s.begin(); err != nil {
		return kvstore.List{}, s.fail(fmt.Sprintf("list %q", prefix), err)
	}
	rctx, cancel := s.opContext(ctx, 0)
	defer cancel()
	pairs, meta, err := s.client.KV().List(prefix, s.readOptions(rctx, opts))
	if err != nil {
		return kvstore.List{}, s.fail(fmt.Sprintf("list %q", prefix), err)
	}
	return kvstore.List{KVs: toKVs(pairs), Revision: int64(normIndex(meta.LastIndex))}, nil
}

func (s *Store) readOptions(ctx context.Context, opts []kvstore.ReadOption) *api.QueryOptions {
	q := s.query(ctx)
	if kvstore.IsStale(opts) {
		q.AllowStale = true
	} else {
		q.RequireConsistent = true
	}
	return q
}

func toKV(p *api.KVPair) kvstore.KV {
	return kvstore.KV{Key: p.Key, Value: p.Value, Revision: int64(p.ModifyIndex)}
}

func toKVs(pairs api.KVPairs) []kvstore.KV {
	kvs := make([]kvstore.KV, 0, len(pairs))
	for _, p := range pairs {
		kvs = append(kvs, toKV(p))
	}
	slices.SortFunc(kvs, func(a, b kvstore.KV) int { return strings.Compare(a.Key, b.Key) })
	return kvs
}

// normIndex treats index 0 as 1, as Consul's blocking query guidance says:
// 0 would make the next blocking query return at once.
func normIndex(i uint64) uint64 { return max(i, 1) }

// Close stops every watch (closing its channel) and lock goroutine, releases
// held locks as far as the agent answers within the request timeout, and
// waits for all of it. Later calls of other methods fail with ErrClosed.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		locks := make([]*lock, 0, len(s.locks))
		for l := range s.locks {
			locks = append(locks, l)
		}
		s.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		var wg sync.WaitGroup
		for _, l := range locks {
			wg.Go(func() { _ = l.release(ctx) })
		}
		wg.Wait()
		cancel()

		s.cancel()
		s.wg.Wait()
		s.transport.CloseIdleConnections()
	})
	return nil
}

// track registers n goroutines with the Store, failing once it is closed.
func (s *Store) track(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return kvstore.ErrClosed
	}
	s.wg.Add(n)
	return nil
}
