// Package kvstore is the one key/value abstraction tollgate keeps all shared
// state in: certificates, ACME accounts, challenge answers, configuration and
// the leader lock. Backends live in subpackages (consul, etcd, embedded) and
// all pass the same conformance suite (kvstore/kvstoretest).
//
// Keys are slash-separated paths such as "acme/certs/example.com"; see
// ValidateKey. Every entry carries the store's revision at which it was last
// written: Consul's ModifyIndex, etcd's mod revision, or the embedded store's
// own counter. Revisions only grow within one store, so they order changes
// and serve as compare-and-set conditions.
package kvstore

import (
	"context"
	"errors"
	"time"
)

// Errors callers branch on with errors.Is. Backends wrap them with context
// (operation, key, endpoint).
var (
	// ErrNotFound means the key does not exist.
	ErrNotFound = errors.New("key not found")
	// ErrConflict means a condition of Apply did not hold: a key's revision
	// differed from the one given (or the key existed where 0 was given).
	// Nothing was written.
	ErrConflict = errors.New("revision conflict")
	// ErrFenced means a fenced write was refused because the lock it was
	// fenced by is no longer held. Nothing was written.
	ErrFenced = errors.New("lock no longer held")
	// ErrValueTooLarge means a value exceeds the backend's MaxValueBytes.
	ErrValueTooLarge = errors.New("value too large")
	// ErrTxnTooLarge means a batch exceeds the backend's MaxTxnOps or
	// MaxTxnBytes.
	ErrTxnTooLarge = errors.New("transaction too large")
	// ErrInvalidKey means a key or prefix failed ValidateKey or ValidatePrefix.
	ErrInvalidKey = errors.New("invalid key")
	// ErrClosed means the Store was closed.
	ErrClosed = errors.New("store closed")
)

// Store is a key/value store shared by all replicas of a cluster.
//
// A Store is safe for concurrent use. Every blocking method honours ctx: it
// returns ctx.Err() (possibly wrapped) once ctx is done, and a backend bounds
// each request to an unreachable server by its own dial or request timeout.
// Errors are wrapped with the operation and, where there is one, the key.
//
// Reads are linearizable unless the Stale option is given. Writes go through
// Apply; the package functions Put, Delete, CompareAndPut and
// CompareAndDelete are shorthands for one-operation batches.
type Store interface {
	// Get returns the entry at key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string, opts ...ReadOption) (KV, error)

	// List returns every entry whose key starts with prefix, sorted by key,
	// and the store revision the listing reflects. An empty prefix lists
	// everything. A prefix names whole segments only when it ends in "/":
	// "certs" also matches "certsX", "certs/" does not.
	List(ctx context.Context, prefix string, opts ...ReadOption) (List, error)

	// Apply writes ops atomically: either every operation is applied or,
	// when a condition fails, none is and the error wraps ErrConflict.
	//
	// When fence is not nil the batch is applied only while fence still
	// holds its key in the store; otherwise nothing is written and the error
	// wraps ErrFenced. fence must come from this Store's Lock.
	//
	// Putting the value a key already holds may change nothing: Consul
	// then keeps the key's revision and no watch sees an event.
	//
	// The batch is checked against Limits before anything is sent. Apply
	// returns the revision at which the batch was committed, or 0 when the
	// backend does not report one (Consul, for a batch of deletes only).
	Apply(ctx context.Context, fence Lock, ops ...Op) (int64, error)

	// Watch streams the changes under prefix that come after fromRevision,
	// in revision order. With fromRevision 0 the first event is a Resync
	// holding the current state.
	//
	// The channel is closed only when ctx is done or the Store is closed: a
	// watch never silently stops. While the server is unreachable the
	// watch retries with backoff; when it cannot resume exactly where it
	// left off (etcd compaction, Consul's index going backwards after a
	// restore, the embedded store's history being trimmed) it sends a
	// Resync holding the full current state.
	//
	// The guarantee to consumers: every change after fromRevision is
	// delivered, as its own event, folded into a later event for the same
	// key, or reflected in a Resync. Consul reports the state under a prefix
	// rather than each change, so a key changed twice between two of its
	// responses yields one event. A Resync may carry a lower revision than
	// the events before it, when the store's revision went backwards (a
	// Consul snapshot restore or tombstone reaping, an etcd restore):
	// consumers take its revision as their new position.
	Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error)

	// Lock blocks until it holds key, bound to a lease of opts.TTL that it
	// keeps alive, or until ctx is done. The key holds opts.Value while
	// locked. Two holders never hold the same key at once.
	Lock(ctx context.Context, key string, opts LockOptions) (Lock, error)

	// Limits returns the sizes this backend accepts.
	Limits() Limits

	// Close releases the Store's resources. Watches close their channels;
	// held locks are released as far as the server can still be reached and
	// their Done channels close.
	Close() error
}

