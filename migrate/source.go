package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/tollgate-proxy/tollgate/config"
)

// A source path is the list of keys leading to a value, with array items
// written "[0]", "[1]", …: ["acme", "domains", "[0]", "main"].

func pathKey(path []string) string { return config.PathKey(path) }

// indexSeg is the path segment of the n-th item of a list: "[n]".
func indexSeg(n int) string { return "[" + strconv.Itoa(n) + "]" }

func isIndexSeg(s string) bool {
	return strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") && len(s) > 2
}

// dottedPath prints a source path as TOML writes keys:
// frontends."a.b".routes.main.rule, acme.domains[0].main.
func dottedPath(path []string) string {
	var b strings.Builder
	for i, s := range path {
		if isIndexSeg(s) {
			b.WriteString(s)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tomlKey(s))
	}
	return b.String()
}

// decodeSource decodes doc into a generic tree and indexes the line of
// every table and key.
func decodeSource(name string, doc []byte) (map[string]any, map[string]int, error) {
	fail := func(where, format string, args ...any) error {
		return &Error{Source: name, Problems: []Item{{Where: where, Message: fmt.Sprintf(format, args...)}}}
	}
	if len(doc) > config.MaxFileBytes {
		return nil, nil, fail(name, "%d bytes, at most %d allowed", len(doc), config.MaxFileBytes)
	}
	if n := countTables(doc); n > config.MaxTables {
		return nil, nil, fail(name, "%d table headers, at most %d allowed", n, config.MaxTables)
	}
	var tree map[string]any
	if err := toml.Unmarshal(doc, &tree); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			msg := strings.TrimPrefix(de.Error(), "toml: ")
			if k := de.Key(); len(k) > 0 && strings.HasSuffix(msg, " is already defined") {
				msg = fmt.Sprintf("%s is defined twice; Traefik would not start with this file either", dottedPath(k))
			}
			return nil, nil, fail(fmt.Sprintf("%s:%d:%d", name, row, col), "%s", msg)
		}
		return nil, nil, fail(name, "%s", strings.TrimPrefix(err.Error(), "toml: "))
	}
	if tree == nil {
		tree = map[string]any{}
	}
	return tree, config.KeyLines(doc, indexSeg), nil
}

func countTables(doc []byte) int {
	n := 0
	for line := range bytes.Lines(doc) {
		if l := bytes.TrimLeft(line, " \t"); len(l) > 0 && l[0] == '[' {
			n++
		}
	}
	return n
}

// node is one table of the source. Reading a key through it marks the key
// as handled; whatever no conversion step read is reported as unknown at
// the end, so that nothing is dropped silently. Keys are matched exactly
// or else ignoring case, as Traefik 1.x's TOML decoder matched them.
type node struct {
	c    *converter
	path []string
	m    map[string]any
	used map[string]bool
}

func (c *converter) newNode(path []string, m map[string]any) *node {
	n := &node{c: c, path: slices.Clip(path), m: m, used: map[string]bool{}}
	c.nodes = append(c.nodes, n)
	return n
}

// find returns the key spelled name in n: an exact match, else the first
// (in sorted order) that matches ignoring case.
func (n *node) find(name string) (string, bool) {
	if _, ok := n.m[name]; ok {
		return name, true
	}
	for _, k := range slices.Sorted(maps.Keys(n.m)) {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

// at is the path of key in n.
func (n *node) at(key string) []string { return append(slices.Clip(n.path), key) }

// has reports whether name is present, without marking it.
func (n *node) has(name string) bool {
	_, ok := n.find(name)
	return ok
}

// get returns the value of name and its path, marking it handled.
func (n *node) get(name string) (any, []string, bool) {
	k, ok := n.find(name)
	if !ok {
		return nil, nil, false
	}
	n.used[k] = true
	return n.m[k], n.at(k), true
}

// skip marks name as handled without reading it (it was reported).
func (n *node) skip(name string) {
	if k, ok := n.find(name); ok {
		n.used[k] = true
	}
}

// where is the source location of name in n, or of n when it is absent.
func (n *node) where(name string) []string {
	if k, ok := n.find(name); ok {
		return n.at(k)
	}
	return n.path
}

func (n *node) str(name string) (string, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		n.c.wrongType(path, "a string", v)
		return "", false
	}
	return s, true
}

func (n *node) boolean(name string) (bool, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		n.c.wrongType(path, "true or false", v)
		return false, false
	}
	return b, true
}

