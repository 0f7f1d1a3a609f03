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
	// Pruned lists the version folders deleted (in a dry run: to delete):
	// the replaced version and any left behind by an interrupted run.
	Pruned []string
	// PruneError is set when deleting an old version failed after the new
	// one went live. The old folder is ignored by readers, and the next
	// publication deletes it.
	PruneError error
	// Applied reports whether anything was written.
	Applied bool
}

// Errors of Publish that callers branch on.
var (
	// ErrPublishConflict means "current" changed while Publish wrote,
	// which only happens when something else than storeconfig writes it.
	ErrPublishConflict = errors.New("the live configuration changed while publishing")
	// ErrLockTimeout means another publication held the lock for longer
	// than PublishOptions.LockTimeout.
	ErrLockTimeout = errors.New("another storeconfig holds the lock")
)

// Publish makes cfg the live configuration under the prefix: it writes a
// new version folder, switches <prefix>/config/current to it in one write,
// then deletes older versions. Nothing else under the prefix is touched:
// ACME state, the leader lock and the node registry live outside
// <prefix>/config. Every write is fenced by <prefix>/locks/storeconfig, so
// two runs never interleave. When the stored configuration already equals
// cfg nothing is written and the result has no changes.
//
// cfg must be valid; an invalid one yields an *Error and nothing is
// written. When writing fails the result still lists the changes, and the
// live configuration is the old one.
func Publish(ctx context.Context, s kvstore.Store, cfg *Config, opts PublishOptions) (*PublishResult, error) {
	prefix := cmp.Or(opts.Prefix, DefaultPrefix)
	if err := CheckPrefix(prefix); err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errors.New("publish: no configuration")
	}
	if probs := validate(cfg); len(probs) > 0 {
		return nil, locateKV(versionRoot(prefix, "vNEW"), probs)
	}
	entries, err := Encode(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkKeyLengths(prefix, entries); err != nil {
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
	res := &plan.res
	if opts.DryRun || (res.To == res.From && len(res.Pruned) == 0) {
		return res, nil
	}
	return res, plan.apply(ctx, s, lock)
}

// checkKeyLengths makes sure every key fits the stores' limit under any
// version name, before anything is locked or written.
func checkKeyLengths(prefix string, entries []Entry) error {
	longest := len(versionRoot(prefix, "v")) + 18 + 1 // "v" and up to 18 digits, "/"
	var probs []Problem
	for _, e := range entries {
		if n := longest + len(e.Key); n > kvstore.MaxKeyBytes {
			probs = append(probs, Problem{
				Where:   versionRoot(prefix, "vN") + "/" + e.Key,
				Message: fmt.Sprintf("the key would be up to %d bytes, more than the %d stores accept; shorten the names in it or the prefix", n, kvstore.MaxKeyBytes),
			})
		}
	}
	if len(probs) > 0 {
		return &Error{Source: "store " + configRoot(prefix), Problems: probs}
	}
	return nil
}

func takePublishLock(ctx context.Context, s kvstore.Store, prefix string, timeout time.Duration) (kvstore.Lock, error) {
	host, _ := os.Hostname()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lock, err := s.Lock(lctx, publishLockKey(prefix), kvstore.LockOptions{Value: []byte("storeconfig on " + host)})
	if err != nil {
		if ctx.Err() == nil && lctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s was not free within %s; wait for the other run or check that it is not stuck", ErrLockTimeout, publishLockKey(prefix), timeout)
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
	var maxN int64
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
		if rel, ok := strings.CutPrefix(kv.Key, live); ok && pl.res.From != "" && !isFolderKey(kv.Key) {
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
		return cmp.Compare(na, nb)
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
			out = append(out, Change{Kind: Changed, Key: e.Key, Old: ov, New: e.Value, Secret: e.Secret || hasPassword(ov)})
		}
	}
	for k, v := range old {
		if !seen[k] {
			out = append(out, Change{Kind: Removed, Key: k, Old: v, Secret: secretKey(k) || hasPassword(v)})
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
		case reflect.Map:
			if t.Elem().Kind() == reflect.String && sensitiveName(seg) {
				return true
			}
			t = t.Elem()
		case reflect.Slice:
			t = t.Elem()
		default:
			return false
		}
	}
	return false
}

// apply writes the plan: the new version, the switch, the pruning. A
// failure before the switch leaves the live configuration as it was; a
// failure to prune is recorded in the result, not returned.
func (pl *publishPlan) apply(ctx context.Context, s kvstore.Store, lock kvstore.Lock) error {
	res := &pl.res
	if res.To != res.From {
		root := versionRoot(pl.prefix, res.To)
		ops := make([]kvstore.Op, 0, len(pl.entries))
		for _, e := range pl.entries {
			ops = append(ops, kvstore.PutOp(root+"/"+e.Key, []byte(e.Value)))
		}
		if err := applyBatches(ctx, s, lock, ops); err != nil {
			return fmt.Errorf("write %s (the live configuration is unchanged): %w", root, err)
		}
		sw := kvstore.PutIfOp(currentKey(pl.prefix), []byte(res.To), pl.currentRev)
		if _, err := s.Apply(ctx, lock, sw); err != nil {
			if errors.Is(err, kvstore.ErrConflict) {
				err = fmt.Errorf("%w: %s was written by something other than storeconfig", ErrPublishConflict, currentKey(pl.prefix))
			}
			return fmt.Errorf("switch %s to %s (the live configuration is unchanged): %w", currentKey(pl.prefix), res.To, err)
		}
		res.Applied = true
	}
	candidates := res.Pruned
	res.Pruned = nil
	for _, v := range candidates {
		if err := deleteFolder(ctx, s, lock, versionRoot(pl.prefix, v)); err != nil {
			res.PruneError = fmt.Errorf("delete old version %s: %w", versionRoot(pl.prefix, v), err)
			break
		}
		res.Pruned = append(res.Pruned, v)
		res.Applied = true
	}
	return nil
}

func deleteFolder(ctx context.Context, s kvstore.Store, lock kvstore.Lock, root string) error {
	list, err := s.List(ctx, root+"/")
	if err != nil {
		return err
	}
	ops := make([]kvstore.Op, 0, len(list.KVs))
	for _, kv := range list.KVs {
		if !isFolderKey(kv.Key) { // cannot be deleted through kvstore; ignored by readers
			ops = append(ops, kvstore.DeleteOp(kv.Key))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return applyBatches(ctx, s, lock, ops)
}

// applyBatches applies ops in as few batches as the backend's limits
// allow, each fenced by lock. A batch the backend still finds too large
// (its encoding adds to what Limits counts) is halved and tried again.
func applyBatches(ctx context.Context, s kvstore.Store, lock kvstore.Lock, ops []kvstore.Op) error {
	lim := s.Limits()
	for len(ops) > 0 {
		n := min(len(ops), lim.MaxTxnOps)
		for n > 1 && lim.CheckOps(ops[:n]) != nil {
			n = max(1, n*3/4)
		}
		for {
			_, err := s.Apply(ctx, lock, ops[:n]...)
			if err == nil {
				break
			}
			if !errors.Is(err, kvstore.ErrTxnTooLarge) || n == 1 {
				return err
			}
			n /= 2
		}
		ops = ops[n:]
	}
	return nil
}
