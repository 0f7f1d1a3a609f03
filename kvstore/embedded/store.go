// Package embedded is the single-node kvstore backend tollgate uses by
// default: one bbolt file, endpoint "file:///path/state.db", with the same
// semantics as the Consul and etcd backends (revisions, compare-and-set,
// batches, watches, locks and fenced writes) within one process.
//
// Only one process can open a file at a time; a second one fails at Open
// rather than waiting. Leases live in the process that holds them: a lock
// ends when it is released or broken, when the Store is closed, or with the
// process, and a Store reopening a file deletes the lock keys a previous
// process left behind. The TTL of LockOptions is therefore not used.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

var (
	_ kvstore.Store       = (*Store)(nil)
	_ kvstore.LockBreaker = (*Store)(nil)
)

// Config configures Open.
type Config struct {
	// Path is the state file; it is created if missing. Required.
	Path string
	// Logger receives warnings. Nil discards them.
	Logger *slog.Logger
	// History is how many recent changes are kept in memory so that a
	// watch can resume from an earlier revision; one from before them gets
	// a resync. Zero means 10000.
	History int
	// LockTimeout is how long Open waits for another process to release
	// the file. Zero means 1 second.
	LockTimeout time.Duration
}

// ParseURL reads an endpoint of the form file:///abs/path/state.db or
// file:relative/path/state.db.
func ParseURL(u *url.URL) (Config, error) {
	if u.Scheme != "file" {
		return Config{}, fmt.Errorf("embedded store: endpoint %q: scheme must be file", u.Redacted())
	}
	if u.Host != "" && u.Host != "localhost" {
		return Config{}, fmt.Errorf("embedded store: endpoint %q: host %q given; use file:///absolute/path or file:relative/path", u.Redacted(), u.Host)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("embedded store: endpoint %q: only a path is allowed (no user, query or fragment)", u.Redacted())
	}
	path := u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" {
		return Config{}, fmt.Errorf("embedded store: endpoint %q has no path; use file:///var/lib/tollgate/state.db", u.Redacted())
	}
	return Config{Path: path}, nil
}

// Store is an embedded kvstore.Store. Create it with Open.
type Store struct {
	cfg Config
	log *slog.Logger
	db  *bolt.DB

	// mu serializes writes with the in-memory state below. bbolt allows
	// one writer at a time anyway; holding mu across a write transaction
	// keeps revisions, history and notifications in one order.
	mu        sync.Mutex
	closed    bool
	closing   chan struct{} // closed by Close
	changed   chan struct{} // closed and replaced after every commit
	rev       int64         // last committed revision
	history   []kvstore.Event
	histStart int64 // every change after histStart is in history
	nextLease int64
	locks     map[int64]*lock // by lease

	watchers sync.WaitGroup
}

var (
	bucketKV   = []byte("kv")
	bucketMeta = []byte("meta")
	keyRev     = []byte("revision")
)

// ErrLocked is returned by Open when another process (or another Store
// of this process) holds the file: one process at a time opens it.
var ErrLocked = errors.New("the file is locked by another process")

// Open opens (or creates) the state file; ErrLocked when another process
// holds it past Config.LockTimeout.
func Open(cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("embedded store: no path given")
	}
	if cfg.History <= 0 {
		cfg.History = 10000
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	db, err := openBolt(cfg)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("embedded store %s: %w (is another tollgate using it?)", cfg.Path, ErrLocked)
	}
	if err != nil && !errors.Is(err, errCorruptFile) && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist) {
		// bbolt's own findings: "invalid database", "file size too small".
		err = fmt.Errorf("%w (%v): restore the file from a backup, or move it aside to start empty", errCorruptFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", cfg.Path, err)
	}
	s := &Store{
		cfg:     cfg,
		log:     log,
		db:      db,
		closing: make(chan struct{}),
		changed: make(chan struct{}),
		locks:   map[int64]*lock{},
	}
	if err := guard(s.init); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded store %s: %w", cfg.Path, err)
	}
	return s, nil
}

// openBolt opens the file, turning a panic of bbolt's on a damaged file
// into an error.
func openBolt(cfg Config) (db *bolt.DB, err error) {
	err = guard(func() error {
		var err error
		db, err = bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: cfg.LockTimeout})
		return err
	})
	return db, err
}

// guard runs fn, returning a panic in it as an error: bbolt panics on some
// damaged files, and faults reading a file cut short (its memory map
// reaches past the end), and a damaged file must not crash-loop the
// replica. bbolt rolls back a transaction a panic leaves.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (%v): restore the file from a backup, or move it aside to start empty; "+
				"`bbolt check FILE` tells what is damaged", errCorruptFile, r)
		}
	}()
	return fn()
}

