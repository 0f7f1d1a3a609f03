package config

import (
	"reflect"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Decode builds a Config from store entries below the version folder root
// (keys "root/http/routers/web/rule" and so on) and validates it. An
// invalid configuration yields an *Error whose problems name the keys.
func Decode(root string, kvs []kvstore.KV) (*Config, error) {
	cfg, decoded, err := decodeTree(root, kvs)
	if err != nil {
		return nil, err
	}
	if probs := validateDecoded(cfg, decoded); len(probs) > 0 {
		return nil, locateKV(root, probs)
	}
	return cfg, nil
}

// decodeEntries decodes without semantic validation.
func decodeEntries(root string, kvs []kvstore.KV) (*Config, *Error) {
	cfg, decoded, err := decodeTree(root, kvs)
	if err != nil {
		return nil, err
	}
	if len(decoded.probs) > 0 {
		return nil, locateKV(root, decoded.probs)
	}
	return cfg, nil
}

// decodeTree decodes without semantic validation. Keys that do not form a
// tree are an *Error; a value of the wrong type or an unknown key is one
// of the decoder's problems, and the Config holds the rest.
func decodeTree(root string, kvs []kvstore.KV) (*Config, *decoder, *Error) {
	var tp problems
	tree := map[string]any{}
	for _, kv := range kvs {
		rel, ok := strings.CutPrefix(kv.Key, root+"/")
		if !ok || isFolderKey(kv.Key) {
			continue
		}
		segs := strings.Split(rel, "/")
		if slices.Contains(segs, "") {
			tp.add([]string{rawMark + rel}, "this key has an empty segment (\"//\"); rename it")
			continue
		}
		if bad := insert(tree, segs, string(kv.Value)); bad != nil {
			raw := make([]string, len(bad))
			for i, s := range bad {
				raw[i] = rawMark + s
			}
			tp.add(raw, "this key has a value and also keys below it; delete the value or move the keys")
		}
	}
	if len(tp) > 0 {
		return nil, nil, locateKV(root, tp)
	}
	var cfg Config
	d := decoder{fromKV: true}
	d.decode(nil, tree, reflect.ValueOf(&cfg).Elem())
	return &cfg, &d, nil
}

// insert places one value in the tree. It returns the path of a key that
// is both a value and a folder, unless the value is the marker of an empty
// table, which the keys below make redundant.
func insert(tree map[string]any, segs []string, value string) (conflict []string) {
	m := tree
	for i, seg := range segs[:len(segs)-1] {
		switch cur := m[seg].(type) {
		case map[string]any:
			m = cur
		case nil:
			next := map[string]any{}
			m[seg] = next
			m = next
		case string:
			if cur != emptyMarker {
				return segs[:i+1]
			}
			next := map[string]any{}
			m[seg] = next
			m = next
		}
	}
	last := segs[len(segs)-1]
	if _, isFolder := m[last].(map[string]any); isFolder {
		if value == emptyMarker {
			return nil
		}
		return segs
	}
	m[last] = value
	return nil
}

// locateKV turns problems into an *Error naming store keys, in key order.
func locateKV(root string, probs problems) *Error {
	e := &Error{Source: "store " + root}
	for _, p := range probs {
		e.Problems = append(e.Problems, Problem{Where: root + "/" + kvRelPath(p.path), Message: p.msg})
	}
	slices.SortStableFunc(e.Problems, func(a, b Problem) int { return strings.Compare(a.Where, b.Where) })
	return e
}
