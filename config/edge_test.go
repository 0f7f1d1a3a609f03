package config

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

func TestCheckPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix, err string
	}{
		{"tollgate", ""},
		{"prod/edge", ""},
		{"a/config/b", ""},
		{"a/config", ""},
		{"", "empty key"},
		{"a//b", "empty segment"},
		{"/a", "empty segment"},
		{"a b", "printable ASCII without spaces"},
		{"tollgate/config/v3", `lies inside the configuration versions of prefix "tollgate"`},
		{"x/config/v12/y", `lies inside the configuration versions of prefix "x"`},
		{strings.Repeat("p", MaxPrefixBytes+1), "at most 128 allowed"},
	} {
		err := CheckPrefix(tc.prefix)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckPrefix(%q) = %v, want an error containing %q", tc.prefix, err, tc.err)
		}
	}
}

// TestSecretsHidden checks that secret values never reach messages or
// diffs.
func TestSecretsHidden(t *testing.T) {
	const hash = "$2y$05$SECRETSECRETSECRETSECRE"
	_, err := Parse("s.toml", []byte("[entryPoints.web]\naddress = \":80\"\n[http.middlewares.auth.basicAuth]\nusers = \"admin:"+hash+"\"\n"))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error shows the secret or is missing: %v", err)
	}
	_, err = Decode("p/config/v1", []kvstore.KV{
		{Key: "p/config/v1/entry-points/web/address", Value: []byte(":80")},
		{Key: "p/config/v1/http/middlewares/auth/basic-auth/users", Value: []byte("admin:" + hash)},
	})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("store error shows the secret or is missing: %v", err)
	}

	cfg, err := Parse("s.toml", []byte(`
[entryPoints.web]
address = ":80"
[http.routers.a]
rule = "Path(`+"`/`"+`)"
service = "s"
middlewares = ["auth", "hdr"]
[[http.services.s.loadBalancer.servers]]
url = "http://user:SECRET@10.0.0.1:80"
[http.middlewares.auth.basicAuth]
users = ["admin:`+hash+`"]
[http.middlewares.hdr.headers.customRequestHeaders]
Authorization = "Bearer SECRET"
X-Plain = "visible"
`))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	changes := diffEntries(map[string]string{"http/middlewares/auth/basic-auth/users/1": "old:" + hash}, entries)
	var diff strings.Builder
	for _, c := range changes {
		diff.WriteString(c.String() + "\n")
	}
	if strings.Contains(diff.String(), "SECRET") || !strings.Contains(diff.String(), "visible") {
		t.Fatalf("diff shows a secret or hides a plain value:\n%s", diff.String())
	}
}

// TestPublishOddStores covers stores an operator has been at: Consul
// folder keys, a version number past nine digits.
func TestPublishOddStores(t *testing.T) {
	consul := testserver.Consul(t)
	s := backendtest.Network("consul", "consul://"+consul.Addr).Client(t)
	ctx := testContext(t)
	a, b := generated(t, 3, "a"), generated(t, 4, "b")
	if _, err := Publish(ctx, s, a, PublishOptions{Prefix: "odd"}); err != nil {
		t.Fatal(err)
	}
	// The Consul UI creates folders as keys ending in "/".
	for _, folder := range []string{"odd/config/v1/", "odd/config/v1/http/routers/", "odd/config/"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+consul.Addr+"/v1/kv/"+folder, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	l, err := s.List(ctx, "odd/config/")
	if err != nil || !slices.ContainsFunc(l.KVs, func(kv kvstore.KV) bool { return isFolderKey(kv.Key) }) {
		t.Fatalf("no folder key was created: %v", err)
	}
	if snap, err := Load(ctx, s, "odd"); err != nil || !reflect.DeepEqual(snap.Config, a) {
		t.Fatalf("Load with folder keys: %v", err)
	}
	for i, cfg := range []*Config{b, b, a} {
		res, err := Publish(ctx, s, cfg, PublishOptions{Prefix: "odd"})
		if err != nil || res.PruneError != nil {
			t.Fatalf("publication %d with folder keys: %v, prune: %v", i, err, res.PruneError)
		}
		if i == 1 && (res.Applied || len(res.Pruned) > 0) {
			t.Fatalf("publishing the same file again wrote: %+v", res)
		}
	}

	// A stray folder with a huge version number.
	if _, err := kvstore.Put(ctx, s, "odd/config/v999999999/log/level", []byte("debug")); err != nil {
		t.Fatal(err)
	}
	res, err := Publish(ctx, s, b, PublishOptions{Prefix: "odd"})
	if err != nil || res.To != "v1000000000" {
		t.Fatalf("publishing past nine digits: %+v, %v", res, err)
	}
	if snap, err := Load(ctx, s, "odd"); err != nil || !reflect.DeepEqual(snap.Config, b) {
		t.Fatalf("Load of version %s: %v", res.To, err)
	}
	if res, err := Publish(ctx, s, b, PublishOptions{Prefix: "odd"}); err != nil || res.Applied {
		t.Fatalf("publishing the same file again: %+v, %v", res, err)
	}
}

// TestPublishLockTimeout holds the publication lock and checks that a
// second run gives up with ErrLockTimeout.
func TestPublishLockTimeout(t *testing.T) {
	s := backendtest.Embedded(t).Client(t)
	ctx := testContext(t)
	lock, err := s.Lock(ctx, publishLockKey("lt"), kvstore.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release(context.Background())
	_, err = Publish(ctx, s, generated(t, 1, "a"), PublishOptions{Prefix: "lt", LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Publish while locked = %v, want ErrLockTimeout", err)
	}
}

// TestWatchFileRecovers removes the file for a while: the error clears
// when the same content comes back, and is counted once.
func TestWatchFileRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.toml")
	doc := []byte("[entryPoints.web]\naddress = \":80\"\n")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rw := startWatcher(t, WatchConfig{File: path, PollInterval: 5 * time.Millisecond, Initial: &Snapshot{Config: cfg, Source: path}})
	time.Sleep(20 * time.Millisecond) // let it read the file once
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	rw.waitFailure(t, 1)
	time.Sleep(50 * time.Millisecond) // several polls of the missing file
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for rw.w.Stats().LastError != nil {
		if time.Now().After(deadline) {
			t.Fatal("the error did not clear when the file came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := rw.w.Stats(); st.Failures != 1 {
		t.Fatalf("Failures = %d, want 1 for one stretch of a missing file", st.Failures)
	}
}
