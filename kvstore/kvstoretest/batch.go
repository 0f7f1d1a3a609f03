package kvstoretest

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// testCASRace has many goroutines on several clients race to create one key
// (exactly one may win) and then increment a counter with read-modify-CAS
// loops (no increment may be lost).
func testCASRace(t *testing.T, c Cluster, p string) {
	const workers, increments = 12, 5
	clients := []kvstore.Store{c.Client(t), c.Client(t), c.Client(t)}
	ctx := ctxFor(t)

	var wg sync.WaitGroup
	wins := make(chan int, workers)
	for i := range workers {
		wg.Go(func() {
			_, err := kvstore.CompareAndPut(ctx, clients[i%len(clients)], p+"create", []byte(strconv.Itoa(i)), 0)
			switch {
			case err == nil:
				wins <- i
			case !errors.Is(err, kvstore.ErrConflict):
				t.Errorf("worker %d create: got %v, want nil or ErrConflict", i, err)
			}
		})
	}
	wg.Wait()
	close(wins)
	var winners []int
	for w := range wins {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("create race: got %d winners %v, want exactly 1", len(winners), winners)
	}
	if kv := mustGet(t, clients[0], p+"create"); string(kv.Value) != strconv.Itoa(winners[0]) {
		t.Fatalf("create race: stored %q, want the winner %d", kv.Value, winners[0])
	}

	counter := p + "counter"
	mustPut(t, clients[0], counter, "0")
	for i := range workers {
		wg.Go(func() {
			s := clients[i%len(clients)]
			for range increments {
				if err := increment(ctx, s, counter); err != nil {
					t.Errorf("worker %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if kv := mustGet(t, clients[0], counter); string(kv.Value) != strconv.Itoa(workers*increments) {
		t.Fatalf("counter: got %s, want %d", kv.Value, workers*increments)
	}
}

func increment(ctx context.Context, s kvstore.Store, key string) error {
	for {
		kv, err := s.Get(ctx, key)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(kv.Value))
		if err != nil {
			return err
		}
		_, err = kvstore.CompareAndPut(ctx, s, key, []byte(strconv.Itoa(n+1)), kv.Revision)
		if !errors.Is(err, kvstore.ErrConflict) {
			return err
		}
	}
}

func testBatchAtomicity(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	ctx := ctxFor(t)
	ra := mustPut(t, s, p+"a", "a1")
	rev, err := s.Apply(ctx, nil,
		kvstore.PutIfOp(p+"a", []byte("a2"), ra),
		kvstore.PutIfOp(p+"b", []byte("b1"), 0),
		kvstore.PutOp(p+"c", []byte("c1")),
		kvstore.CheckOp(p+"missing", 0),
	)
	if err != nil {
		t.Fatalf("batch whose conditions hold: %v", err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if kv := mustGet(t, s, p+k); kv.Revision != rev {
			t.Errorf("%s: got revision %d, want the batch's %d", k, kv.Revision, rev)
		}
	}

	// Each batch has one failing condition, in a different position:
	// nothing of it may be written.
	for i, ops := range [][]kvstore.Op{
		{kvstore.CheckOp(p+"a", ra), kvstore.PutOp(p+"x", []byte("x")), kvstore.DeleteOp(p + "b")},
		{kvstore.PutOp(p+"x", []byte("x")), kvstore.PutIfOp(p+"a", []byte("bad"), ra), kvstore.DeleteOp(p + "c")},
		{kvstore.DeleteOp(p + "c"), kvstore.PutOp(p+"x", []byte("x")), kvstore.DeleteIfOp(p+"missing", 5)},
		{kvstore.DeleteOp(p + "a"), kvstore.CheckOp(p+"b", 0)},
	} {
		_, err := s.Apply(ctx, nil, ops...)
		wantErr(t, "batch "+strconv.Itoa(i), err, kvstore.ErrConflict)
	}
	l, err := s.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, kv := range l.KVs {
		got += kv.Key[len(p):] + "=" + string(kv.Value) + " "
	}
	if want := "a=a2 b=b1 c=c1 "; got != want {
		t.Fatalf("after refused batches: got %q, want %q", got, want)
	}

	if _, err := s.Apply(ctx, nil, kvstore.DeleteOp(p+"a"), kvstore.DeleteIfOp(p+"b", rev), kvstore.PutOp(p+"d", nil)); err != nil {
		t.Fatalf("mixed batch: %v", err)
	}
	if l, _ := s.List(ctx, p); len(l.KVs) != 2 {
		t.Fatalf("after mixed batch: got keys %q, want c and d", keys(l.KVs))
	}
}

func testSizeLimits(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	ctx := ctxFor(t)
	lim := s.Limits()
	if lim.MaxValueBytes <= 0 || lim.MaxTxnOps <= 0 || lim.MaxTxnBytes <= 0 || lim.Backend == "" {
		t.Fatalf("limits not set: %+v", lim)
	}
	big := bytes.Repeat([]byte{0xA5}, lim.MaxValueBytes)
	rev := mustPutBytes(t, s, p+"max", big)
	if kv := mustGet(t, s, p+"max"); !bytes.Equal(kv.Value, big) || kv.Revision != rev {
		t.Fatalf("max-size value: got %d bytes@%d, want %d@%d", len(kv.Value), kv.Revision, len(big), rev)
	}

	_, err := kvstore.Put(ctx, s, p+"toolarge", append(big, 0))
	wantErr(t, "value one byte over the limit", err, kvstore.ErrValueTooLarge)
	wantNotFound(t, s, p+"toolarge")

	ops := make([]kvstore.Op, lim.MaxTxnOps+1)
	for i := range ops {
		ops[i] = kvstore.PutOp(p+"many/"+strconv.Itoa(i), []byte("v"))
	}
	_, err = s.Apply(ctx, nil, ops...)
	wantErr(t, "too many operations", err, kvstore.ErrTxnTooLarge)
	if _, err := s.Apply(ctx, nil, ops[:lim.MaxTxnOps]...); err != nil {
		t.Fatalf("MaxTxnOps operations: %v", err)
	}

	// Enough max-size values to exceed the transaction size.
	n := lim.MaxTxnBytes/lim.MaxValueBytes + 1
	ops = ops[:0]
	for i := range n {
		ops = append(ops, kvstore.PutOp(p+"bulk/"+strconv.Itoa(i), big))
	}
	if n <= lim.MaxTxnOps {
		_, err = s.Apply(ctx, nil, ops...)
		wantErr(t, "batch over MaxTxnBytes", err, kvstore.ErrTxnTooLarge)
		wantNotFound(t, s, p+"bulk/0")
	}
}

func mustPutBytes(t *testing.T, s kvstore.Store, key string, value []byte) int64 {
	t.Helper()
	rev, err := kvstore.Put(ctxFor(t), s, key, value)
	if err != nil {
		t.Fatalf("put %q (%d bytes): %v", key, len(value), err)
	}
	return rev
}

func testBadKeys(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	ctx := ctxFor(t)
	for _, key := range []string{
		"", "/abs", "trailing/", "a//b", "a/./b", "a/../b", "..", ".",
		"sp ace", "tab\tkey", "nul\x00", "é", string(make([]byte, kvstore.MaxKeyBytes+1)),
	} {
		if _, err := s.Get(ctx, key); !errors.Is(err, kvstore.ErrInvalidKey) {
			t.Errorf("get %q: got %v, want ErrInvalidKey", key, err)
		}
		if _, err := kvstore.Put(ctx, s, key, []byte("v")); !errors.Is(err, kvstore.ErrInvalidKey) {
			t.Errorf("put %q: got %v, want ErrInvalidKey", key, err)
		}
		if key == "" || key == "trailing/" {
			continue // valid prefixes
		}
		if _, err := s.List(ctx, key); !errors.Is(err, kvstore.ErrInvalidKey) {
			t.Errorf("list %q: got %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Watch(ctx, key, 0); !errors.Is(err, kvstore.ErrInvalidKey) {
			t.Errorf("watch %q: got %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Lock(ctx, key, kvstore.LockOptions{TTL: lockTTL}); !errors.Is(err, kvstore.ErrInvalidKey) {
			t.Errorf("lock %q: got %v, want ErrInvalidKey", key, err)
		}
	}
	// A bad key anywhere in a batch refuses the whole batch.
	_, err := s.Apply(ctx, nil, kvstore.PutOp(p+"good", []byte("v")), kvstore.PutOp(p+"../bad", []byte("v")))
	wantErr(t, "batch with a bad key", err, kvstore.ErrInvalidKey)
	wantNotFound(t, s, p+"good")
}
