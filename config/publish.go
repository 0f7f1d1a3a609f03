package config

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// PublishOptions configure Publish.
type PublishOptions struct {
	// Prefix is the key prefix. Empty means DefaultPrefix.
	Prefix string
	// DryRun computes the changes without taking the lock or writing.
	DryRun bool
	// LockTimeout bounds the wait for another storeconfig to finish.
	// Zero means one minute.
	LockTimeout time.Duration
}

// ChangeKind says how a key changes.
type ChangeKind byte

// Kinds of change, printed as the first character of a diff line.
const (
	Added   ChangeKind = '+'
	Removed ChangeKind = '-'
	Changed ChangeKind = '~'
)

// Change is one key that differs between the stored configuration and the
// published one. Keys are relative to the version folder.
type Change struct {
	Kind     ChangeKind
	Key      string
	Old, New string
	// Secret values are not shown.
	Secret bool
}

func (c Change) String() string {
	show := func(v string) string {
		if c.Secret {
			return "(hidden)"
		}
		return fmt.Sprintf("%q", v)
	}
	switch c.Kind {
	case Added:
		return fmt.Sprintf("+ %s = %s", c.Key, show(c.New))
	case Removed:
		return fmt.Sprintf("- %s = %s", c.Key, show(c.Old))
	}
	return fmt.Sprintf("~ %s = %s (was %s)", c.Key, show(c.New), show(c.Old))
}

// PublishResult reports what Publish did or, in a dry run, would do.
type PublishResult struct {
	// From is the version that was live before ("" when none was).
	From string
	// To is the version live afterwards; equal to From when nothing
	// changed.
	To string
	// Changes lists the differing keys, sorted.
	Changes []Change
	// Pruned lists the version folders deleted (or to delete): the
	// replaced version and any left behind by an interrupted run.
	Pruned []string
	// Applied reports whether anything was written.
	Applied bool
}

// ErrPublishConflict means "current" changed while Publish wrote, which
// only happens when something else than storeconfig writes it.
var ErrPublishConflict = errors.New("the live configuration changed while publishing")

// Publish makes cfg the live configuration under the prefix: it writes a
// new version folder, switches <prefix>/config/current to it in one write,
// then deletes older versions. Nothing else under the prefix is touched:
// ACME state, the leader lock and the node registry live outside
// <prefix>/config. Every write is fenced by <prefix>/locks/storeconfig, so
// two runs never interleave. When the stored configuration already equals
// cfg nothing is written and the result has no changes.
func Publish(ctx context.Context, s kvstore.Store, cfg *Config, opts PublishOptions) (*PublishResult, error) {
	prefix := cmp.Or(opts.Prefix, DefaultPrefix)
	if err := kvstore.ValidateKey(prefix); err != nil {
		return nil, fmt.Errorf("configuration prefix: %w", err)
	}
	if probs := validate(cfg); len(probs) > 0 {
		return nil, locateKV(versionRoot(prefix, "new"), probs)
	}
	entries, err := Encode(cfg)
	if err != nil {
		return nil, err
	}
	var lock kvstore.Lock
	if !opts.DryRun {
		if lock, err = takePublishLock(ctx, s, prefix, cmp.Or(opts.LockTimeout, time.Minute)); err != nil {
			return nil, err
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = lock.Release(rctx)
		}()
	}
	list, err := s.List(ctx, configRoot(prefix)+"/")
	if err != nil {
		return nil, fmt.Errorf("read the stored configuration: %w", err)
	}
	plan := planPublish(prefix, list.KVs, entries)
	if opts.DryRun || (len(plan.res.Changes) == 0 && len(plan.res.Pruned) == 0) {
		return &plan.res, nil
	}
	return plan.apply(ctx, s, lock)
}

func takePublishLock(ctx context.Context, s kvstore.Store, prefix string, timeout time.Duration) (kvstore.Lock, error) {
	host, _ := os.Hostname()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lock, err := s.Lock(lctx, publishLockKey(prefix), kvstore.LockOptions{Value: []byte("storeconfig on " + host)})
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("another storeconfig has held %s for %s; wait for it or check that it is not stuck: %w", publishLockKey(prefix), timeout, err)
		}
		return nil, fmt.Errorf("lock %s: %w", publishLockKey(prefix), err)
	}
	return lock, nil
}

type publishPlan struct {
	prefix     string
	res        PublishResult
	entries    []Entry
	currentRev int64 // revision of "current", 0 when absent
}