// init creates the buckets, loads the revision and deletes the lock keys
// of leases that died with a previous process.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		kv, err := tx.CreateBucketIfNotExists(bucketKV)
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyRev); v != nil {
			if s.rev, err = decodeRev(v); err != nil {
				return err
			}
		}
		var orphans [][]byte
		corrupt := 0
		err = kv.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(v)
			switch {
			case err != nil:
				// Kept: Get and List report it, and a write repairs it.
				corrupt++
			case r.lease != 0:
				orphans = append(orphans, append([]byte{}, k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if corrupt > 0 {
			s.log.Warn("state file holds unreadable records; reads of them fail until they are written again", "count", corrupt)
		}
		if len(orphans) > 0 {
			s.rev++
			for _, k := range orphans {
				if err := kv.Delete(k); err != nil {
					return err
				}
			}
			s.log.Info("removed lock keys left by a previous process", "count", len(orphans))
		}
		s.histStart = s.rev
		return meta.Put(keyRev, encodeRev(s.rev))
	})
}

// Limits match the etcd backend's defaults, so that data fitting one fits
// the other.
func (s *Store) Limits() kvstore.Limits {
	return kvstore.Limits{
		Backend:       "embedded store",
		MaxKeyBytes:   kvstore.MaxKeyBytes,
		MaxValueBytes: 1536*1024 - 4096,
		MaxTxnOps:     128,
		MaxTxnBytes:   1536 * 1024,
		OpOverhead:    64,
	}
}

// Get implements kvstore.Store. Every read is current: there is one node.
func (s *Store) Get(ctx context.Context, key string, _ ...kvstore.ReadOption) (kvstore.KV, error) {
	if err := kvstore.ValidateKey(key); err != nil {
		return kvstore.KV{}, err
	}
	if err := s.readable(ctx); err != nil {
		return kvstore.KV{}, fmt.Errorf("get %q: %w", key, err)
	}
	var out kvstore.KV
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v == nil {
			return kvstore.ErrNotFound
		}
		r, err := decodeRecord(v)
		if err != nil {
			return err
		}
		out = kvstore.KV{Key: key, Value: r.value, Revision: r.modRev}
		return nil
	})
	if err != nil {
		return kvstore.KV{}, fmt.Errorf("get %q: %w", key, err)
	}
	return out, nil
}

// List implements kvstore.Store.
func (s *Store) List(ctx context.Context, prefix string, _ ...kvstore.ReadOption) (kvstore.List, error) {
	if err := kvstore.ValidatePrefix(prefix); err != nil {
		return kvstore.List{}, err
	}
	if err := s.readable(ctx); err != nil {
		return kvstore.List{}, fmt.Errorf("list %q: %w", prefix, err)
	}
	var out kvstore.List
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = listTx(tx, prefix)
		return err
	})
	if err != nil {
		return kvstore.List{}, fmt.Errorf("list %q: %w", prefix, err)
	}
	return out, nil
}

// view runs a read transaction, guarded against a damaged file.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return guard(func() error { return s.db.View(fn) })
}

// update runs a write transaction, guarded against a damaged file.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	return guard(func() error { return s.db.Update(fn) })
}

// listTx lists prefix within tx, with the revision committed in tx.
func listTx(tx *bolt.Tx, prefix string) (kvstore.List, error) {
	rev, err := decodeRev(tx.Bucket(bucketMeta).Get(keyRev))
	if err != nil {
		return kvstore.List{}, err
	}
	out := kvstore.List{Revision: rev}
	c := tx.Bucket(bucketKV).Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
		r, err := decodeRecord(v)
		if err != nil {
			return kvstore.List{}, fmt.Errorf("record %q: %w", k, err)
		}
		out.KVs = append(out.KVs, kvstore.KV{Key: string(k), Value: r.value, Revision: r.modRev})
	}
	return out, nil
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}

func (s *Store) readable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return kvstore.ErrClosed
	}
	return nil
}

// Close releases held locks, ends watches and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var keys []string
	for _, l := range s.locks {
		keys = append(keys, l.key)
	}
	if len(keys) > 0 {
		ops := make([]kvstore.Op, len(keys))
		for i, k := range keys {
			ops[i] = kvstore.DeleteOp(k)
		}
		if _, err := s.commit(nil, ops); err != nil {
			s.log.Warn("release locks on close", "err", err)
		}
	}
	for id, l := range s.locks {
		l.lost()
		delete(s.locks, id)
	}
	s.mu.Unlock()
	close(s.closing)
	s.watchers.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("embedded store %s: close: %w", s.cfg.Path, err)
	}
	return nil
}
