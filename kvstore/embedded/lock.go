package embedded

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// lock is a held lock: the key's record carries its lease id, and the
// token is the key's create revision.
type lock struct {
	s     *Store
	key   string
	id    int64
	token int64
	done  chan struct{}
	once  sync.Once
}

func (l *lock) Key() string           { return l.key }
func (l *lock) Token() int64          { return l.token }
func (l *lock) Done() <-chan struct{} { return l.done }

// lost closes Done once.
func (l *lock) lost() { l.once.Do(func() { close(l.done) }) }

func (l *lock) isLost() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// holds reports whether the lock still holds its key in b.
func (l *lock) holds(b *bolt.Bucket) bool {
	if l.isLost() {
		return false
	}
	v := b.Get([]byte(l.key))
	if v == nil {
		return false
	}
	r, err := decodeRecord(v)
	return err == nil && r.lease == l.id && r.createRev == l.token
}

// Release implements kvstore.Lock.
func (l *lock) Release(context.Context) error {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.isLost() || s.closed {
		l.lost()
		return nil
	}
	_, err := s.commit(l, []kvstore.Op{kvstore.DeleteOp(l.key)})
	l.lost()
	delete(s.locks, l.id)
	if err != nil && !isFenced(err) {
		return fmt.Errorf("release %q: %w", l.key, err)
	}
	return nil
}

func isFenced(err error) bool { return err != nil && errors.Is(err, kvstore.ErrFenced) }

// Lock implements kvstore.Store. It waits for the key to be free, then
// creates it bound to a new lease.
func (s *Store) Lock(ctx context.Context, key string, opts kvstore.LockOptions) (kvstore.Lock, error) {
	if err := kvstore.ValidateKey(key); err != nil {
		return nil, err
	}
	if len(opts.Value) > s.Limits().MaxValueBytes {
		return nil, fmt.Errorf("lock %q: %w", key, kvstore.ErrValueTooLarge)
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, fmt.Errorf("lock %q: %w", key, kvstore.ErrClosed)
		}
		l, err := s.tryLock(key, opts.Value)
		changed := s.changed
		s.mu.Unlock()
		if err != nil || l != nil {
			return l, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %q: %w", key, ctx.Err())
		case <-s.closing:
			return nil, fmt.Errorf("lock %q: %w", key, kvstore.ErrClosed)
		}
	}
}

// tryLock creates key bound to a new lease if it does not exist; it
// returns nil, nil if it does. s.mu must be held.
func (s *Store) tryLock(key string, value []byte) (*lock, error) {
	s.nextLease++
	rev := s.rev + 1
	l := &lock{s: s, key: key, id: s.nextLease, token: rev, done: make(chan struct{})}
	taken := false
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV)
		if b.Get([]byte(key)) != nil {
			taken = true
			return nil
		}
		r := record{createRev: rev, modRev: rev, lease: l.id, value: value}
		if err := b.Put([]byte(key), r.encode()); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyRev, encodeRev(rev))
	})
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", key, err)
	}
	if taken {
		return nil, nil
	}
	s.rev = rev
	s.locks[l.id] = l
	kv := kvstore.KV{Key: key, Value: append([]byte{}, value...), Revision: rev}
	s.record([]kvstore.Event{{Type: kvstore.EventPut, KV: kv, Revision: rev}})
	return l, nil
}

// BreakLock implements kvstore.LockBreaker: it deletes key if a lease holds
// it, which ends that lock.
func (s *Store) BreakLock(ctx context.Context, key string) error {
	if err := kvstore.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("break lock %q: %w", key, kvstore.ErrClosed)
	}
	for _, l := range s.locks {
		if l.key == key {
			if _, err := s.commit(nil, []kvstore.Op{kvstore.DeleteOp(key)}); err != nil {
				return fmt.Errorf("break lock %q: %w", key, err)
			}
			return nil
		}
	}
	return nil
}

// Expires implements kvstore.Lock: an embedded lease lives as long as its
// process, so it has no expiry.
func (l *lock) Expires() time.Time { return time.Time{} }

// Update implements kvstore.Lock.
func (l *lock) Update(ctx context.Context, value []byte) (int64, error) {
	if len(value) > l.s.Limits().MaxValueBytes {
		return 0, fmt.Errorf("update lock %q: %w", l.key, kvstore.ErrValueTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("update lock %q: %w", l.key, kvstore.ErrFenced)
	}
	rev := s.rev + 1
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV)
		if !l.holds(b) {
			return fmt.Errorf("update lock %q: %w", l.key, kvstore.ErrFenced)
		}
		r := record{createRev: l.token, modRev: rev, lease: l.id, value: value}
		if err := b.Put([]byte(l.key), r.encode()); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyRev, encodeRev(rev))
	})
	if err != nil {
		return 0, err
	}
	s.rev = rev
	kv := kvstore.KV{Key: l.key, Value: append([]byte{}, value...), Revision: rev}
	s.record([]kvstore.Event{{Type: kvstore.EventPut, KV: kv, Revision: rev}})
	return rev, nil
}
