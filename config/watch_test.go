package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

// runningWatcher is a Watcher whose Run goroutine the test owns.
type runningWatcher struct {
	w     *Watcher
	snaps chan *Snapshot
}

func startWatcher(t *testing.T, cfg WatchConfig) *runningWatcher {
	t.Helper()
	rw := &runningWatcher{snaps: make(chan *Snapshot, 16)}
	apply := cfg.OnSnapshot
	cfg.OnSnapshot = func(s *Snapshot) error {
		if apply != nil {
			if err := apply(s); err != nil {
				return err
			}
		}
		rw.snaps <- s
		return nil
	}
	w, err := NewWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rw.w = w
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return rw
}

// next waits for the next snapshot, and for it to become current: OnSnapshot
// sees it before.
func (rw *runningWatcher) next(t *testing.T, what string) *Snapshot {
	t.Helper()
	select {
	case s := <-rw.snaps:
		for deadline := time.Now().Add(30 * time.Second); rw.w.Current() != s; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the snapshot after %s did not become current", what)
			}
		}
		return s
	case <-time.After(30 * time.Second):
		t.Fatalf("no snapshot after %s", what)
		return nil
	}
}

// waitFailure waits until the watcher has rejected a change and returns
// the error.
func (rw *runningWatcher) waitFailure(t *testing.T, failures uint64) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st := rw.w.Stats(); st.Failures >= failures && st.LastError != nil {
			return st.LastError
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the watcher did not reject the change")
	return nil
}

func TestWatchStore(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) { testWatchStore(t, b.Client(t)) })
	}
}

