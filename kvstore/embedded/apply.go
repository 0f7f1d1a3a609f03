package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// record is the stored form of an entry: a format byte, the create and mod
// revisions, the lease (0: none) and the value.
type record struct {
	createRev, modRev, lease int64
	value                    []byte
}

const (
	recordFormat = 1
	recordHeader = 1 + 3*8
)

var (
	errCorrupt     = errors.New("corrupt record")
	errCorruptFile = errors.New("state file is damaged")
)

func (r record) encode() []byte {
	b := make([]byte, recordHeader+len(r.value))
	b[0] = recordFormat
	binary.BigEndian.PutUint64(b[1:], uint64(r.createRev))
	binary.BigEndian.PutUint64(b[9:], uint64(r.modRev))
	binary.BigEndian.PutUint64(b[17:], uint64(r.lease))
	copy(b[recordHeader:], r.value)
	return b
}

// decodeRecord parses a stored record; the value is copied out of bbolt's
// memory, which is only valid inside its transaction.
func decodeRecord(b []byte) (record, error) {
	if len(b) < recordHeader || b[0] != recordFormat {
		return record{}, fmt.Errorf("%w: %d bytes, format %d", errCorrupt, len(b), firstByte(b))
	}
	return record{
		createRev: int64(binary.BigEndian.Uint64(b[1:])),
		modRev:    int64(binary.BigEndian.Uint64(b[9:])),
		lease:     int64(binary.BigEndian.Uint64(b[17:])),
		value:     append([]byte{}, b[recordHeader:]...),
	}, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

func encodeRev(rev int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(rev)) }

func decodeRev(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: revision of %d bytes", errCorrupt, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// Apply implements kvstore.Store.
func (s *Store) Apply(ctx context.Context, fence kvstore.Lock, ops ...kvstore.Op) (int64, error) {
	if err := s.Limits().CheckOps(ops); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var l *lock
	if fence != nil {
		var ok bool
		if l, ok = fence.(*lock); !ok || l.s != s {
			select {
			case <-fence.Done():
				return 0, fmt.Errorf("apply fenced by %q: %w", fence.Key(), kvstore.ErrFenced)
			default:
			}
			return 0, fmt.Errorf("embedded store: apply fenced by %q: the lock was not taken from this store", fence.Key())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if l != nil {
			return 0, fmt.Errorf("apply fenced by %q: %w", l.key, kvstore.ErrFenced)
		}
		return 0, fmt.Errorf("apply: %w", kvstore.ErrClosed)
	}
	return s.commit(l, ops)
}

// commit applies ops in one bbolt transaction, then records the changes in
// the history, wakes watchers and ends the leases of lock keys that were
// overwritten or deleted. s.mu must be held.
func (s *Store) commit(fence *lock, ops []kvstore.Op) (int64, error) {
	rev := s.rev + 1
	var events []kvstore.Event
	var ended []int64
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV)
		if fence != nil && !fence.holds(b) {
			return fmt.Errorf("apply fenced by %q: %w", fence.key, kvstore.ErrFenced)
		}
		if err := checkConditions(b, ops); err != nil {
			return err
		}
		events, ended = nil, nil
		for _, op := range ops {
			ev, lease, err := applyOp(b, op, rev)
			if err != nil {
				return err
			}
			if ev.Type != 0 {
				events = append(events, ev)
			}
			if lease != 0 {
				ended = append(ended, lease)
			}
		}
		if len(events) == 0 {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(keyRev, encodeRev(rev))
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ended {
		if l := s.locks[id]; l != nil {
			l.lost()
			delete(s.locks, id)
		}
	}
	if len(events) == 0 {
		return s.rev, nil
	}
	s.rev = rev
	s.record(events)
	return rev, nil
}

func checkConditions(b *bolt.Bucket, ops []kvstore.Op) error {
	for _, op := range ops {
		if !op.Conditional {
			continue
		}
		var cur int64
		if v := b.Get([]byte(op.Key)); v != nil {
			r, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%s %q: %w", op.Kind, op.Key, err)
			}
			cur = r.modRev
		}
		if cur != op.Revision {
			return fmt.Errorf("%s %q: at revision %d, expected %d: %w", op.Kind, op.Key, cur, op.Revision, kvstore.ErrConflict)
		}
	}
	return nil
}

// applyOp performs one op at rev. It returns the event it caused (zero
// Type when none) and the lease of a lock key it overwrote or deleted.
func applyOp(b *bolt.Bucket, op kvstore.Op, rev int64) (kvstore.Event, int64, error) {
	key := []byte(op.Key)
	var old record
	exists := false
	if v := b.Get(key); v != nil {
		var err error
		if old, err = decodeRecord(v); err != nil {
			// An unreadable record may still be overwritten or deleted:
			// that is how an operator repairs it.
			old, exists = record{}, true
		} else {
			exists = true
		}
	}
	switch op.Kind {
	case kvstore.OpPut:
		r := record{createRev: rev, modRev: rev, value: op.Value}
		if exists && old.createRev != 0 {
			r.createRev = old.createRev
		}
		if err := b.Put(key, r.encode()); err != nil {
			return kvstore.Event{}, 0, fmt.Errorf("put %q: %w", op.Key, err)
		}
		kv := kvstore.KV{Key: op.Key, Value: append([]byte{}, op.Value...), Revision: rev}
		return kvstore.Event{Type: kvstore.EventPut, KV: kv, Revision: rev}, old.lease, nil
	case kvstore.OpDelete:
		if !exists {
			return kvstore.Event{}, 0, nil
		}
		if err := b.Delete(key); err != nil {
			return kvstore.Event{}, 0, fmt.Errorf("delete %q: %w", op.Key, err)
		}
		kv := kvstore.KV{Key: op.Key, Revision: rev}
		return kvstore.Event{Type: kvstore.EventDelete, KV: kv, Revision: rev}, old.lease, nil
	}
	return kvstore.Event{}, 0, nil
}

// record appends events to the history, trims it at a revision boundary
// and wakes watchers. s.mu must be held.
func (s *Store) record(events []kvstore.Event) {
	s.history = append(s.history, events...)
	if over := len(s.history) - s.cfg.History; over > 0 {
		s.trimThrough(s.history[over-1].Revision)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// trimThrough drops the history up to and including rev. s.mu must be held.
func (s *Store) trimThrough(rev int64) {
	i := 0
	for i < len(s.history) && s.history[i].Revision <= rev {
		i++
	}
	s.history = append([]kvstore.Event(nil), s.history[i:]...)
	if rev > s.histStart {
		s.histStart = rev
	}
}

// Compact forgets the history up to rev, so that watches from an earlier
// revision start with a resync. It exists for tests and for operators who
// want to drop memory after a burst of writes.
func (s *Store) Compact(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trimThrough(min(rev, s.rev))
}
