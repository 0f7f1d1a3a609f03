package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Limits on a configuration file, far above any real configuration, that
// keep a hostile or broken file from tying a replica up.
const (
	// MaxFileBytes is the largest file accepted.
	MaxFileBytes = 8 << 20
	// MaxTables is the most table headers ([…] and [[…]]) accepted.
	MaxTables = 50000
)

// LoadFile reads, decodes and validates a TOML configuration file. An
// invalid file yields an *Error listing every problem with its
// file:line:column.
func LoadFile(path string) (*Config, error) {
	return LoadFileWith(path, LoadOptions{})
}

// LoadOptions are the choices of LoadFileWith and ParseWith.
type LoadOptions struct {
	// ReadFiles also reads the certificate, key and CA files the
	// configuration names (server and client certificates, CAs of
	// clients and of servers) and reports each that cannot be used as a
	// problem at the key that names it. Without it, only the replica that
	// applies the configuration reads them.
	ReadFiles bool
}

// LoadFileWith is LoadFile with options.
func LoadFileWith(path string, o LoadOptions) (*Config, error) {
	doc, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return ParseWith(path, doc, o)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("read configuration %s: %d bytes, at most %d allowed", path, st.Size(), MaxFileBytes)
	}
	doc := make([]byte, st.Size())
	if _, err := io.ReadFull(f, doc); err != nil {
		return nil, fmt.Errorf("read configuration %s: %w", path, err)
	}
	return doc, nil
}

// Parse decodes and validates a TOML document; name (usually the file
// name) prefixes every position in errors.
func Parse(name string, doc []byte) (*Config, error) {
	return ParseWith(name, doc, LoadOptions{})
}

// ParseWith is Parse with options.
func ParseWith(name string, doc []byte, o LoadOptions) (*Config, error) {
	cfg, src, decoded, err := decodeTOML(name, doc)
	if err != nil {
		return nil, err
	}
	probs := validateDecoded(cfg, decoded)
	if len(probs) == 0 && o.ReadFiles {
		v := &validator{cfg: cfg}
		v.files()
		probs = v.ps
	}
	if len(probs) > 0 {
		return nil, src.locate(probs)
	}
	return cfg, nil
}

// decodeTOML decodes a document strictly, without semantic validation. A
// syntax error, a YAML or JSON document and a Traefik 1.x configuration
// are an *Error of one problem; a value of the wrong type or an unknown key is
// one of the decoder's problems, and the Config holds the rest.
func decodeTOML(name string, doc []byte) (*Config, *tomlSource, *decoder, *Error) {
	src := &tomlSource{name: name}
	if len(doc) > MaxFileBytes {
		return nil, src, nil, &Error{Source: name, Problems: []Problem{{
			Where: name, Message: fmt.Sprintf("%d bytes, at most %d allowed", len(doc), MaxFileBytes)}}}
	}
	var tree map[string]any
	if n := countTables(doc); n > MaxTables {
		return nil, src, nil, &Error{Source: name, Problems: []Problem{{
			Where: name, Message: fmt.Sprintf("%d table headers, at most %d allowed", n, MaxTables)}}}
	}
	if err := toml.Unmarshal(doc, &tree); err != nil {
		if format := foreignFormat(name, doc); format != "" {
			return nil, src, nil, &Error{Source: name, Problems: []Problem{foreignFormatProblem(name, format)}}
		}
		return nil, src, nil, &Error{Source: name, Problems: []Problem{syntaxProblem(name, doc, err)}}
	}
	// A Traefik 1.x file would yield a problem for nearly every key; one
	// problem pointing at the converter says more.
	if len(traefikV1Markers(tree)) >= traefikV1Threshold {
		return nil, src, nil, &Error{Source: name, Problems: []Problem{traefikV1Problem(name)}}
	}
	src.pos = positions(doc)
	var cfg Config
	d := decoder{}
	d.decode(nil, tree, reflect.ValueOf(&cfg).Elem())
	return &cfg, src, &d, nil
}

// countTables counts the lines that start a table ("[…]" or "[[…]]"),
// which bounds the decoder's work: its check for tables defined twice
// grows with the square of their number.
func countTables(doc []byte) int {
	n := 0
	for line := range bytes.Lines(doc) {
		if l := bytes.TrimLeft(line, " \t"); len(l) > 0 && l[0] == '[' {
			n++
		}
	}
	return n
}

func syntaxProblem(name string, doc []byte, err error) Problem {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		col = runeColumn(doc, row, col)
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 && strings.HasSuffix(msg, " is already defined") {
			msg = fmt.Sprintf("%s is defined twice; keep one", dotted(k))
		}
		return Problem{Where: fmt.Sprintf("%s:%d:%d", name, row, col), Message: msg}
	}
	return Problem{Where: name, Message: strings.TrimPrefix(err.Error(), "toml: ")}
}

// tomlSource locates problems in a TOML document.
type tomlSource struct {
	name string
	pos  map[string]position
}

type position struct{ line, col int }

// locate turns problems into an *Error sorted by position.
func (s *tomlSource) locate(probs problems) *Error {
	type located struct {
		p   Problem
		pos position
	}
	out := make([]located, 0, len(probs))
	for _, p := range probs {
		pos, where := s.where(p.path)
		out = append(out, located{Problem{Where: where, Path: dotted(p.path), Message: p.msg}, pos})
	}
	slices.SortStableFunc(out, func(a, b located) int {
		if a.pos.line != b.pos.line {
			return a.pos.line - b.pos.line
		}
		return a.pos.col - b.pos.col
	})
	e := &Error{Source: s.name}
	for _, l := range out {
		e.Problems = append(e.Problems, l.p)
	}
	return e
}

