package etcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Apply writes ops in one etcd transaction. Every conditional op becomes a
// comparison of its key's mod revision (or, for revision 0, of its create
// revision with 0: the key must not exist); a fence adds a comparison of
// the lock key's create revision with the lock's token. When a comparison
// fails, the else branch reads the lock key so that a lost lock is told
// apart from a conflict.
func (s *Store) Apply(ctx context.Context, fence kvstore.Lock, ops ...kvstore.Op) (int64, error) {
	if err := s.limits.CheckOps(ops); err != nil {
		return 0, fmt.Errorf("etcd apply at %s: %w", s.cfg.Endpoint, err)
	}
	key := ops[0].Key
	if s.closed.Load() {
		return 0, s.wrap(ctx, "apply", key, kvstore.ErrClosed)
	}
	l, err := s.fenceLock(fence)
	if err != nil {
		return 0, err
	}
	cmps, then := txnOps(ops)
	var els []clientv3.Op
	if l != nil {
		if l.isDone() {
			return 0, fmt.Errorf("etcd apply %q at %s: fenced by %q: %w", key, s.cfg.Endpoint, l.key, kvstore.ErrFenced)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.token))
		els = append(els, clientv3.OpGet(l.key, clientv3.WithKeysOnly()))
	}
	if err := s.checkRequest(ops, l, len(cmps)); err != nil {
		return 0, err
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return 0, s.wrap(ctx, "apply", key, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	if l != nil && !fenceHeld(resp, l.token) {
		// The store says the lock is gone before the watch on it does.
		l.lose("a fenced write found the lock key deleted or taken over")
		return 0, fmt.Errorf("etcd apply %q at %s: fenced by %q: %w", key, s.cfg.Endpoint, l.key, kvstore.ErrFenced)
	}
	return 0, s.conflict(ctx, ops)
}

// checkRequest checks what Limits.CheckOps does not count: the number of
// comparisons, which the fence adds to, and the size of the request with
// the comparisons, which repeat the keys of conditional ops.
func (s *Store) checkRequest(ops []kvstore.Op, fence *lock, ncmps int) error {
	if ncmps > s.limits.MaxTxnOps {
		return fmt.Errorf("etcd apply at %s: %w: %d conditions with the fence, etcd accepts at most %d; split the batch",
			s.cfg.Endpoint, kvstore.ErrTxnTooLarge, ncmps, s.limits.MaxTxnOps)
	}
	if n := requestBytes(s.limits, ops, fence); n > s.cfg.MaxRequestBytes {
		return fmt.Errorf("etcd apply at %s: %w: %d bytes encoded with the conditions, etcd accepts at most %d; split the batch",
			s.cfg.Endpoint, kvstore.ErrTxnTooLarge, n, s.cfg.MaxRequestBytes)
	}
	return nil
}

// requestBytes estimates, generously, the encoded size of the transaction
// Apply sends for ops.
func requestBytes(lim kvstore.Limits, ops []kvstore.Op, fence *lock) int {
	n := lim.TxnBytes(ops)
	for _, op := range ops {
		if op.Conditional {
			n += len(op.Key) + cmpOverhead
		}
	}
	if fence != nil {
		// A comparison and a read in the else branch.
		n += 2 * (len(fence.key) + cmpOverhead)
	}
	return n
}

// fenceLock returns the lock a fence is, or an error if it is not one of
// this backend's.
func (s *Store) fenceLock(fence kvstore.Lock) (*lock, error) {
	if fence == nil {
		return nil, nil
	}
	l, ok := fence.(*lock)
	if !ok || l == nil {
		return nil, fmt.Errorf("etcd apply at %s: fence is a %T, not a lock of an etcd store", s.cfg.Endpoint, fence)
	}
	return l, nil
}

// txnOps translates ops into the comparisons and writes of a transaction.
// (CheckOps has refused two writes to one key, which etcd refuses too.)
func txnOps(ops []kvstore.Op) (cmps []clientv3.Cmp, then []clientv3.Op) {
	for _, op := range ops {
		if op.Conditional {
			cmps = append(cmps, revisionIs(op.Key, op.Revision))
		}
		switch op.Kind {
		case kvstore.OpPut:
			then = append(then, clientv3.OpPut(op.Key, string(op.Value)))
		case kvstore.OpDelete:
			then = append(then, clientv3.OpDelete(op.Key))
		}
	}
	return cmps, then
}

// revisionIs is the condition that key is at rev, or absent for rev 0.
func revisionIs(key string, rev int64) clientv3.Cmp {
	if rev == 0 {
		return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	return clientv3.Compare(clientv3.ModRevision(key), "=", rev)
}

// fenceHeld reports whether the else branch of a failed fenced transaction
// found the lock key still created at token.
func fenceHeld(resp *clientv3.TxnResponse, token int64) bool {
	if len(resp.Responses) == 0 {
		return false
	}
	r := resp.Responses[0].GetResponseRange()
	return r != nil && len(r.Kvs) == 1 && r.Kvs[0].CreateRevision == token
}

// conflict builds the error for a failed transaction, naming a key whose
// revision differs. It reads the conditional keys again to find one; as
// revisions only grow, a key that differed still differs, except a key
// expected absent that was created and deleted since.
func (s *Store) conflict(ctx context.Context, ops []kvstore.Op) error {
	var conds []kvstore.Op
	var gets []clientv3.Op
	for _, op := range ops {
		if op.Conditional {
			conds = append(conds, op)
			gets = append(gets, clientv3.OpGet(op.Key, clientv3.WithKeysOnly()))
		}
	}
	generic := fmt.Errorf("etcd apply %q at %s: %w: a condition of the batch failed",
		ops[0].Key, s.cfg.Endpoint, kvstore.ErrConflict)
	if len(conds) == 1 {
		generic = fmt.Errorf("etcd apply %q at %s: %w: %q is not at revision %d",
			conds[0].Key, s.cfg.Endpoint, kvstore.ErrConflict, conds[0].Key, conds[0].Revision)
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).Then(gets...).Commit()
	if err != nil || len(resp.Responses) != len(conds) {
		return generic
	}
	for i, op := range conds {
		var cur int64
		if r := resp.Responses[i].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			cur = r.Kvs[0].ModRevision
		}
		if cur != op.Revision {
			return fmt.Errorf("etcd apply %q at %s: %w: %s", op.Key, s.cfg.Endpoint, kvstore.ErrConflict,
				describeMismatch(op, cur))
		}
	}
	return generic
}

func describeMismatch(op kvstore.Op, cur int64) string {
	switch {
	case op.Revision == 0:
		return fmt.Sprintf("%q exists (revision %d), expected absent", op.Key, cur)
	case cur == 0:
		return fmt.Sprintf("%q does not exist, expected revision %d", op.Key, op.Revision)
	}
	return fmt.Sprintf("%q is at revision %d, expected %d", op.Key, cur, op.Revision)
}
