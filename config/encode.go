package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Entry is one key of a configuration in the store, relative to the
// version folder: "http/routers/web/rule".
type Entry struct {
	Key   string
	Value string
	// Secret entries are shown as "(hidden)" in diffs.
	Secret bool
}

// Encode returns the store entries of cfg, sorted by key: one scalar per
// key, lists as folders numbered 0, 1, …, a table without keys as the
// value "true". Zero values are left out, so decoding the entries yields
// cfg again. The store section is never encoded. Encode fails only when a
// name cannot be a key segment, which validation reports first.
func Encode(cfg *Config) ([]Entry, error) {
	if cfg == nil {
		return nil, errors.New("encode: no configuration")
	}
	e := &encoder{}
	e.structure("", reflect.ValueOf(cfg).Elem(), false, false)
	if e.err != nil {
		return nil, e.err
	}
	slices.SortFunc(e.out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return e.out, nil
}

type encoder struct {
	out []Entry
	err error
}

func join(base, seg string) string {
	if base == "" {
		return seg
	}
	return base + "/" + seg
}

func (e *encoder) put(key, value string, secret bool) {
	e.out = append(e.out, Entry{Key: key, Value: value, Secret: secret || hasPassword(value)})
}

// hasPassword reports a URL carrying a password, such as a server URL
// with user information.
func hasPassword(value string) bool {
	if !strings.Contains(value, "@") || !strings.Contains(value, "://") {
		return false
	}
	u, err := url.Parse(value)
	if err != nil {
		return false
	}
	_, set := u.User.Password()
	return set
}

// sensitiveName reports a header (or other map key) whose value is likely
// a credential: Authorization, Cookie, X-Api-Key, X-Auth-Token and the
// like.
func sensitiveName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"authorization", "cookie", "token", "secret", "password", "api-key", "apikey"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// value encodes v at key. inItem says v is a list item, a map value or a
// pointer's target, whose zero value must still be stored.
func (e *encoder) value(key string, v reflect.Value, inItem, secret bool) {
	if v.Type() == durationType {
		if v.Int() != 0 || inItem {
			e.put(key, Duration(v.Int()).String(), secret)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		e.value(key, v.Elem(), true, secret)
	case reflect.Struct:
		e.structure(key, v, inItem, secret)
	case reflect.Map:
		for _, k := range v.MapKeys() {
			name := k.String()
			if _, err := kvstore.Join(name); err != nil {
				e.err = fmt.Errorf("encode %s: %q cannot be a key segment: %w", key, name, err)
				return
			}
			e.value(join(key, name), v.MapIndex(k), true, secret || sensitiveName(name))
		}
	case reflect.Slice:
		for i := range v.Len() {
			e.value(join(key, strconv.Itoa(i)), v.Index(i), true, secret)
		}
	case reflect.String:
		if v.String() != "" || inItem {
			e.put(key, v.String(), secret)
		}
	case reflect.Bool:
		if v.Bool() || inItem {
			e.put(key, strconv.FormatBool(v.Bool()), secret)
		}
	case reflect.Int, reflect.Int64:
		if v.Int() != 0 || inItem {
			e.put(key, strconv.FormatInt(v.Int(), 10), secret)
		}
	case reflect.Float64:
		if v.Float() != 0 || inItem {
			e.put(key, strconv.FormatFloat(v.Float(), 'g', -1, 64), secret)
		}
	default:
		e.err = fmt.Errorf("encode %s: unsupported type %s", key, v.Type())
	}
}

// structure encodes a struct's fields; a struct that yields no key at all
// but must be kept (inItem) is stored as the value "true".
func (e *encoder) structure(key string, v reflect.Value, inItem, secret bool) {
	n := len(e.out)
	for _, f := range fieldsOf(v.Type()) {
		if f.skipKV {
			continue
		}
		e.value(join(key, f.kv), v.Field(f.index), false, secret || f.secret)
	}
	if len(e.out) == n && inItem {
		e.put(key, emptyMarker, secret)
	}
}

// Redacted returns a copy of cfg with every secret value (those Encode
// marks Secret: basic-auth users, sensitive headers, URLs with a password)
// replaced by "(hidden)", for showing the configuration. The copy is not
// validated and must not be served from.
func Redacted(cfg *Config) (*Config, error) {
	entries, err := Encode(cfg)
	if err != nil {
		return nil, err
	}
	const root = "redacted"
	kvs := make([]kvstore.KV, 0, len(entries))
	for _, e := range entries {
		v := e.Value
		if e.Secret {
			v = "(hidden)"
		}
		kvs = append(kvs, kvstore.KV{Key: root + "/" + e.Key, Value: []byte(v)})
	}
	out, perr := decodeEntries(root, kvs)
	if perr != nil {
		return nil, perr
	}
	return out, nil
}
