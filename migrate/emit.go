package migrate

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tollgate-proxy/tollgate/config"
)

// emitter writes a config.Config as TOML: sections in the order of the
// Config struct, named objects sorted by name, keys in the order of their
// struct fields, and only what is set. A table is written with a header
// when it has keys of its own or nothing at all (its presence is what
// counts, as for [acme.tlsChallenge]); a table holding only sub-tables is
// implied by them.
type emitter struct {
	b        strings.Builder
	comments map[string][]string
}

var durationType = reflect.TypeFor[config.Duration]()

// emitConfig renders cfg with a header comment and comments above tables.
func emitConfig(cfg *config.Config, header []string, comments map[string][]string) []byte {
	e := &emitter{comments: comments}
	for _, h := range header {
		e.b.WriteString("# " + h + "\n")
	}
	e.table(nil, reflect.ValueOf(cfg).Elem(), nil, false)
	return []byte(e.b.String())
}

// field is one struct field with its TOML name.
type field struct {
	name string
	v    reflect.Value
}

func fieldsOf(v reflect.Value) []field {
	var out []field
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag == "" || tag == "-" || !t.Field(i).IsExported() {
			continue
		}
		out = append(out, field{tag, v.Field(i)})
	}
	return out
}

// isTable reports whether a value of type t is written as a table (or
// tables) rather than as a key.
func isTable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer:
		return t.Elem().Kind() == reflect.Struct
	case reflect.Struct:
		return t != durationType
	case reflect.Map:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Struct
	}
	return false
}

// table writes the struct v at path. pending are comments of implied
// tables above, to write at the first header below.
func (e *emitter) table(path []string, v reflect.Value, pending []string, arrayItem bool) {
	pending = append(slices.Clip(pending), e.comments[dottedTOML(path)]...)
	fields := fieldsOf(v)
	var keys []string
	var children []field
	for _, f := range fields {
		if isTable(f.v.Type()) {
			if !isEmpty(f.v) {
				children = append(children, f)
			}
			continue
		}
		if s, ok := scalar(f.v); ok {
			keys = append(keys, tomlKey(f.name)+" = "+s)
		}
	}
	if path != nil && (arrayItem || len(keys) > 0 || len(children) == 0) {
		e.header(path, pending, arrayItem)
		pending = nil
	} else if path == nil && len(keys) > 0 {
		e.b.WriteString("\n")
	}
	for _, k := range keys {
		e.b.WriteString(k + "\n")
	}
	for _, f := range children {
		e.child(append(slices.Clip(path), f.name), f.v, pending)
		pending = nil
	}
}

// child writes a table-valued field.
func (e *emitter) child(path []string, v reflect.Value, pending []string) {
	switch v.Kind() {
	case reflect.Pointer:
		e.table(path, v.Elem(), pending, false)
	case reflect.Struct:
		e.table(path, v, pending, false)
	case reflect.Map:
		if v.Type().Elem().Kind() == reflect.String {
			e.stringMap(path, v, pending)
			return
		}
		for _, k := range sortedMapKeys(v) {
			e.table(append(slices.Clip(path), k), v.MapIndex(reflect.ValueOf(k)).Elem(), pending, false)
			pending = nil
		}
	case reflect.Slice:
		for i := range v.Len() {
			e.table(path, v.Index(i), pending, true)
			pending = nil
		}
	}
}

func sortedMapKeys(v reflect.Value) []string {
	keys := make([]string, 0, v.Len())
	for _, k := range v.MapKeys() {
		keys = append(keys, k.String())
	}
	slices.Sort(keys)
	return keys
}

// stringMap writes a map of strings as a table.
func (e *emitter) stringMap(path []string, v reflect.Value, pending []string) {
	e.header(path, pending, false)
	for _, k := range sortedMapKeys(v) {
		e.b.WriteString(tomlKey(k) + " = " + tomlString(v.MapIndex(reflect.ValueOf(k)).String()) + "\n")
	}
}

func (e *emitter) header(path []string, comments []string, array bool) {
	e.b.WriteString("\n")
	for _, c := range comments {
		e.b.WriteString("# " + c + "\n")
	}
	if array {
		e.b.WriteString("[[" + dottedTOML(path) + "]]\n")
	} else {
		e.b.WriteString("[" + dottedTOML(path) + "]\n")
	}
}

// isEmpty reports whether a table-valued field is absent.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Map:
		return v.IsNil() || (v.Kind() == reflect.Map && v.Len() == 0)
	case reflect.Slice:
		return v.Len() == 0
	}
	return false
}

// scalar renders a key's value; ok is false when it is unset (the zero
// value of a plain field, a nil pointer, an empty list).
func scalar(v reflect.Value) (string, bool) {
	if v.Type() == durationType {
		if v.Int() == 0 {
			return "", false
		}
		return tomlString(config.Duration(v.Int()).String()), true
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "", false
		}
		return value(v.Elem()), true
	case reflect.String:
		return value(v), v.String() != ""
	case reflect.Bool:
		return value(v), v.Bool()
	case reflect.Int, reflect.Int64:
		return value(v), v.Int() != 0
	case reflect.Slice:
		if v.Len() == 0 {
			return "", false
		}
		items := make([]string, v.Len())
		for i := range v.Len() {
			items[i] = value(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]", true
	}
	return "", false
}

// value renders a plain value.
func value(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return tomlString(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		s := strconv.FormatFloat(v.Float(), 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return s
	}
	return tomlString(fmt.Sprint(v.Interface()))
}

// dottedTOML writes a path as a TOML key; it is also how config.Problem
// paths name tables, for names without dots or quotes.
func dottedTOML(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = tomlKey(p)
	}
	return strings.Join(parts, ".")
}

// tomlKey writes a key bare when TOML allows it, else quoted.
func tomlKey(k string) string {
	if k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return k
	}
	return tomlString(k)
}

// dn writes a tollgate name as config.Problem paths write it: bare, or
// quoted when it has a dot.
func dn(name string) string {
	if tomlKey(name) == name {
		return name
	}
	return strconv.Quote(name)
}

// tomlString writes s as a TOML string: a literal string when it has
// backslashes and nothing a literal string cannot hold (regular
// expressions read better so), else a basic string with escapes.
func tomlString(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.Contains(s, `\`) && !strings.ContainsAny(s, "'\n\r") && printable(s) {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}
