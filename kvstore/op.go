package kvstore

import (
	"context"
	"fmt"
)

// OpKind is what an Op does.
type OpKind uint8

const (
	// OpPut writes Op.Value at Op.Key.
	OpPut OpKind = iota + 1
	// OpDelete deletes Op.Key; deleting a missing key is not an error
	// unless the op is conditional.
	OpDelete
	// OpCheck writes nothing: it is a condition on Op.Key's revision.
	OpCheck
)

func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpCheck:
		return "check"
	}
	return "unknown"
}

// Op is one operation of a batch given to Store.Apply. Build ops with Put,
// PutIf, Delete, DeleteIf and Check.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte
	// Conditional makes the op apply only if Key's current revision equals
	// Revision; Revision 0 means the key must not exist.
	Conditional bool
	Revision    int64
}

// PutOp writes value at key unconditionally.
func PutOp(key string, value []byte) Op { return Op{Kind: OpPut, Key: key, Value: value} }

// PutIfOp writes value at key only if the key's revision is rev (0: the key
// must not exist).
func PutIfOp(key string, value []byte, rev int64) Op {
	return Op{Kind: OpPut, Key: key, Value: value, Conditional: true, Revision: rev}
}

// DeleteOp deletes key unconditionally.
func DeleteOp(key string) Op { return Op{Kind: OpDelete, Key: key} }

// DeleteIfOp deletes key only if its revision is rev.
func DeleteIfOp(key string, rev int64) Op {
	return Op{Kind: OpDelete, Key: key, Conditional: true, Revision: rev}
}

// CheckOp is a condition only: key's revision must be rev (0: must not exist).
func CheckOp(key string, rev int64) Op {
	return Op{Kind: OpCheck, Key: key, Conditional: true, Revision: rev}
}

// Put writes value at key and returns the new revision.
func Put(ctx context.Context, s Store, key string, value []byte) (int64, error) {
	return s.Apply(ctx, nil, PutOp(key, value))
}

// CompareAndPut writes value at key only if the key's revision is rev (0:
// the key must not exist); otherwise it returns an error wrapping
// ErrConflict.
func CompareAndPut(ctx context.Context, s Store, key string, value []byte, rev int64) (int64, error) {
	return s.Apply(ctx, nil, PutIfOp(key, value, rev))
}

// Delete deletes key; a missing key is not an error.
func Delete(ctx context.Context, s Store, key string) error {
	_, err := s.Apply(ctx, nil, DeleteOp(key))
	return err
}

// CompareAndDelete deletes key only if its revision is rev; otherwise it
// returns an error wrapping ErrConflict.
func CompareAndDelete(ctx context.Context, s Store, key string, rev int64) error {
	_, err := s.Apply(ctx, nil, DeleteIfOp(key, rev))
	return err
}

// Limits are the sizes a backend accepts. Store.Apply checks them before
// sending anything, so an oversized write fails with a clear error instead
// of a server-side rejection.
type Limits struct {
	// MaxKeyBytes is the longest key.
	MaxKeyBytes int
	// MaxValueBytes is the largest value of one Op.
	MaxValueBytes int
	// MaxTxnOps is the most operations in one Apply.
	MaxTxnOps int
	// MaxTxnBytes bounds the encoded size of one Apply, as TxnBytes counts it.
	MaxTxnBytes int
	// OpOverhead is the encoded size of an op besides its key and value.
	OpOverhead int
	// Base64Values says values travel base64-encoded (Consul), which
	// TxnBytes counts as 4/3 of their size.
	Base64Values bool
	// Backend names the backend in error messages.
	Backend string
}

// MaxKeyBytes is the longest key any backend accepts.
const MaxKeyBytes = 512

// TxnBytes is the encoded size of ops as the backend will send them.
func (l Limits) TxnBytes(ops []Op) int {
	n := 0
	for _, op := range ops {
		v := len(op.Value)
		if l.Base64Values {
			v = (v + 2) / 3 * 4
		}
		n += len(op.Key) + v + l.OpOverhead
	}
	return n
}

// CheckOps validates a batch against the limits: keys, kinds, value sizes,
// number of operations and encoded size. Backends call it first in Apply.
func (l Limits) CheckOps(ops []Op) error {
	if len(ops) == 0 {
		return fmt.Errorf("%w: empty batch", ErrTxnTooLarge)
	}
	if len(ops) > l.MaxTxnOps {
		return fmt.Errorf("%w: %d operations, %s accepts at most %d in one transaction; split the batch",
			ErrTxnTooLarge, len(ops), l.Backend, l.MaxTxnOps)
	}
	written := make(map[string]bool, len(ops))
	for _, op := range ops {
		if err := ValidateKey(op.Key); err != nil {
			return err
		}
		if op.Kind == OpPut || op.Kind == OpDelete {
			if written[op.Key] {
				return fmt.Errorf("kvstore: %q is written twice in one batch; merge the operations", op.Key)
			}
			written[op.Key] = true
		}
		switch op.Kind {
		case OpPut, OpDelete, OpCheck:
		default:
			return fmt.Errorf("kvstore: op on %q: unknown kind %d", op.Key, op.Kind)
		}
		if op.Kind == OpCheck && !op.Conditional {
			return fmt.Errorf("kvstore: check of %q is not conditional; build it with CheckOp", op.Key)
		}
		if op.Kind != OpPut && len(op.Value) > 0 {
			return fmt.Errorf("kvstore: %s of %q carries a value", op.Kind, op.Key)
		}
		if op.Conditional && op.Revision < 0 {
			return fmt.Errorf("kvstore: %s of %q: negative revision %d", op.Kind, op.Key, op.Revision)
		}
		if len(op.Value) > l.MaxValueBytes {
			return fmt.Errorf("%w: %d bytes for %q, %s accepts at most %d",
				ErrValueTooLarge, len(op.Value), op.Key, l.Backend, l.MaxValueBytes)
		}
	}
	if n := l.TxnBytes(ops); n > l.MaxTxnBytes {
		return fmt.Errorf("%w: %d bytes encoded, %s accepts at most %d in one transaction; split the batch",
			ErrTxnTooLarge, n, l.Backend, l.MaxTxnBytes)
	}
	return nil
}