func (n *node) integer(name string) (int64, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return 0, false
	}
	i, isInt := v.(int64)
	if !isInt {
		n.c.wrongType(path, "an integer", v)
		return 0, false
	}
	return i, true
}

// duration reads a duration as Traefik 1.x wrote them: a string such as
// "10s", or a number of seconds (an integer, or a string of digits).
func (n *node) duration(name string) (time.Duration, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case int64:
		if x < 0 || x > int64(1<<62)/int64(time.Second) {
			n.c.problem(path, "duration %d seconds is out of range", x)
			return 0, false
		}
		return time.Duration(x) * time.Second, true
	case string:
		if secs, err := strconv.ParseInt(x, 10, 32); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		d, err := time.ParseDuration(x)
		if err != nil || d < 0 {
			n.c.problem(path, "%q is not a duration such as \"10s\" or a number of seconds", truncate(x, 60))
			return 0, false
		}
		return d, true
	}
	n.c.wrongType(path, "a duration such as \"10s\"", v)
	return 0, false
}

// strs reads an array of strings.
func (n *node) strs(name string) ([]string, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return nil, false
	}
	arr, isArr := v.([]any)
	if !isArr {
		n.c.wrongType(path, "an array of strings", v)
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			n.c.wrongType(append(slices.Clip(path), indexSeg(i)), "a string", e)
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// table returns the sub-table name.
func (n *node) table(name string) (*node, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return nil, false
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		n.c.wrongType(path, "a table", v)
		return nil, false
	}
	return n.c.newNode(path, m), true
}

// tables returns the array of tables name ([[name]]).
func (n *node) tables(name string) ([]*node, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return nil, false
	}
	arr, isArr := v.([]any)
	if !isArr {
		n.c.wrongType(path, "an array of tables", v)
		return nil, false
	}
	out := make([]*node, 0, len(arr))
	for i, e := range arr {
		m, isMap := e.(map[string]any)
		ip := append(slices.Clip(path), indexSeg(i))
		if !isMap {
			n.c.wrongType(ip, "a table", e)
			return nil, false
		}
		out = append(out, n.c.newNode(ip, m))
	}
	return out, true
}

// named returns the sub-tables of n, by name in sorted order, for tables
// whose keys are names ([frontends.NAME]). Every key is marked handled; a
// value that is not a table is a problem.
func (n *node) named() []*node {
	var out []*node
	for _, k := range slices.Sorted(maps.Keys(n.m)) {
		n.used[k] = true
		m, ok := n.m[k].(map[string]any)
		if !ok {
			n.c.wrongType(n.at(k), "a table", n.m[k])
			continue
		}
		out = append(out, n.c.newNode(n.at(k), m))
	}
	return out
}

// name is the last key of n's path.
func (n *node) name() string {
	if len(n.path) == 0 {
		return ""
	}
	return n.path[len(n.path)-1]
}

// skipAll marks every key handled: n was reported as a whole.
func (n *node) skipAll() {
	for k := range n.m {
		n.used[k] = true
	}
}

// leftovers reports every key no step read as unknown.
func (c *converter) leftovers() {
	for _, n := range c.nodes {
		for _, k := range slices.Sorted(maps.Keys(n.m)) {
			if n.used[k] {
				continue
			}
			what := "key"
			if _, ok := n.m[k].(map[string]any); ok {
				what = "table"
			}
			c.add(n.at(k), Unknown, fmt.Sprintf("unknown %s %q: not a Traefik 1.x setting here; not converted", what, k),
				"check its spelling against the Traefik 1.7 documentation, or remove it")
		}
	}
}

// describe names the TOML type of a decoded value.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", truncate(x, 40))
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the float %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	}
	return "a date or time"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