func planPublish(prefix string, kvs []kvstore.KV, entries []Entry) *publishPlan {
	pl := &publishPlan{prefix: prefix, entries: entries}
	old := map[string]string{}
	versions := map[string]bool{}
	maxN := 0
	for _, kv := range kvs {
		if kv.Key == currentKey(prefix) {
			pl.res.From, pl.currentRev = string(kv.Value), kv.Revision
		}
		if v, ok := versionOf(prefix, kv.Key); ok {
			versions[v] = true
			n, _ := versionNumber(v)
			maxN = max(maxN, n)
		}
	}
	live := versionRoot(prefix, pl.res.From) + "/"
	for _, kv := range kvs {
		if rel, ok := strings.CutPrefix(kv.Key, live); ok && pl.res.From != "" {
			old[rel] = string(kv.Value)
		}
	}
	pl.res.Changes = diffEntries(old, entries)
	pl.res.To = pl.res.From
	if len(pl.res.Changes) > 0 || !versions[pl.res.From] {
		pl.res.To = fmt.Sprintf("v%d", maxN+1)
		if pl.res.From != "" && versions[pl.res.From] {
			pl.res.Pruned = append(pl.res.Pruned, pl.res.From)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(versions)) {
		if v != pl.res.From && v != pl.res.To {
			pl.res.Pruned = append(pl.res.Pruned, v)
		}
	}
	pl.res.Pruned = pruneOrder(pl.res.Pruned)
	return pl
}

func pruneOrder(vs []string) []string {
	slices.SortFunc(vs, func(a, b string) int {
		na, _ := versionNumber(a)
		nb, _ := versionNumber(b)
		return na - nb
	})
	return slices.Compact(vs)
}

// diffEntries compares the stored keys with the new entries.
func diffEntries(old map[string]string, entries []Entry) []Change {
	var out []Change
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Key] = true
		ov, had := old[e.Key]
		switch {
		case !had:
			out = append(out, Change{Kind: Added, Key: e.Key, New: e.Value, Secret: e.Secret})
		case ov != e.Value:
			out = append(out, Change{Kind: Changed, Key: e.Key, Old: ov, New: e.Value, Secret: e.Secret})
		}
	}
	for k, v := range old {
		if !seen[k] {
			out = append(out, Change{Kind: Removed, Key: k, Old: v, Secret: secretKey(k)})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// secretKey reports whether a store key (relative to a version folder)
// holds a secret field's value.
func secretKey(rel string) bool {
	segs := strings.Split(rel, "/")
	t := configType
	for _, seg := range segs {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			i := slices.IndexFunc(fieldsOf(t), func(f fieldInfo) bool { return f.kv == seg })
			if i < 0 {
				return false
			}
			f := fieldsOf(t)[i]
			if f.secret {
				return true
			}
			t = t.Field(f.index).Type
		case reflect.Map, reflect.Slice:
			t = t.Elem()
		default:
			return false
		}
	}
	return false
}

// apply writes the plan: the new version, the switch, the pruning.
func (pl *publishPlan) apply(ctx context.Context, s kvstore.Store, lock kvstore.Lock) (*PublishResult, error) {
	res := &pl.res
	if res.To != res.From {
		root := versionRoot(pl.prefix, res.To)
		ops := make([]kvstore.Op, 0, len(pl.entries))
		for _, e := range pl.entries {
			ops = append(ops, kvstore.PutOp(root+"/"+e.Key, []byte(e.Value)))
		}
		if err := applyBatches(ctx, s, lock, ops); err != nil {
			return nil, fmt.Errorf("write %s (the live configuration is unchanged): %w", root, err)
		}
		sw := kvstore.PutIfOp(currentKey(pl.prefix), []byte(res.To), pl.currentRev)
		if _, err := s.Apply(ctx, lock, sw); err != nil {
			if errors.Is(err, kvstore.ErrConflict) {
				err = fmt.Errorf("%w: %s was written by something other than storeconfig", ErrPublishConflict, currentKey(pl.prefix))
			}
			return nil, fmt.Errorf("switch %s to %s (the live configuration is unchanged): %w", currentKey(pl.prefix), res.To, err)
		}
		res.Applied = true
	}
	for _, v := range res.Pruned {
		if err := deleteFolder(ctx, s, lock, versionRoot(pl.prefix, v)); err != nil {
			return res, fmt.Errorf("%s is live, but deleting the old version %s failed (it is ignored, and the next storeconfig deletes it): %w", res.To, v, err)
		}
		res.Applied = true
	}
	return res, nil
}

func deleteFolder(ctx context.Context, s kvstore.Store, lock kvstore.Lock, root string) error {
	list, err := s.List(ctx, root+"/")
	if err != nil {
		return err
	}
	ops := make([]kvstore.Op, 0, len(list.KVs))
	for _, kv := range list.KVs {
		ops = append(ops, kvstore.DeleteOp(kv.Key))
	}
	return applyBatches(ctx, s, lock, ops)
}

// applyBatches applies ops in as few batches as the backend's limits
// allow, each fenced by lock.
func applyBatches(ctx context.Context, s kvstore.Store, lock kvstore.Lock, ops []kvstore.Op) error {
	lim := s.Limits()
	for len(ops) > 0 {
		n := min(len(ops), lim.MaxTxnOps)
		for n > 1 && lim.CheckOps(ops[:n]) != nil {
			n = max(1, n*3/4)
		}
		if _, err := s.Apply(ctx, lock, ops[:n]...); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}
