package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// decoder fills a Config from a generic tree: the tables, lists and scalars
// of a TOML document, or the folders and string values of the store. It
// never stops at the first problem; it records each one with its logical
// path, leaves that value at its zero and goes on with the next key, so
// that the Config it fills can still be validated.
type decoder struct {
	// fromKV says the tree came from the store: fields are named in
	// kebab case, lists are folders numbered 0, 1, …, every scalar is a
	// string to parse, and the value "true" stands for an empty table.
	fromKV bool
	probs  problems
	// meant lists, for unknown keys close to a known one, the path of the
	// key they likely meant: validation does not then also report that
	// key as missing.
	meant [][]string
	// secret is above zero while decoding a secret field, whose values
	// must not appear in messages.
	secret int
}

var durationType = reflect.TypeFor[Duration]()

// emptyMarker is the store value that stands for a table without keys,
// such as [acme.tlsChallenge] or a middleware without settings.
const emptyMarker = "true"

func (d *decoder) decode(path []string, in any, out reflect.Value) {
	t := out.Type()
	if t == durationType {
		d.duration(path, in, out)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		v := reflect.New(t.Elem())
		if t.Elem().Kind() == reflect.Struct && d.isMarker(in) {
			out.Set(v)
			return
		}
		// Set even with problems: validation then checks the rest of
		// the object (see validateDecoded).
		d.decode(path, in, v.Elem())
		out.Set(v)
	case reflect.Struct:
		d.structure(path, in, out)
	case reflect.Map:
		d.mapping(path, in, out)
	case reflect.Slice:
		d.list(path, in, out)
	default:
		d.scalar(path, in, out)
	}
}

func (d *decoder) isMarker(in any) bool {
	s, ok := in.(string)
	return ok && d.fromKV && s == emptyMarker
}

func (d *decoder) structure(path []string, in any, out reflect.Value) {
	if d.isMarker(in) {
		return
	}
	m, ok := in.(map[string]any)
	if !ok {
		d.mismatch(path, "a table", in)
		return
	}
	fields := fieldsOf(out.Type())
	for _, key := range sortedKeys(m) {
		i := slices.IndexFunc(fields, func(f fieldInfo) bool {
			if d.fromKV {
				return f.kv == key && !f.skipKV
			}
			return f.name == key
		})
		if i < 0 {
			seg := key
			if d.fromKV {
				seg = rawMark + key
			}
			d.unknown(append(path, seg), key, fields)
			continue
		}
		f := fields[i]
		if f.secret {
			d.secret++
		}
		d.decode(append(path, f.name), m[key], out.Field(f.index))
		if f.secret {
			d.secret--
		}
	}
}

func (d *decoder) mapping(path []string, in any, out reflect.Value) {
	m, ok := in.(map[string]any)
	if !ok {
		d.mismatch(path, "a table", in)
		return
	}
	if len(m) == 0 {
		return
	}
	t := out.Type()
	res := reflect.MakeMapWithSize(t, len(m))
	for _, key := range sortedKeys(m) {
		v := reflect.New(t.Elem()).Elem()
		d.decode(append(path, key), m[key], v)
		res.SetMapIndex(reflect.ValueOf(key), v)
	}
	out.Set(res)
}

func (d *decoder) list(path []string, in any, out reflect.Value) {
	items, ok := in.([]any)
	if m, isMap := in.(map[string]any); isMap && d.fromKV {
		items, ok = d.numbered(path, m)
		if !ok {
			return
		}
	}
	if !ok {
		msg := fmt.Sprintf("expected a list, found %s", d.describe(in))
		if s, isString := in.(string); isString && !d.fromKV && d.secret == 0 {
			msg += fmt.Sprintf("; write [%q]", s)
		}
		d.probs.add(path, "%s", msg)
		return
	}
	if len(items) == 0 {
		return
	}
	res := reflect.MakeSlice(out.Type(), len(items), len(items))
	for i, item := range items {
		d.decode(append(path, strconv.Itoa(i)), item, res.Index(i))
	}
	out.Set(res)
}

// numbered turns a store folder whose keys are 0, 1, 2, … into a list.
func (d *decoder) numbered(path []string, m map[string]any) ([]any, bool) {
	items := make([]any, len(m))
	for key, v := range m {
		i, err := strconv.Atoi(key)
		if err != nil || !isIndex(key) {
			d.probs.add(append(path, key), "list items are keys numbered 0, 1, 2, …; rename %q to the next free number", key)
			return nil, false
		}
		if i >= len(m) {
			d.probs.add(append(path, key), "list items must be numbered 0 to %d without gaps; renumber the items", len(m)-1)
			return nil, false
		}
		items[i] = v
	}
	return items, true
}

func (d *decoder) scalar(path []string, in any, out reflect.Value) {
	if d.fromKV {
		s, ok := in.(string)
		if !ok {
			d.mismatch(path, want(out.Type()), in)
			return
		}
		d.parseScalar(path, s, out)
		return
	}
	switch out.Kind() {
	case reflect.String:
		if s, ok := in.(string); ok {
			out.SetString(s)
			return
		}
	case reflect.Bool:
		if b, ok := in.(bool); ok {
			out.SetBool(b)
			return
		}
	case reflect.Int, reflect.Int64:
		if n, ok := in.(int64); ok {
			if out.OverflowInt(n) {
				d.probs.add(path, "%d is too large", n)
				return
			}
			out.SetInt(n)
			return
		}
	case reflect.Float64:
		switch n := in.(type) {
		case float64:
			d.setFloat(path, n, out)
			return
		case int64:
			out.SetFloat(float64(n))
			return
		}
	}
	d.mismatch(path, want(out.Type()), in)
}

