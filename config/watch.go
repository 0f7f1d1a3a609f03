package config

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// WatchConfig configures a Watcher. Set Store (and Prefix) to follow the
// configuration in the store, or File to follow a file.
type WatchConfig struct {
	// Store holds the configuration under Prefix/config.
	Store kvstore.Store
	// Prefix is the key prefix. Empty means DefaultPrefix.
	Prefix string
	// File is a configuration file to follow instead of the store.
	File string
	// ReadFiles reads, at every change of File, the certificate, key and
	// CA files it names, as LoadOptions.ReadFiles does: a change naming
	// one that cannot be used is refused with the problem at its key.
	ReadFiles bool
	// PollInterval is how often File is read again. Zero means 2s. A
	// file is polled rather than watched with inotify so that a
	// Kubernetes ConfigMap, which is swapped through a symlink, is
	// followed too.
	PollInterval time.Duration
	// Initial is the snapshot the replica started with, as returned by
	// Load or LoadFile. The watcher follows changes after it.
	// Required.
	Initial *Snapshot
	// OnSnapshot is called from Run's goroutine with every new valid
	// snapshot, in order, before it becomes current: it applies the
	// snapshot (builds the routes). An error refuses the snapshot as an
	// invalid change is refused: it does not become current, it counts in
	// Failures and LastError, and the last good snapshot stays in force,
	// so OnSnapshot must leave the previous one in force when it fails.
	// It must not block for long. Nil accepts every valid snapshot.
	OnSnapshot func(*Snapshot) error
	// OnReject, when set, is called from Run's goroutine with each
	// rejected change's error, once for as long as the same error
	// persists (as it is logged and counted).
	OnReject func(error)
	// OnRecover, when set, is called from Run's goroutine when the source
	// is valid again after a rejected change and equals the configuration
	// in force (the change was undone), so nothing is applied.
	OnRecover func()
	// Logger receives reload successes and failures. Nil discards.
	Logger *slog.Logger
}

// WatchStats are the watcher's counters, for metrics.
type WatchStats struct {
	// Reloads counts snapshots delivered after the initial one.
	Reloads uint64
	// LastSuccess is when the configuration in force was taken: the
	// watcher's creation for the initial one, else the last successful
	// reload.
	LastSuccess time.Time
	// Failures counts rejected changes, whether invalid or refused by
	// OnSnapshot; an error that persists across several reads (a file
	// missing for a while) counts once.
	Failures uint64
	// LastError is the last rejection's error, nil after a successful
	// reload.
	LastError error
	// RestartPending lists keys changed since start whose change needs a
	// restart.
	RestartPending []string
}

// Watcher follows a configuration source and delivers a new immutable
// Snapshot for every valid change. An invalid change, or one OnSnapshot
// refuses, is logged with the offending keys and counted; the last good
// snapshot stays in force.
type Watcher struct {
	cfg WatchConfig
	log *slog.Logger

	mu      sync.Mutex
	current *Snapshot
	stats   WatchStats
}

// NewWatcher checks cfg and returns a Watcher; Run starts it.
func NewWatcher(cfg WatchConfig) (*Watcher, error) {
	if cfg.Initial == nil || cfg.Initial.Config == nil {
		return nil, errors.New("config watcher: Initial snapshot is required")
	}
	if (cfg.Store == nil) == (cfg.File == "") {
		return nil, errors.New("config watcher: set exactly one of Store and File")
	}
	if cfg.OnSnapshot == nil {
		cfg.OnSnapshot = func(*Snapshot) error { return nil }
	}
	cfg.Prefix = cmp.Or(cfg.Prefix, DefaultPrefix)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, 2*time.Second)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, log: log, current: cfg.Initial, stats: WatchStats{LastSuccess: time.Now()}}, nil
}

// Current returns the snapshot in force.
func (w *Watcher) Current() *Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Stats returns the watcher's counters.
func (w *Watcher) Stats() WatchStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.RestartPending = slices.Clone(s.RestartPending)
	return s
}

// Run follows the source until ctx is done, then returns nil.
func (w *Watcher) Run(ctx context.Context) error {
	if w.cfg.File != "" {
		return w.runFile(ctx)
	}
	return w.runStore(ctx)
}

func (w *Watcher) runStore(ctx context.Context) error {
	root := configRoot(w.cfg.Prefix)
	// From revision 0 the watch starts with the full state; a result equal
	// to the initial snapshot is not delivered again.
	ch, err := w.cfg.Store.Watch(ctx, root+"/", 0)
	if err != nil {
		return fmt.Errorf("watch %s: %w", root, err)
	}
	// Events only say that the live configuration may have changed. The
	// configuration itself is read with one listing, which every backend
	// answers at one revision: a transaction whose events arrive one by
	// one is never seen half applied.
	state := map[string]kvstore.KV{}
	backoff := retry.Backoff{What: "configuration read", Log: w.log}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var retryC <-chan time.Time
	dirty := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch %s: %w", root, kvstore.ErrClosed)
			}
			live := string(state[currentKey(w.cfg.Prefix)].Value)
			dirty = w.applyEvent(state, ev, live) || dirty
			if len(ch) > 0 {
				continue // apply what is already waiting first
			}
		case <-retryC:
			retryC = nil
		}
		if !dirty || retryC != nil {
			continue
		}
		list, err := w.cfg.Store.List(ctx, root+"/")
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff.Failed(err)
			timer.Reset(backoff.Next())
			retryC = timer.C
			continue
		}
		backoff.Succeeded()
		dirty = false
		snap, err := fromListing(w.cfg.Prefix, list.KVs, list.Revision)
		w.offer(snap, err, root)
	}
}