// KV is one stored entry.
type KV struct {
	Key   string
	Value []byte
	// Revision is the store revision of the entry's last write; for a
	// delete event, the revision of the delete (0 when unknown).
	Revision int64
}

// List is the result of Store.List.
type List struct {
	KVs []KV
	// Revision is the store revision the listing reflects: a Watch from it
	// sees every later change.
	Revision int64
}

// EventType says what an Event reports.
type EventType uint8

const (
	// EventPut reports that Event.KV was written.
	EventPut EventType = iota + 1
	// EventDelete reports that Event.KV.Key was deleted.
	EventDelete
	// EventResync replaces the watcher's whole view: Event.Snapshot is the
	// complete current state under the watched prefix.
	EventResync
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	case EventResync:
		return "resync"
	}
	return "unknown"
}

// Event is one item of a Watch stream.
type Event struct {
	Type EventType
	// KV is the entry put or deleted (Value is nil for a delete).
	KV KV
	// Snapshot is the full state under the prefix, for EventResync.
	Snapshot []KV
	// Revision is the store revision this event brings the watcher to.
	Revision int64
}

// ReadOption changes how a read is served.
type ReadOption uint8

// Stale lets any server answer a read from its local state, which may lag
// behind the latest write. Consul keeps answering stale reads while it has
// no leader; etcd serves them serializably.
const Stale ReadOption = 1

// IsStale reports whether opts ask for a stale read. Backends use it.
func IsStale(opts []ReadOption) bool {
	for _, o := range opts {
		if o == Stale {
			return true
		}
	}
	return false
}

// LockOptions configure Store.Lock.
type LockOptions struct {
	// TTL is the lease's time to live: how long the store keeps the lock
	// after its holder stops renewing it (a crash, a partition). Zero means
	// 15 seconds; backends round it up to their minimum (Consul: 10s).
	TTL time.Duration
	// Value is stored at the lock key while it is held, for example the
	// holder's node name. It may be nil.
	Value []byte
}

// DefaultLockTTL is the TTL of a lock whose LockOptions.TTL is zero.
const DefaultLockTTL = 15 * time.Second

// Lock is a held lock bound to a lease.
//
// A Lock is safe for concurrent use.
type Lock interface {
	// Key is the locked key.
	Key() string
	// Token is the fencing token: issued by the store when the lock was
	// acquired, and strictly greater than that of every earlier holder of
	// the same key.
	Token() int64
	// Done is closed when the lock is lost: its lease expired, was revoked
	// or could not be renewed for a whole TTL, or the lock was released.
	// After Done is closed, every write fenced by this lock fails with
	// ErrFenced.
	Done() <-chan struct{}
	// Expires is how long the lease is known to last: the time the
	// request behind its last confirmed renewal was sent, plus the TTL.
	// The store does not end the lease before then unless it is revoked
	// or released, so a holder that stops at Expires less a margin stops
	// before anyone else can acquire. The zero Time means the lease does
	// not expire by time (the embedded store's, which lives as long as its
	// process).
	Expires() time.Time
	// Update replaces the value at the lock key, keeping the lease, while
	// the lock is held; otherwise it fails with ErrFenced. It returns the
	// new revision.
	Update(ctx context.Context, value []byte) (int64, error)
	// Release gives the lock up and revokes its lease. It is idempotent.
	Release(ctx context.Context) error
}

// LockBreaker is implemented by stores that can end the lease of whoever
// holds a lock key, as an operator's last resort for a lock held by a
// replica that is gone but whose lease is still alive. The holder's Done
// closes and its fenced writes fail from then on. Breaking a key that is
// not locked is not an error.
type LockBreaker interface {
	BreakLock(ctx context.Context, key string) error
}