func (d *decoder) parseScalar(path []string, s string, out reflect.Value) {
	switch out.Kind() {
	case reflect.String:
		out.SetString(s)
	case reflect.Bool:
		switch s {
		case "true":
			out.SetBool(true)
		case "false":
			out.SetBool(false)
		default:
			d.probs.add(path, "expected true or false, found %s", d.quote(s))
		}
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || out.OverflowInt(n) {
			d.probs.add(path, "expected an integer, found %s", d.quote(s))
			return
		}
		out.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.probs.add(path, "expected a number, found %s", d.quote(s))
			return
		}
		d.setFloat(path, f, out)
	default:
		d.probs.add(path, "unsupported type %s", out.Type())
	}
}

func (d *decoder) setFloat(path []string, f float64, out reflect.Value) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.probs.add(path, "expected a finite number, found %v", f)
		return
	}
	out.SetFloat(f)
}

func (d *decoder) duration(path []string, in any, out reflect.Value) {
	switch v := in.(type) {
	case string:
		dur, err := parseDuration(v)
		if err != nil {
			d.probs.add(path, "%v", err)
			return
		}
		out.SetInt(int64(dur))
	case int64:
		d.probs.add(path, "expected a duration string, found the number %d; write \"%ds\" for seconds", v, v)
	default:
		d.mismatch(path, want(out.Type()), in)
	}
}

func (d *decoder) mismatch(path []string, wanted string, in any) {
	if d.fromKV {
		if _, isFolder := in.(map[string]any); isFolder {
			d.probs.add(path, "expected a single value (%s) here, found a folder of keys", wanted)
			return
		}
		if wanted == "a table" {
			d.probs.add(path, "expected a folder of keys here, found a value; move it below a key of its own")
			return
		}
	}
	d.probs.add(path, "expected %s, found %s", wanted, d.describe(in))
}

// unknown reports a key the schema does not have, with the closest valid
// name or the list of valid ones.
func (d *decoder) unknown(path []string, key string, fields []fieldInfo) {
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		if d.fromKV {
			if f.skipKV {
				continue
			}
			names = append(names, f.kv)
		} else {
			names = append(names, f.name)
		}
	}
	if d.fromKV && key == "store" {
		d.probs.add(path, "the store section is never kept in the store: give each replica --kv and its credentials; delete this key")
		return
	}
	if hint := unsupportedHint(path, key); hint != "" {
		d.probs.add(path, "%s", hint)
		return
	}
	if hint := foreignKeyHint(path, key); hint != "" {
		d.probs.add(path, "unknown key %q: %s", key, hint)
		return
	}
	if s := Closest(key, names); s != "" {
		d.probs.add(path, "unknown key %q; did you mean %q?", key, s)
		for _, f := range fields {
			if s == f.name || d.fromKV && s == f.kv {
				d.meant = append(d.meant, append(clonePath(path[:len(path)-1]), f.name))
			}
		}
		return
	}
	d.probs.add(path, "unknown key %q; valid keys here: %s", key, strings.Join(names, ", "))
}

// foreignKeyHint explains keys that Traefik users may bring along; path
// is the key's path, the key last.
func foreignKeyHint(path []string, key string) string {
	if key == "file" && len(path) == 2 && path[0] == "providers" {
		return "tollgate reads its configuration from this file or from the store; remove [providers.file]"
	}
	switch key {
	case "ipWhiteList":
		return `Traefik v3 renamed it "ipAllowList", which tollgate uses`
	case "certificatesResolvers":
		return "tollgate has a single [acme] section instead of certificate resolvers"
	case "certResolver":
		return "tollgate has a single [acme] section; remove certResolver"
	}
	if len(path) == 1 && slices.Contains(traefikV1Sections, key) && key != "web" && key != "rest" {
		return "this is a Traefik 1.x key; convert a 1.x file with `tollgate migrate traefik-v1 FILE --out tollgate.toml` (see docs/migration.md)"
	}
	return ""
}

func want(t reflect.Type) string {
	if t == durationType {
		return `a duration such as "10s"`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	}
	return "a table"
}

// describe names a value for a message, hiding it inside a secret field.
func (d *decoder) describe(in any) string {
	if _, isScalar := in.(string); isScalar && d.secret > 0 {
		return "a string (hidden)"
	}
	return describe(in)
}

// quote quotes a store value for a message, hiding it inside a secret
// field.
func (d *decoder) quote(s string) string {
	if d.secret > 0 {
		return "(hidden)"
	}
	return fmt.Sprintf("%q", truncate(s, 40))
}

func describe(in any) string {
	switch v := in.(type) {
	case string:
		return fmt.Sprintf("the string %q", truncate(v, 40))
	case bool:
		return fmt.Sprintf("%v", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the number %v", v)
	case map[string]any:
		return "a table"
	case []any:
		return "a list"
	case nil:
		return "nothing"
	}
	return "a date or time"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Closest returns the name nearest to key when it is close enough to be
// a likely typo, else "".
func Closest(key string, names []string) string {
	best, bestDist := "", -1
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return n
		}
		dist := editDistance(strings.ToLower(key), strings.ToLower(n))
		if bestDist < 0 || dist < bestDist {
			best, bestDist = n, dist
		}
	}
	if bestDist >= 0 && bestDist <= max(2, len(key)/3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
