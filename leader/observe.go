package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Leader returns who leads now, as published at key (DefaultKey when
// empty), or an error wrapping ErrNoLeader.
func Leader(ctx context.Context, s kvstore.Store, key string) (Info, error) {
	if key == "" {
		key = DefaultKey
	}
	kv, err := s.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return Info{}, fmt.Errorf("leader key %q: %w", key, ErrNoLeader)
	}
	if err != nil {
		return Info{}, fmt.Errorf("read leader: %w", err)
	}
	return decodeInfo(kv)
}

func decodeInfo(kv kvstore.KV) (Info, error) {
	var info Info
	if err := json.Unmarshal(kv.Value, &info); err != nil {
		return Info{}, fmt.Errorf("leader key %q holds no leader record: %w", kv.Key, err)
	}
	if info.ID == "" {
		return Info{}, fmt.Errorf("leader key %q holds a record without a node ID", kv.Key)
	}
	// One time zone, so that equal records compare equal.
	info.Since = info.Since.UTC()
	return info, nil
}

// Observe streams who leads: the current leader first (the zero Info when
// there is none), then every change, until ctx is done. It rides on a
// store watch, so it never silently stops while ctx lasts.
func Observe(ctx context.Context, s kvstore.Store, key string) (<-chan Info, error) {
	if key == "" {
		key = DefaultKey
	}
	events, err := s.Watch(ctx, key, 0)
	if err != nil {
		return nil, fmt.Errorf("observe leader: %w", err)
	}
	out := make(chan Info)
	go func() {
		defer close(out)
		var last *Info
		for ev := range events {
			info, ok := leaderIn(ev, key)
			if !ok || (last != nil && *last == info) {
				continue
			}
			select {
			case out <- info:
				last = &info
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// leaderIn returns who leads after ev, and whether ev tells: it does not
// when it concerns another key or the record does not decode (a record
// being repaired by hand), in which case the last observation stands.
func leaderIn(ev kvstore.Event, key string) (Info, bool) {
	var kv *kvstore.KV
	switch ev.Type {
	case kvstore.EventResync:
		for i := range ev.Snapshot {
			if ev.Snapshot[i].Key == key {
				kv = &ev.Snapshot[i]
			}
		}
	case kvstore.EventPut:
		if ev.KV.Key != key {
			return Info{}, false
		}
		kv = &ev.KV
	case kvstore.EventDelete:
		return Info{}, ev.KV.Key == key
	default:
		return Info{}, false
	}
	if kv == nil {
		return Info{}, true
	}
	info, err := decodeInfo(*kv)
	return info, err == nil
}
