package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// txn is a batch translated into Consul transaction operations.
type txn struct {
	ops api.TxnOps
	// origin maps each Consul op to the index of the kvstore.Op it came
	// from; -1 is the fence check.
	origin []int
	// puts says whether any op writes a value, whose result then carries
	// the commit index.
	puts bool
}

// Apply writes ops atomically in one Consul transaction. It returns the
// transaction's index, or 0 when the batch has no put (Consul reports no
// index for deletes and checks).
func (s *Store) Apply(ctx context.Context, fence kvstore.Lock, ops ...kvstore.Op) (int64, error) {
	if err := s.limits.CheckOps(ops); err != nil {
		return 0, fmt.Errorf("%s: apply: %w", s.endpoint, err)
	}
	what := describe(ops)
	if err := s.begin(); err != nil {
		return 0, s.fail("apply "+what, err)
	}
	var fl *lock
	if fence != nil {
		l, ok := fence.(*lock)
		if !ok {
			return 0, fmt.Errorf("%s: apply %s: fence is a %T, not a lock of a consul store", s.endpoint, what, fence)
		}
		if l.lost() {
			return 0, fmt.Errorf("%s: apply %s: lock %q: %w", s.endpoint, what, l.key, kvstore.ErrFenced)
		}
		fl = l
	}
	t := buildTxn(fl, ops)
	if err := s.checkTxnSize(t); err != nil {
		return 0, fmt.Errorf("%s: apply %s: %w", s.endpoint, what, err)
	}
	rctx, cancel := s.opContext(ctx, 0)
	defer cancel()
	// Consistent matters only for a batch of checks, which Consul answers
	// on its read path; batches with writes always go through Raft.
	q := s.query(rctx)
	q.RequireConsistent = true
	ok, resp, _, err := s.client.Txn().Txn(t.ops, q)
	if err != nil {
		return 0, s.fail("apply "+what, err)
	}
	if !ok {
		return 0, s.txnFailed(what, fl, ops, t, resp)
	}
	return commitIndex(t, resp), nil
}

// describe names a batch for errors: its only key, or how many ops it has.
func describe(ops []kvstore.Op) string {
	if len(ops) == 1 {
		return fmt.Sprintf("%s %q", ops[0].Kind, ops[0].Key)
	}
	return fmt.Sprintf("of %d ops", len(ops))
}

// buildTxn translates ops, preceded by the fence's session check.
//
// A conditional delete becomes a check-index and a delete: Consul's own
// delete-cas succeeds on a missing key, where kvstore wants a conflict.
func buildTxn(fence *lock, ops []kvstore.Op) txn {
	var t txn
	add := func(origin int, op *api.KVTxnOp) {
		t.ops = append(t.ops, &api.TxnOp{KV: op})
		t.origin = append(t.origin, origin)
	}
	if fence != nil {
		add(-1, &api.KVTxnOp{Verb: api.KVCheckSession, Key: fence.key, Session: fence.session})
	}
	for i, op := range ops {
		idx := uint64(op.Revision)
		switch {
		case op.Kind == kvstore.OpPut && !op.Conditional:
			add(i, &api.KVTxnOp{Verb: api.KVSet, Key: op.Key, Value: op.Value})
			t.puts = true
		case op.Kind == kvstore.OpPut:
			// CAS with index 0 is set-if-not-exists.
			add(i, &api.KVTxnOp{Verb: api.KVCAS, Key: op.Key, Value: op.Value, Index: idx})
			t.puts = true
		case op.Kind == kvstore.OpDelete && !op.Conditional:
			add(i, &api.KVTxnOp{Verb: api.KVDelete, Key: op.Key})
		case op.Kind == kvstore.OpDelete && idx == 0:
			// Must not exist: then there is nothing to delete.
			add(i, &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: op.Key})
		case op.Kind == kvstore.OpDelete:
			add(i, &api.KVTxnOp{Verb: api.KVCheckIndex, Key: op.Key, Index: idx})
			add(i, &api.KVTxnOp{Verb: api.KVDelete, Key: op.Key})
		case idx == 0: // OpCheck
			add(i, &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: op.Key})
		default:
			add(i, &api.KVTxnOp{Verb: api.KVCheckIndex, Key: op.Key, Index: idx})
		}
	}
	return t
}

