package migrate

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Kind says what became of one part of the source configuration.
type Kind string

// The kinds of report items.
const (
	// Converted means the part was carried over with the same meaning.
	Converted Kind = "converted"
	// Changed means the part was carried over but behaves differently in
	// tollgate; the item's advice says how.
	Changed Kind = "changed"
	// Unsupported means tollgate has no equivalent: the part was not
	// converted. The advice says what to do instead.
	Unsupported Kind = "unsupported"
	// Unknown means the key is not one Traefik 1.x reads (a typo, or a key
	// of another version): it was not converted.
	Unknown Kind = "unknown"
	// Action means something must be done by hand before the converted
	// configuration works as the old one did.
	Action Kind = "action"
)

// kinds lists the kinds in the order summaries count them.
var kinds = []Kind{Converted, Changed, Unsupported, Unknown, Action}

// Item is one line of a conversion report.
type Item struct {
	// Where locates the source: "traefik.toml:12" (file and line), or
	// the file name alone for what no single line holds.
	Where string
	// Key is the source key in dotted form, such as
	// "frontends.app.routes.main.rule"; empty for the file as a whole.
	Key string
	// Kind says what became of it.
	Kind Kind
	// Message says what was done.
	Message string
	// Advice says what to check or do; it may be empty.
	Advice string

	src  int // for sorting: 0 for the file, then each manifest in turn
	line int // for sorting; 0 when unknown
	seq  int // insertion order, to keep sorting stable
}

func (it Item) String() string {
	var b strings.Builder
	b.WriteString(it.Where)
	if it.Key != "" {
		b.WriteString(": ")
		b.WriteString(it.Key)
	}
	if it.Kind != "" { // a problem has no kind
		b.WriteString(": ")
		b.WriteString(string(it.Kind))
	}
	b.WriteString(": ")
	b.WriteString(it.Message)
	if it.Advice != "" {
		b.WriteString("; ")
		b.WriteString(it.Advice)
	}
	return b.String()
}

// sortItems orders items by source (the file first, then the manifests
// in the order given), line (items without a line first), key, then the
// order they were added in.
func sortItems(items []Item) {
	slices.SortStableFunc(items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(a.src, b.src), cmp.Compare(a.line, b.line), strings.Compare(a.Key, b.Key), cmp.Compare(a.seq, b.seq))
	})
}

// Result is a converted configuration and its report.
type Result struct {
	// Config is the tollgate configuration as a TOML document. It passes
	// config.Parse.
	Config []byte
	// Items is the report, in the order of the source.
	Items []Item
	// ACMEStorage is the source's [acme] storage setting: the store key
	// (below Traefik's KV prefix) or the file its certificates are in;
	// empty without [acme].
	ACMEStorage string
}

// Count returns how many items are of kind k.
func (r *Result) Count(k Kind) int {
	n := 0
	for _, it := range r.Items {
		if it.Kind == k {
			n++
		}
	}
	return n
}

// Summary is one line counting the items by kind, such as
// "12 converted, 2 changed, 1 unsupported, 0 unknown, 1 action".
func (r *Result) Summary() string {
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", r.Count(k), k))
	}
	return strings.Join(parts, ", ")
}

// WriteReport writes the items, one per line (the advice on its own
// indented line), and the summary.
func (r *Result) WriteReport(w io.Writer) error {
	var b strings.Builder
	for _, it := range r.Items {
		b.WriteString(it.Where)
		if it.Key != "" {
			b.WriteString(": ")
			b.WriteString(it.Key)
		}
		fmt.Fprintf(&b, ": %s: %s\n", it.Kind, it.Message)
		if it.Advice != "" {
			fmt.Fprintf(&b, "    → %s\n", it.Advice)
		}
	}
	fmt.Fprintf(&b, "%s\n", r.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// Error is a source that cannot be converted: it is not valid TOML, a key
// has the wrong type, or a value makes the configuration invalid in a way
// no part of it can be left out to fix. Problems lists every one found.
type Error struct {
	// Source names the file.
	Source string
	// Problems are the reasons, each with its place.
	Problems []Item
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "cannot convert: " + e.Problems[0].problemString()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cannot convert %s: %d problems:", e.Source, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.problemString())
	}
	return b.String()
}

// problemString prints a problem without its kind.
func (it Item) problemString() string {
	s := it.Where
	if it.Key != "" {
		s += ": " + it.Key
	}
	return s + ": " + it.Message
}