// where finds the position of path or, for a key that is not written
// (a missing required key), of the nearest table above it.
func (s *tomlSource) where(path []string) (position, string) {
	for n := len(path); n > 0; n-- {
		if p, ok := s.pos[pathKey(path[:n])]; ok {
			return p, fmt.Sprintf("%s:%d:%d", s.name, p.line, p.col)
		}
	}
	return position{}, s.name
}

func pathKey(path []string) string { return strings.Join(path, "\x00") }

// PathKey is the key KeyLines files a path under: its keys joined with a
// NUL byte, which no key can hold.
func PathKey(path []string) string { return pathKey(path) }

// KeyLines maps every table, key and list item of a valid TOML document to
// the line (from 1) where it is first written, under PathKey of its path.
// In paths, item names the n-th item of a list or of an array of tables
// (strconv.Itoa numbers them "0", "1", …). Paths deeper than 24 keys are
// not recorded.
func KeyLines(doc []byte, item func(n int) string) map[string]int {
	pos := indexPositions(doc, item)
	lines := make(map[string]int, len(pos))
	for k, p := range pos {
		lines[k] = p.line
	}
	return lines
}

// positions maps every table, key and list item of a valid document to
// where it is written. Paths are logical: list items are numbered.
func positions(doc []byte) map[string]position { return indexPositions(doc, strconv.Itoa) }

func indexPositions(doc []byte, item func(int) string) map[string]position {
	ix := &posIndex{doc: doc, pos: map[string]position{}, arrays: map[string]int{}, lines: lineStarts(doc), item: item}
	var p unstable.Parser
	p.Reset(doc)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			keys, first := keyParts(e.Key())
			table = ix.resolve(keys, first)
		case unstable.ArrayTable:
			keys, first := keyParts(e.Key())
			if len(keys) == 0 {
				continue
			}
			parent := ix.resolve(keys[:len(keys)-1], first)
			full := append(parent, keys[len(keys)-1])
			table = full
			if len(full) <= maxIndexDepth {
				n := ix.arrays[pathKey(full)]
				ix.arrays[pathKey(full)] = n + 1
				ix.record(full, first)
				table = append(slices.Clip(full), ix.item(n))
				ix.record(table, first)
			}
		case unstable.KeyValue:
			ix.keyValue(table, e)
		}
	}
	return ix.pos
}

type posIndex struct {
	doc    []byte
	pos    map[string]position
	arrays map[string]int // array-of-tables path → items so far
	lines  []int
	item   func(int) string // names list items in paths
}

// maxIndexDepth bounds the paths positions records. The schema is far
// shallower; deeper keys are unknown anyway, reported at a shallower
// level, and capping keeps a document of very long dotted keys linear.
const maxIndexDepth = 24

// resolve turns a header's keys into a logical path, recording the
// position of each table it names or implies: a key naming an array of
// tables continues in its last item.
func (ix *posIndex) resolve(keys []string, at unstable.Range) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k)
		if len(out) > maxIndexDepth {
			continue
		}
		ix.record(out, at)
		if n, ok := ix.arrays[pathKey(out)]; ok {
			out = append(out, ix.item(n-1))
		}
	}
	return out
}

func (ix *posIndex) keyValue(table []string, e *unstable.Node) {
	keys, first := keyParts(e.Key())
	path := slices.Clip(table)
	for _, k := range keys {
		path = append(path, k)
		ix.record(path, first)
	}
	ix.value(path, e.Value())
}

func (ix *posIndex) value(path []string, v *unstable.Node) {
	if v == nil || len(path) > maxIndexDepth {
		return
	}
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				ix.keyValue(path, kv)
			}
		}
	case unstable.Array:
		it := v.Children()
		i := 0
		for it.Next() {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			item := append(slices.Clip(path), ix.item(i))
			i++
			if n.Raw.Length > 0 {
				ix.record(item, n.Raw)
			}
			ix.value(item, n)
		}
	}
}

func (ix *posIndex) record(path []string, r unstable.Range) {
	if len(path) > maxIndexDepth {
		return
	}
	k := pathKey(path)
	if _, ok := ix.pos[k]; ok {
		return
	}
	ix.pos[k] = ix.position(int(r.Offset))
}

// position converts a byte offset to a line and a column counted in
// characters, as editors show them.
func (ix *posIndex) position(offset int) position {
	i, _ := slices.BinarySearch(ix.lines, offset+1)
	line := i // lines[i-1] <= offset
	return position{line: line, col: utf8.RuneCount(ix.doc[ix.lines[line-1]:offset]) + 1}
}

// runeColumn turns a 1-based byte column on a 1-based line into a
// character column.
func runeColumn(doc []byte, row, col int) int {
	starts := lineStarts(doc)
	if row < 1 || row > len(starts) {
		return col
	}
	line := doc[starts[row-1]:]
	if col-1 > len(line) || col < 1 {
		return col
	}
	return utf8.RuneCount(line[:col-1]) + 1
}

func lineStarts(doc []byte) []int {
	starts := []int{0}
	for i, c := range doc {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

func keyParts(it unstable.Iterator) ([]string, unstable.Range) {
	var keys []string
	var first unstable.Range
	for it.Next() {
		n := it.Node()
		if keys == nil {
			first = n.Raw
		}
		keys = append(keys, string(n.Data))
	}
	return keys, first
}