// checkTxnSize checks what CheckOps cannot see: the ops a batch expands to
// (fence, conditional deletes) and the exact encoded body.
func (s *Store) checkTxnSize(t txn) error {
	if n := len(t.ops); n > consulMaxTxnOps {
		return fmt.Errorf("%w: the batch takes %d Consul transaction operations (a fence and each conditional delete add one), "+
			"Consul accepts at most %d; split the batch", kvstore.ErrTxnTooLarge, n, consulMaxTxnOps)
	}
	body, err := json.Marshal(t.ops)
	if err != nil {
		return fmt.Errorf("encode transaction: %w", err)
	}
	// The client library's encoder adds a newline.
	if n := len(body) + 1; n > s.limits.MaxTxnBytes {
		return fmt.Errorf("%w: %d bytes encoded, consul accepts at most %d in one transaction; split the batch",
			kvstore.ErrTxnTooLarge, n, s.limits.MaxTxnBytes)
	}
	return nil
}

// commitIndex is the index of the transaction: every result of a write
// carries it; results of checks carry older indexes.
func commitIndex(t txn, resp *api.TxnResponse) int64 {
	if !t.puts {
		return 0
	}
	var idx uint64
	for _, r := range resp.Results {
		if r != nil && r.KV != nil {
			idx = max(idx, r.KV.ModifyIndex)
		}
	}
	return int64(idx)
}

// txnFailed turns the errors of a rolled-back transaction into one error:
// ErrFenced if the fence check failed, whatever else failed too; ErrConflict
// for failed conditions; a plain error for anything else (ACLs).
func (s *Store) txnFailed(what string, fence *lock, ops []kvstore.Op, t txn, resp *api.TxnResponse) error {
	if resp == nil || len(resp.Errors) == 0 {
		return fmt.Errorf("%s: apply %s: transaction rolled back without an error", s.endpoint, what)
	}
	for _, e := range resp.Errors {
		if e.OpIndex >= 0 && e.OpIndex < len(t.origin) && t.origin[e.OpIndex] == -1 {
			return fmt.Errorf("%s: apply %s: lock %q: %w (consul: %s)", s.endpoint, what, fence.key, kvstore.ErrFenced, e.What)
		}
	}
	// A refusal other than a failed condition (a denied permission) is
	// reported alone: it is not a conflict that retrying with fresh
	// revisions would resolve.
	var conflicts, refusals []error
	for _, e := range resp.Errors {
		op := "" // a single op is named by what already
		if len(ops) > 1 && e.OpIndex >= 0 && e.OpIndex < len(t.origin) {
			o := ops[t.origin[e.OpIndex]]
			op = fmt.Sprintf("%s %q: ", o.Kind, o.Key)
		}
		if isConflict(e.What) {
			conflicts = append(conflicts, fmt.Errorf("%s%w (consul: %s)", op, kvstore.ErrConflict, e.What))
		} else {
			refusals = append(refusals, fmt.Errorf("%sconsul refused: %s", op, e.What))
		}
	}
	if len(refusals) > 0 {
		return fmt.Errorf("%s: apply %s: %w", s.endpoint, what, errors.Join(refusals...))
	}
	return fmt.Errorf("%s: apply %s: %w", s.endpoint, what, errors.Join(conflicts...))
}

// isConflict reports whether a Consul transaction error is a failed
// condition rather than, say, a denied permission.
func isConflict(what string) bool {
	for _, s := range []string{"index is stale", "doesn't exist", "\" exists", "modify index"} {
		if strings.Contains(what, s) {
			return true
		}
	}
	return false
}