// applyEvent updates state and reports whether the change concerns the
// live configuration: the "current" key, or a key of the version it names
// before or after the change.
func (w *Watcher) applyEvent(state map[string]kvstore.KV, ev kvstore.Event, live string) bool {
	switch ev.Type {
	case kvstore.EventResync:
		clear(state)
		for _, kv := range ev.Snapshot {
			state[kv.Key] = kv
		}
		return true
	case kvstore.EventPut:
		state[ev.KV.Key] = ev.KV
	case kvstore.EventDelete:
		delete(state, ev.KV.Key)
	}
	now := string(state[currentKey(w.cfg.Prefix)].Value)
	v, inVersion := versionOf(w.cfg.Prefix, ev.KV.Key)
	return ev.KV.Key == currentKey(w.cfg.Prefix) || now != live || (inVersion && v == now)
}

func (w *Watcher) runFile(ctx context.Context) error {
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	var last [sha256.Size]byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		doc, err := readFile(w.cfg.File)
		if err != nil {
			// Whatever comes back next is read afresh, even the same
			// content, so that recovering clears the error.
			last = [sha256.Size]byte{}
			w.offer(nil, err, w.cfg.File)
			continue
		}
		sum := sha256.Sum256(doc)
		if sum == last {
			continue
		}
		last = sum
		cfg, err := ParseWith(w.cfg.File, doc, LoadOptions{ReadFiles: w.cfg.ReadFiles})
		var snap *Snapshot
		if err == nil {
			snap = &Snapshot{Config: cfg, Source: w.cfg.File}
		}
		w.offer(snap, err, w.cfg.File)
	}
}

// offer takes the outcome of reading the source: a valid snapshot that
// differs from the current one is applied with OnSnapshot and becomes
// current; an invalid one, or one OnSnapshot refuses, is rejected.
func (w *Watcher) offer(snap *Snapshot, err error, source string) {
	if err != nil {
		w.reject(err, source)
		return
	}
	w.mu.Lock()
	same := reflect.DeepEqual(snap.Config, w.current.Config)
	w.mu.Unlock()
	if same {
		if w.clearError() {
			w.log.Info("configuration valid again: the change was undone, the configuration in force stays", "source", snap.Source)
			if w.cfg.OnRecover != nil {
				w.cfg.OnRecover()
			}
		}
		return
	}
	// Only Run's goroutine changes current, so it cannot change while
	// OnSnapshot runs without the lock.
	snap.RestartRequired = restartKeys(w.cfg.Initial.Config, snap.Config)
	if err := w.cfg.OnSnapshot(snap); err != nil {
		w.reject(fmt.Errorf("configuration from %s refused: %w", snap.Source, err), source)
		return
	}
	w.mu.Lock()
	w.stats.LastError = nil
	newlyPending := !slices.Equal(snap.RestartRequired, w.stats.RestartPending)
	w.stats.RestartPending = snap.RestartRequired
	w.stats.Reloads++
	w.stats.LastSuccess = time.Now()
	w.current = snap
	w.mu.Unlock()
	if w.cfg.File != "" {
		w.log.Info("configuration reloaded", "source", snap.Source)
	} else {
		w.log.Info("configuration reloaded", "source", snap.Source, "revision", snap.Revision)
	}
	if newlyPending && len(snap.RestartRequired) > 0 {
		w.log.Warn("configuration changes that take effect only after a restart", "keys", snap.RestartRequired)
	}
}

// reject counts and logs a rejected change, once for as long as the same
// error persists; the last good snapshot stays.
func (w *Watcher) reject(err error, source string) {
	w.mu.Lock()
	repeated := w.stats.LastError != nil && w.stats.LastError.Error() == err.Error()
	w.stats.LastError = err
	if !repeated {
		w.stats.Failures++
	}
	w.mu.Unlock()
	if !repeated {
		w.log.Error("configuration change rejected; the last good configuration stays in force",
			"source", source, "error", err)
		if w.cfg.OnReject != nil {
			w.cfg.OnReject(err)
		}
	}
}

// clearError forgets the last rejected change's error and reports
// whether there was one.
func (w *Watcher) clearError() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := w.stats.LastError != nil
	w.stats.LastError = nil
	return had
}

// isRestartKey reports whether a change to key needs a restart: listeners,
// their TLS settings and certificate files, and loggers are built once at
// start.
func isRestartKey(key string) bool {
	first, _, _ := strings.Cut(key, "/")
	switch first {
	case "entry-points", "tls", "api", "metrics", "log", "access-log", "providers":
		return true
	case "acme":
		// The keyring is loaded once: every replica must hold the same keys.
		switch strings.TrimPrefix(key, "acme/") {
		case "encryption-key-file", "encryption-key-env", "insecure-plaintext-keys":
			return true
		}
	}
	return false
}

// restartKeys lists the keys that differ between the configuration the
// process started with and cfg and need a restart to take effect.
func restartKeys(started, cfg *Config) []string {
	var out []string
	if !reflect.DeepEqual(started.Store, cfg.Store) {
		out = append(out, "store")
	}
	a, errA := Encode(started)
	b, errB := Encode(cfg)
	if errA != nil || errB != nil {
		return out
	}
	old := map[string]string{}
	for _, e := range a {
		if isRestartKey(e.Key) {
			old[e.Key] = e.Value
		}
	}
	var keep []Entry
	for _, e := range b {
		if isRestartKey(e.Key) {
			keep = append(keep, e)
		}
	}
	for _, c := range diffEntries(old, keep) {
		out = append(out, c.Key)
	}
	return out
}
