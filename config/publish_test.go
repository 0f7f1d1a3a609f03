package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

func TestPublish(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) { testPublish(t, b.Client(t)) })
	}
}

// listing returns every key under prefix with its revision and value.
func listing(t *testing.T, s kvstore.Store, prefix string) map[string]kvstore.KV {
	t.Helper()
	l, err := s.List(testContext(t), prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]kvstore.KV{}
	for _, kv := range l.KVs {
		out[kv.Key] = kv
	}
	return out
}

func testPublish(t *testing.T, s kvstore.Store) {
	ctx := testContext(t)
	const prefix = "pub"
	// State that storeconfig must never touch.
	others := map[string]string{
		"pub/acme/certs/example.com":    `{"domains":["example.com"]}`,
		"pub/acme/accounts/x":           "account",
		"pub/leader":                    "node-1",
		"pub/nodes/node-1":              "{}",
		"pub/configuration-notes":       "not under config/",
		"elsewhere/config/current":      "v1",
		"elsewhere/config/v1/log/level": "debug",
	}
	for k, v := range others {
		if _, err := kvstore.Put(ctx, s, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	untouched := func() {
		t.Helper()
		for k, v := range others {
			kv, err := s.Get(ctx, k)
			if err != nil || string(kv.Value) != v {
				t.Fatalf("%s was touched: %v, %q", k, err, kv.Value)
			}
		}
	}
	before := listing(t, s, "")

	a, bcfg := generated(t, 70, "a"), generated(t, 60, "b")

	// A dry run on an empty store lists every key as added and writes
	// nothing.
	res, err := Publish(ctx, s, a, PublishOptions{Prefix: prefix, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := Encode(a)
	if len(res.Changes) != len(entries) || res.Applied || res.To != "v1" || res.From != "" {
		t.Fatalf("dry run: %d changes, applied %v, %q -> %q; want %d added, not applied, \"\" -> v1", len(res.Changes), res.Applied, res.From, res.To, len(entries))
	}
	for _, c := range res.Changes {
		if c.Kind != Added {
			t.Fatalf("dry run on an empty store: %s", c)
		}
	}
	if after := listing(t, s, ""); !reflect.DeepEqual(after, before) {
		t.Fatal("a dry run wrote to the store")
	}

	// First publication.
	res, err = Publish(ctx, s, a, PublishOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Applied || res.To != "v1" {
		t.Fatalf("first publication: applied %v, to %q", res.Applied, res.To)
	}
	snap, err := Load(ctx, s, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap.Config, a) || snap.Version != "v1" {
		t.Fatalf("Load after publishing differs (version %s)", snap.Version)
	}
	untouched()

	// Idempotence: the same file again changes nothing at all.
	before = listing(t, s, prefix+"/")
	res, err = Publish(ctx, s, a, PublishOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied || len(res.Changes) != 0 || len(res.Pruned) != 0 || res.To != "v1" {
		t.Fatalf("second publication of the same file: %+v", res)
	}
	after := listing(t, s, prefix+"/")
	delete(after, publishLockKey(prefix)) // released, may linger as a tombstone-free key on some backends
	delete(before, publishLockKey(prefix))
	if !reflect.DeepEqual(after, before) {
		t.Fatal("publishing the same configuration again changed keys")
	}

	// A dry run of another configuration shows removals, changes and
	// additions, and writes nothing.
	res, err = Publish(ctx, s, bcfg, PublishOptions{Prefix: prefix, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[ChangeKind]int{}
	for _, c := range res.Changes {
		kinds[c.Kind]++
	}
	if kinds[Removed] == 0 || kinds[Changed] == 0 || res.Applied || res.To != "v2" {
		t.Fatalf("dry run of b: %v, applied %v, to %s", kinds, res.Applied, res.To)
	}
	if !slices.ContainsFunc(res.Changes, func(c Change) bool {
		return c.Kind == Removed && c.Key == "http/routers/r65/rule"
	}) {
		t.Fatal("dry run does not show router r65 as removed")
	}

	// Publishing it prunes the keys the file no longer has and the old
	// version folder.
	res, err = Publish(ctx, s, bcfg, PublishOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if res.To != "v2" || !slices.Equal(res.Pruned, []string{"v1"}) {
		t.Fatalf("publishing b: to %s, pruned %v", res.To, res.Pruned)
	}
	for k := range listing(t, s, prefix+"/config/") {
		if strings.HasPrefix(k, prefix+"/config/v1/") {
			t.Fatalf("old version key %s is still there", k)
		}
	}
	snap, err = Load(ctx, s, prefix)
	if err != nil || !reflect.DeepEqual(snap.Config, bcfg) {
		t.Fatalf("Load after publishing b: %v", err)
	}
	untouched()

	// A folder left by an interrupted run is pruned by the next one.
	if _, err := kvstore.Put(ctx, s, prefix+"/config/v7/log/level", []byte("debug")); err != nil {
		t.Fatal(err)
	}
	res, err = Publish(ctx, s, bcfg, PublishOptions{Prefix: prefix})
	if err != nil || len(res.Changes) != 0 || !slices.Equal(res.Pruned, []string{"v7"}) || res.To != "v2" {
		t.Fatalf("publishing over a leftover: %+v, %v", res, err)
	}
	if _, err := s.Get(ctx, prefix+"/config/v7/log/level"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("leftover version is still there: %v", err)
	}
	untouched()
}

// TestPublishNoMixture publishes two configurations in turn while readers
// load the live one in a tight loop: every read must be exactly one of the
// two, never a mixture, never an error. The configurations are large
// enough to need several write batches on every backend.
func TestPublishNoMixture(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) { testNoMixture(t, b) })
	}
}

func testNoMixture(t *testing.T, b backendtest.Backend) {
	ctx := testContext(t)
	const prefix = "mix"
	writer := b.Client(t)
	cfgs := []*Config{generated(t, 80, "a"), generated(t, 80, "b")}
	if _, err := Publish(ctx, writer, cfgs[0], PublishOptions{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		seen    = map[int]int{}
		readErr error
		stop    = make(chan struct{})
		readers = 2
	)
	for range readers {
		reader := b.Client(t)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap, err := Load(ctx, reader, prefix)
				mu.Lock()
				switch {
				case err != nil:
					readErr = err
				case reflect.DeepEqual(snap.Config, cfgs[0]):
					seen[0]++
				case reflect.DeepEqual(snap.Config, cfgs[1]):
					seen[1]++
				default:
					readErr = errors.New("read a configuration that is neither the old nor the new one")
				}
				failed := readErr != nil
				mu.Unlock()
				if failed {
					return
				}
			}
		})
	}
	const rounds = 10
	for i := range rounds {
		if _, err := Publish(ctx, writer, cfgs[(i+1)%2], PublishOptions{Prefix: prefix}); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	t.Logf("%d publications; reads: %d of the first, %d of the second configuration", rounds, seen[0], seen[1])
	if seen[0]+seen[1] == 0 {
		t.Fatal("no reads happened")
	}
}

// TestPublishConcurrent runs two publications at once: the lock serializes
// them and the store ends with one of the two, complete.
func TestPublishConcurrent(t *testing.T) {
	b := backendtest.Network("consul", "consul://"+testserver.Consul(t).Addr) // the smallest batches
	ctx := testContext(t)
	cfgs := []*Config{generated(t, 50, "a"), generated(t, 50, "b")}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		s := b.Client(t)
		wg.Go(func() {
			_, errs[i] = Publish(ctx, s, cfgs[i], PublishOptions{Prefix: "conc"})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	snap, err := Load(ctx, b.Client(t), "conc")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap.Config, cfgs[0]) && !reflect.DeepEqual(snap.Config, cfgs[1]) {
		t.Fatal("after two concurrent publications the store holds neither configuration")
	}
	if snap.Version != "v2" {
		t.Fatalf("live version %s, want v2 (the second run replaces the first)", snap.Version)
	}
}
