package config

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// The configuration's keys in the store, below the prefix:
//
//	<prefix>/config/current       name of the live version, such as "v7"
//	<prefix>/config/v7/…          the live configuration, one scalar per key
//	<prefix>/locks/storeconfig    held while storeconfig writes
//
// storeconfig writes a new version folder completely, then switches
// "current" in one write, then deletes the older folders. A reader lists
// <prefix>/config/ once, which every backend answers at one revision, and
// takes the folder "current" names from that same listing, so it sees the
// old configuration or the new one, never a mixture.

// ErrNoConfig means the store holds no configuration under the prefix.
var ErrNoConfig = errors.New("no configuration in the store")

// MaxPrefixBytes bounds the key prefix, so that every key below it stays
// within the stores' key size limit.
const MaxPrefixBytes = 128

// CheckPrefix reports whether prefix can hold tollgate's keys: a valid key
// of at most MaxPrefixBytes that does not lie inside another prefix's
// configuration versions (such as "a/config/v3"), where storeconfig for
// "a" would delete it as an old version.
func CheckPrefix(prefix string) error {
	if err := kvstore.ValidateKey(prefix); err != nil {
		return fmt.Errorf("prefix %q: %w", prefix, err)
	}
	if len(prefix) > MaxPrefixBytes {
		return fmt.Errorf("prefix of %d bytes: at most %d allowed", len(prefix), MaxPrefixBytes)
	}
	segs := strings.Split(prefix, "/")
	for i := 0; i+1 < len(segs); i++ {
		if _, isVersion := versionNumber(segs[i+1]); segs[i] == "config" && isVersion {
			return fmt.Errorf("prefix %q lies inside the configuration versions of prefix %q, whose storeconfig would delete it; choose another prefix", prefix, strings.Join(segs[:i], "/"))
		}
	}
	return nil
}

func configRoot(prefix string) string     { return prefix + "/config" }
func currentKey(prefix string) string     { return configRoot(prefix) + "/current" }
func versionRoot(prefix, v string) string { return configRoot(prefix) + "/" + v }
func publishLockKey(prefix string) string { return prefix + "/locks/storeconfig" }

// Snapshot is one valid configuration and where it came from. Snapshots
// are immutable: nothing may change a Snapshot or its Config after it is
// delivered.
type Snapshot struct {
	Config *Config
	// Source is the file name, or the store folder of the version.
	Source string
	// Version is the store version ("v7"); empty for a file.
	Version string
	// Revision is the store revision the snapshot was read at; zero for
	// a file.
	Revision int64
	// RestartRequired lists the keys whose change since the previous
	// snapshot takes effect only after a restart (listen addresses and
	// other listener settings, logging).
	RestartRequired []string
}

// Load reads and validates the live configuration under prefix. It fails
// with ErrNoConfig when none was stored, and with an *Error naming the keys
// when the stored one is invalid.
func Load(ctx context.Context, s kvstore.Store, prefix string) (*Snapshot, error) {
	if err := CheckPrefix(prefix); err != nil {
		return nil, err
	}
	list, err := s.List(ctx, configRoot(prefix)+"/")
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return fromListing(prefix, list.KVs, list.Revision)
}

// fromListing decodes the live version out of a listing of
// <prefix>/config/.
func fromListing(prefix string, kvs []kvstore.KV, rev int64) (*Snapshot, error) {
	v, entries, err := liveVersion(prefix, kvs)
	if err != nil {
		return nil, err
	}
	cfg, err := Decode(versionRoot(prefix, v), entries)
	if err != nil {
		return nil, err
	}
	return &Snapshot{Config: cfg, Source: versionRoot(prefix, v), Version: v, Revision: rev}, nil
}

// liveVersion finds the version "current" names and its entries.
func liveVersion(prefix string, kvs []kvstore.KV) (string, []kvstore.KV, error) {
	var v string
	found := false
	for _, kv := range kvs {
		if kv.Key == currentKey(prefix) {
			v, found = string(kv.Value), true
		}
	}
	if !found {
		return "", nil, fmt.Errorf("%w under prefix %q (no key %s): publish one with tollgate storeconfig", ErrNoConfig, prefix, currentKey(prefix))
	}
	if _, ok := versionNumber(v); !ok {
		return "", nil, &Error{Source: "store " + configRoot(prefix), Problems: []Problem{{
			Where:   currentKey(prefix),
			Message: fmt.Sprintf("%q is not a version name such as \"v7\"; run tollgate storeconfig to publish the configuration again", truncate(v, 40)),
		}}}
	}
	root := versionRoot(prefix, v) + "/"
	var entries []kvstore.KV
	for _, kv := range kvs {
		if strings.HasPrefix(kv.Key, root) && !isFolderKey(kv.Key) {
			entries = append(entries, kv)
		}
	}
	if len(entries) == 0 {
		return "", nil, &Error{Source: "store " + configRoot(prefix), Problems: []Problem{{
			Where:   currentKey(prefix),
			Message: fmt.Sprintf("names version %q, but %s/ holds no keys; run tollgate storeconfig to publish the configuration again", v, versionRoot(prefix, v)),
		}}}
	}
	return v, entries, nil
}

// versionNumber parses "v7".
func versionNumber(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "v")
	if !ok || rest == "" || len(rest) > 18 || (len(rest) > 1 && rest[0] == '0') || strings.Trim(rest, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil
}

// isFolderKey reports a key ending in "/": the Consul UI creates such
// keys for folders. They hold nothing and tollgate ignores them.
func isFolderKey(key string) bool { return strings.HasSuffix(key, "/") }

// versionOf returns the version folder a key of <prefix>/config/ is in.
func versionOf(prefix, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, configRoot(prefix)+"/")
	if !ok || isFolderKey(key) {
		return "", false
	}
	v, _, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	_, isVersion := versionNumber(v)
	return v, isVersion
}
