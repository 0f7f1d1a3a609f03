package config

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"
)

// The schema is the Config type itself: field names come from `toml` tags,
// their store names are the same names in kebab case (entryPoints →
// entry-points), a `secret:"true"` tag hides values in diffs, and
// `kv:"-"` keeps a field out of the store.

var configType = reflect.TypeFor[Config]()

// fieldInfo describes one struct field of the schema.
type fieldInfo struct {
	index  int
	name   string // TOML name
	kv     string // store segment
	secret bool
	skipKV bool
}

func fieldsOf(t reflect.Type) []fieldInfo {
	out := make([]fieldInfo, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out = append(out, fieldInfo{
			index:  i,
			name:   name,
			kv:     kebab(name),
			secret: f.Tag.Get("secret") == "true",
			skipKV: f.Tag.Get("kv") == "-",
		})
	}
	return out
}

// kebab turns a camelCase TOML name into the lower-case store segment:
// passHostHeader → pass-host-header, trustedIPs → trusted-ips,
// passTLSClientCert → pass-tls-client-cert.
func kebab(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			// An acronym ends before an upper-case letter followed by a
			// lower-case one, unless only a plural "s" follows (IPs).
			nextStartsWord := i+1 < len(r) && unicode.IsLower(r[i+1]) &&
				unicode.IsUpper(r[i-1]) && !(r[i+1] == 's' && i+2 == len(r))
			if prevLower || nextStartsWord {
				b.WriteByte('-')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// segKind says what a path segment is.
type segKind uint8

const (
	segField segKind = iota
	segKey
	segIndex
	segUnknown // below an unknown field: kept as written
)

// segment is one resolved path segment.
type segment struct {
	kind segKind
	name string // the segment as in the logical path
	kv   string // its store form
}

// rawMark starts a path segment taken verbatim from the store, which
// resolvePath must not map to a schema name even when it looks like one.
const rawMark = "\x00"

// resolvePath types a logical path against the schema.
func resolvePath(path []string) []segment {
	out := make([]segment, 0, len(path))
	t := configType
	for _, seg := range path {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		s := segment{kind: segUnknown, name: seg, kv: seg}
		var next reflect.Type
		switch {
		case strings.HasPrefix(seg, rawMark):
			// Written as found in the store: not a schema name.
			s.name = strings.TrimPrefix(seg, rawMark)
			s.kv = s.name
		case t == nil:
		case t.Kind() == reflect.Struct:
			for _, f := range fieldsOf(t) {
				if f.name == seg {
					s.kind, s.kv = segField, f.kv
					next = t.Field(f.index).Type
				}
			}
		case t.Kind() == reflect.Map:
			s.kind, next = segKey, t.Elem()
		case t.Kind() == reflect.Slice:
			s.kind, next = segIndex, t.Elem()
		}
		t = next
		out = append(out, s)
	}
	return out
}

// dotted renders a logical path as TOML would write it:
// http.routers.web.service, http.routers."a.b".rule,
// http.services.app.loadBalancer.servers[0].url.
func dotted(path []string) string {
	var b strings.Builder
	for i, s := range resolvePath(path) {
		if s.kind == segIndex {
			fmt.Fprintf(&b, "[%s]", s.name)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if isBareKey(s.name) {
			b.WriteString(s.name)
		} else {
			fmt.Fprintf(&b, "%q", s.name)
		}
	}
	return b.String()
}

// kvRelPath renders a logical path as its store key below the version
// root: http/routers/web/service.
func kvRelPath(path []string) string {
	segs := resolvePath(path)
	parts := make([]string, len(segs))
	for i, s := range segs {
		parts[i] = s.kv
	}
	return strings.Join(parts, "/")
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