func testWatchStore(t *testing.T, s kvstore.Store) {
	ctx := testContext(t)
	const prefix = "watch"
	if _, err := Publish(ctx, s, generated(t, 40, "a"), PublishOptions{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	initial, err := Load(ctx, s, prefix)
	if err != nil {
		t.Fatal(err)
	}
	rw := startWatcher(t, WatchConfig{Store: s, Prefix: prefix, Initial: initial})
	live := versionRoot(prefix, initial.Version)

	// An operator edits a router's rule in the store.
	const rule = "Host(`edited.example.com`)"
	if _, err := kvstore.Put(ctx, s, live+"/http/routers/r1/rule", []byte(rule)); err != nil {
		t.Fatal(err)
	}
	snap := rw.next(t, "editing a rule")
	if got := snap.Config.HTTP.Routers["r1"].Rule; got != rule {
		t.Fatalf("snapshot rule = %q, want %q", got, rule)
	}
	if len(snap.RestartRequired) != 0 {
		t.Fatalf("a rule change needs no restart, got %v", snap.RestartRequired)
	}
	if rw.w.Current() != snap {
		t.Fatal("Current is not the delivered snapshot")
	}

	// A corrupt value is rejected, the error names the key, and the last
	// good snapshot stays.
	bad := live + "/http/routers/r2/priority"
	if _, err := kvstore.Put(ctx, s, bad, []byte("very high")); err != nil {
		t.Fatal(err)
	}
	err = rw.waitFailure(t, 1)
	if !strings.Contains(err.Error(), bad) {
		t.Fatalf("the error does not name %s: %v", bad, err)
	}
	if rw.w.Current() != snap {
		t.Fatal("the last good snapshot was replaced by an invalid configuration")
	}
	// A reference to a missing service is rejected too.
	if _, err := s.Apply(ctx, nil, kvstore.DeleteOp(bad), kvstore.PutOp(live+"/http/routers/r0/service", []byte("missing"))); err != nil {
		t.Fatal(err)
	}
	err = rw.waitFailure(t, 2)
	if !strings.Contains(err.Error(), live+"/http/routers/r0/service: service \"missing\" is not defined") {
		t.Fatalf("the error does not name the service key: %v", err)
	}

	// Fixing it brings a new snapshot.
	if _, err := kvstore.Put(ctx, s, live+"/http/routers/r0/service", []byte("s2")); err != nil {
		t.Fatal(err)
	}
	snap = rw.next(t, "fixing the corrupt keys")
	if got := snap.Config.HTTP.Routers["r0"].Service; got != "s2" {
		t.Fatalf("router r0 service = %q, want s2", got)
	}
	if st := rw.w.Stats(); st.LastError != nil || st.Failures < 2 {
		t.Fatalf("stats after the fix: %+v", st)
	}

	// A listen address change is delivered and flagged as needing a
	// restart.
	if _, err := kvstore.Put(ctx, s, live+"/entry-points/web/address", []byte(":8081")); err != nil {
		t.Fatal(err)
	}
	snap = rw.next(t, "changing an address")
	if !slices.Equal(snap.RestartRequired, []string{"entry-points/web/address"}) {
		t.Fatalf("RestartRequired = %v, want the address key", snap.RestartRequired)
	}

	// One transaction that changes every router is delivered as one
	// snapshot holding all of it, however its events arrive.
	ops := make([]kvstore.Op, 0, 40)
	for i := range 40 {
		ops = append(ops, kvstore.PutOp(fmt.Sprintf("%s/http/routers/r%d/rule", live, i), []byte(fmt.Sprintf("Host(`txn%d.example.com`)", i))))
	}
	if _, err := s.Apply(ctx, nil, ops...); err != nil {
		t.Fatal(err)
	}
	snap = rw.next(t, "a transaction")
	for i := range 40 {
		if got, want := snap.Config.HTTP.Routers[fmt.Sprintf("r%d", i)].Rule, fmt.Sprintf("Host(`txn%d.example.com`)", i); got != want {
			t.Fatalf("after one transaction router r%d has rule %q, want %q: the snapshot is a mixture", i, got, want)
		}
	}
	noMoreSnapshots(t, rw)

	// A new publication is delivered as one snapshot equal to it.
	b := generated(t, 5, "b")
	if _, err := Publish(ctx, s, b, PublishOptions{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	snap = rw.next(t, "publishing b")
	if snap.Version != "v2" || len(snap.Config.HTTP.Routers) != 5 {
		t.Fatalf("snapshot after publishing b: version %s, %d routers", snap.Version, len(snap.Config.HTTP.Routers))
	}
	noMoreSnapshots(t, rw)
}

// noMoreSnapshots checks that no further snapshot arrives for a moment.
func noMoreSnapshots(t *testing.T, rw *runningWatcher) {
	t.Helper()
	select {
	case extra := <-rw.snaps:
		t.Fatalf("an extra snapshot (version %s, revision %d) followed", extra.Version, extra.Revision)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestWatchFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.toml")
	write := func(doc string) {
		t.Helper()
		// Replace the file the way a ConfigMap update does: a new file
		// renamed over the old one.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	const base = "[entryPoints.web]\naddress = \":80\"\n[http.routers.a]\nrule = \"Path(`/`)\"\nservice = \"s\"\n[[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:1\"\n"
	write(base)
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rw := startWatcher(t, WatchConfig{File: path, PollInterval: 10 * time.Millisecond, Initial: &Snapshot{Config: cfg, Source: path}})

	write(strings.Replace(base, "Path(`/`)", "Path(`/v2`)", 1))
	snap := rw.next(t, "editing the file")
	if got := snap.Config.HTTP.Routers["a"].Rule; got != "Path(`/v2`)" {
		t.Fatalf("rule = %q", got)
	}

	write(base + "[http.routers.b]\nrule = \"Path(`/b`)\"\nservice = \"nope\"\n")
	err = rw.waitFailure(t, 1)
	if !strings.Contains(err.Error(), path+":10:1: http.routers.b.service") {
		t.Fatalf("error does not locate the problem: %v", err)
	}
	if rw.w.Current() != snap {
		t.Fatal("an invalid file replaced the last good snapshot")
	}

	write(strings.Replace(base, ":80", ":81", 1))
	snap = rw.next(t, "changing the address")
	if !slices.Equal(snap.RestartRequired, []string{"entry-points/web/address"}) {
		t.Fatalf("RestartRequired = %v", snap.RestartRequired)
	}
}

// refuseHost is an OnSnapshot that refuses every configuration with a
// router for refused.example.com, as the router refuses what validation
// cannot see.
func refuseHost(s *Snapshot) error {
	for name, r := range s.Config.HTTP.Routers {
		if strings.Contains(r.Rule, "refused.example.com") {
			return fmt.Errorf("router %s: refused by the test", name)
		}
	}
	return nil
}

// TestWatchStoreApplyRefused changes the store to a configuration that
// validation accepts and OnSnapshot refuses: it does not become current,
// it counts as a rejection, and its error is surfaced.
func TestWatchStoreApplyRefused(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Client(t)
			ctx := testContext(t)
			const prefix = "refused"
			if _, err := Publish(ctx, s, generated(t, 3, "a"), PublishOptions{Prefix: prefix}); err != nil {
				t.Fatal(err)
			}
			initial, err := Load(ctx, s, prefix)
			if err != nil {
				t.Fatal(err)
			}
			rw := startWatcher(t, WatchConfig{Store: s, Prefix: prefix, Initial: initial, OnSnapshot: refuseHost})
			key := versionRoot(prefix, initial.Version) + "/http/routers/r1/rule"
			testApplyRefused(t, rw, initial, func(rule string) {
				if _, err := kvstore.Put(ctx, s, key, []byte(rule)); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestWatchFileApplyRefused is TestWatchStoreApplyRefused for a file.
func TestWatchFileApplyRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.toml")
	const base = "[entryPoints.web]\naddress = \":80\"\n[http.routers.r1]\nrule = \"RULE\"\nservice = \"s\"\n[[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:1\"\n"
	write := func(rule string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(strings.Replace(base, "RULE", rule, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("Host(`first.example.com`)")
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	initial := &Snapshot{Config: cfg, Source: path}
	rw := startWatcher(t, WatchConfig{File: path, PollInterval: 10 * time.Millisecond, Initial: initial, OnSnapshot: refuseHost})
	testApplyRefused(t, rw, initial, write)
}

// testApplyRefused sets router r1's rule with setRule: first to one that
// OnSnapshot refuses, then to an accepted one.
func testApplyRefused(t *testing.T, rw *runningWatcher, initial *Snapshot, setRule func(string)) {
	t.Helper()
	started := rw.w.Stats().LastSuccess
	if started.IsZero() {
		t.Fatal("LastSuccess is not set for the initial configuration")
	}
	setRule("Host(`refused.example.com`)")
	err := rw.waitFailure(t, 1)
	if !strings.Contains(err.Error(), "router r1: refused by the test") {
		t.Fatalf("LastError = %v, want the refusal", err)
	}
	if rw.w.Current() != initial {
		t.Fatal("Current is the refused configuration; want the last good one")
	}
	if st := rw.w.Stats(); st.Failures != 1 || st.Reloads != 0 || !st.LastSuccess.Equal(started) {
		t.Fatalf("stats after a refusal: Failures %d, Reloads %d, LastSuccess %s; want 1, 0 and %s", st.Failures, st.Reloads, st.LastSuccess, started)
	}
	noMoreSnapshots(t, rw)

	setRule("Host(`accepted.example.com`)")
	snap := rw.next(t, "an accepted rule")
	if got := snap.Config.HTTP.Routers["r1"].Rule; got != "Host(`accepted.example.com`)" {
		t.Fatalf("rule = %q", got)
	}
	if rw.w.Current() != snap {
		t.Fatal("Current is not the accepted snapshot")
	}
	if st := rw.w.Stats(); st.Failures != 1 || st.Reloads != 1 || st.LastError != nil || !st.LastSuccess.After(started) {
		t.Fatalf("stats after the fix: %+v", st)
	}
}

// TestWatchFileOnReject: OnReject hears of each rejected change once,
// however often the file is read while it stays invalid.
func TestWatchFileOnReject(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.toml")
	const good = "[entryPoints.web]\naddress = \":80\"\n"
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heard []string
	recovered := 0
	rw := startWatcher(t, WatchConfig{File: path, PollInterval: 10 * time.Millisecond, Initial: &Snapshot{Config: cfg, Source: path},
		OnReject: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			heard = append(heard, err.Error())
		},
		OnRecover: func() {
			mu.Lock()
			defer mu.Unlock()
			recovered++
		}})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(good+"[entryPoints.web.nonsense]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	rejected := rw.waitFailure(t, 1)
	time.Sleep(100 * time.Millisecond) // several more reads of the same invalid file
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 1 || heard[0] != rejected.Error() || recovered != 0 {
		t.Fatalf("OnReject heard %q, want once %q; OnRecover called %d times, want 0", heard, rejected, recovered)
	}
	mu.Unlock()

	// Undoing the change (the file as in force again) is heard once, and
	// clears the error.
	if err := os.WriteFile(tmp, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); rw.w.Stats().LastError != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the undone change still counts as rejected")
		}
	}
	time.Sleep(100 * time.Millisecond) // several more reads of the same file
	mu.Lock()
	if recovered != 1 || len(heard) != 1 {
		t.Fatalf("after the undo: OnRecover called %d times, OnReject %d; want 1 and 1", recovered, len(heard))
	}
}
