// Package docs_test checks the links of every Markdown file in the
// repository: relative links must name a file or directory that exists,
// #anchors must name a heading of the target file (by GitHub's anchor
// rules), reference-style links must have a definition, and external links
// must be well-formed URLs. Nothing is fetched from the network.
package docs_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestMarkdownLinks checks every Markdown file of the repository.
func TestMarkdownLinks(t *testing.T) {
	root := moduleRoot(t)
	files, err := markdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, "README.md") || !slices.Contains(files, "docs/README.md") {
		t.Fatalf("found %d Markdown files under %s, but not README.md and docs/README.md: wrong root?", len(files), root)
	}
	c := newChecker(root)
	for _, f := range files {
		for _, p := range c.check(f) {
			t.Error(p)
		}
	}
}

// moduleRoot is the nearest directory at or above the working directory
// that holds go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// markdownFiles lists the Markdown files below root as slash paths
// relative to it, skipping .git and testdata directories.
func markdownFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (d.Name() == ".git" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if isMarkdown(p) {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

func isMarkdown(p string) bool {
	ext := strings.ToLower(path.Ext(p))
	return ext == ".md" || ext == ".markdown"
}

// link is one link found in a Markdown file.
type link struct {
	line int
	raw  string // as written, for messages
	dest string // the destination; "" for a reference link
	ref  string // the normalized label of a reference link
	def  bool   // a reference definition rather than a use
}

// doc is what the checker needs of one Markdown file.
type doc struct {
	links   []link
	refs    map[string]bool // normalized labels of reference definitions
	anchors map[string]bool
	err     error
}

// checker checks files below root; it parses each file once.
type checker struct {
	root string
	docs map[string]*doc // by slash path relative to root
}

func newChecker(root string) *checker {
	return &checker{root: root, docs: map[string]*doc{}}
}

// load parses the Markdown file at rel (a slash path relative to root).
func (c *checker) load(rel string) *doc {
	if d := c.docs[rel]; d != nil {
		return d
	}
	b, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(rel)))
	d := &doc{err: err}
	if err == nil {
		d = parse(string(b))
	}
	c.docs[rel] = d
	return d
}

// check returns one message per broken link of the file at rel.
func (c *checker) check(rel string) []string {
	d := c.load(rel)
	if d.err != nil {
		return []string{fmt.Sprintf("%s: %v", rel, d.err)}
	}
	var out []string
	for _, l := range d.links {
		why := ""
		switch {
		case l.dest == "" && !l.def:
			if !d.refs[l.ref] {
				why = fmt.Sprintf("reference [%s] is not defined in this file", l.ref)
			}
		default:
			why = c.checkDest(rel, l.dest, d)
		}
		if why != "" {
			out = append(out, fmt.Sprintf("%s:%d: %s: %s", rel, l.line, l.raw, why))
		}
	}
	return out
}

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// checkDest says what is wrong with a link destination found in the file
// at rel, or "".
func (c *checker) checkDest(rel, dest string, d *doc) string {
	switch {
	case strings.TrimSpace(dest) == "":
		return "empty link destination"
	case schemeRE.MatchString(dest):
		return checkURL(dest)
	}
	target, frag, _ := strings.Cut(dest, "#")
	target, _, _ = strings.Cut(target, "?")
	target, err := url.PathUnescape(target)
	if err != nil {
		return fmt.Sprintf("bad percent-encoding in the path: %v", err)
	}
	if frag, err = url.PathUnescape(frag); err != nil {
		return fmt.Sprintf("bad percent-encoding in the anchor: %v", err)
	}
	if target == "" {
		if frag == "" {
			return "empty link destination"
		}
		return anchorProblem(d, frag, "this file")
	}
	var resolved string
	if strings.HasPrefix(target, "/") {
		resolved = path.Clean(strings.TrimPrefix(target, "/"))
	} else {
		resolved = path.Join(path.Dir(rel), target)
	}
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return "points outside the repository"
	}
	info, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(resolved)))
	if err != nil {
		return fmt.Sprintf("%s does not exist", resolved)
	}
	switch {
	case frag == "":
		return ""
	case info.IsDir():
		return fmt.Sprintf("#%s: %s is a directory, which has no headings", frag, resolved)
	case !isMarkdown(resolved):
		if lineAnchorRE.MatchString(frag) {
			return ""
		}
		return fmt.Sprintf("#%s: %s is not Markdown; only line anchors such as #L10 or #L10-L20 work there", frag, resolved)
	}
	t := c.load(resolved)
	if t.err != nil {
		return fmt.Sprintf("cannot read %s: %v", resolved, t.err)
	}
	return anchorProblem(t, frag, resolved)
}

var lineAnchorRE = regexp.MustCompile(`^L[0-9]+(-L[0-9]+)?$`)

// anchorProblem says why frag is not an anchor of d, or "".
func anchorProblem(d *doc, frag, where string) string {
	if d.anchors[frag] {
		return ""
	}
	if lower := strings.ToLower(frag); lower != frag && d.anchors[lower] {
		return fmt.Sprintf("anchors are lower case: write #%s", lower)
	}
	msg := fmt.Sprintf("no heading in %s has the anchor #%s", where, frag)
	if s := closest(frag, d.anchors); s != "" {
		msg += fmt.Sprintf(" (did you mean #%s?)", s)
	}
	return msg
}

// closest returns the anchor nearest to frag by edit distance, if it is
// near enough to be a likely typo.
func closest(frag string, anchors map[string]bool) string {
	best, bestDist := "", len(frag)/3+2
	for a := range anchors {
		if d := editDistance(frag, a); d < bestDist || d == bestDist && best != "" && a < best {
			best, bestDist = a, d
		}
	}
	return best
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

// checkURL says what is wrong with an absolute URL, or "". Nothing is
// fetched.
func checkURL(s string) string {
	if strings.ContainsAny(s, " \t\n") {
		return "URL contains white space"
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("malformed URL: %v", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "mailto":
		if !strings.Contains(u.Opaque, "@") {
			return "mailto link without an address"
		}
		return ""
	default:
		return fmt.Sprintf("scheme %q: only http, https and mailto links are allowed", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return "URL has no host: write scheme://host/path"
	}
	if u.User != nil {
		return "URL carries user information"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("bad port %q", p)
		}
	}
	if !validHost(u.Hostname()) {
		return fmt.Sprintf("bad host name %q", u.Hostname())
	}
	return ""
}

// validHost accepts IP addresses and host names of non-empty labels made
// of letters, digits and hyphens.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' {
				return false
			}
		}
	}
	return true
}

// parse reads the links, reference definitions and anchors of a Markdown
// text.
func parse(text string) *doc {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	code := fencedLines(lines)
	d := &doc{refs: map[string]bool{}, anchors: headingAnchors(lines, code)}
	masked := maskCode(text, code)
	lineAt := lineIndex(masked)
	d.links = append(d.links, inlineLinks(masked, text, lineAt)...)
	d.links = append(d.links, htmlLinks(masked, lineAt)...)
	for i, line := range strings.Split(masked, "\n") {
		m := refDefRE.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], "^") {
			continue
		}
		label := normLabel(m[1])
		d.refs[label] = true
		d.links = append(d.links, link{line: i + 1, raw: shorten(line), dest: strings.Trim(m[2], "<>"), ref: label, def: true})
	}
	for _, m := range htmlAnchorRE.FindAllStringSubmatch(masked, -1) {
		d.anchors[m[1]] = true
	}
	slices.SortStableFunc(d.links, func(a, b link) int { return a.line - b.line })
	return d
}

var (
	refDefRE     = regexp.MustCompile(`^ {0,3}\[([^\]]+)\]:[ \t]*(<[^>]*>|\S+)`)
	htmlAnchorRE = regexp.MustCompile(`<a\s[^>]*(?:name|id)="([^"]+)"`)
	htmlLinkRE   = regexp.MustCompile(`<(?:a|img)\s[^>]*(?:href|src)="([^"]*)"`)
	autolinkRE   = regexp.MustCompile(`<((?:https?|mailto):[^<>\s]*)>`)
	fenceRE      = regexp.MustCompile("^ *(`{3,}|~{3,})")
	atxRE        = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	setextRE     = regexp.MustCompile(`^ {0,3}(=+|-+)[ \t]*$`)
)

// normLabel normalizes a reference label: case and runs of white space do
// not matter.
func normLabel(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// fencedLines marks the lines of fenced code blocks, fences included.
func fencedLines(lines []string) []bool {
	code := make([]bool, len(lines))
	fence := ""
	for i, line := range lines {
		m := fenceRE.FindStringSubmatch(line)
		switch {
		case fence == "" && m != nil:
			fence, code[i] = m[1], true
		case fence != "":
			code[i] = true
			trimmed := strings.TrimSpace(line)
			if m != nil && trimmed[0] == fence[0] && len(strings.Trim(trimmed, trimmed[:1])) == 0 && len(trimmed) >= len(fence) {
				fence = ""
			}
		}
	}
	return code
}

// headingAnchors computes the anchors GitHub gives the headings outside
// code blocks, numbering repeated ones as it does (#faq, #faq-1, …).
func headingAnchors(lines []string, code []bool) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	add := func(text string) {
		s := slug(text)
		base := s
		for {
			if _, dup := seen[s]; !dup {
				break
			}
			seen[base]++
			s = fmt.Sprintf("%s-%d", base, seen[base])
		}
		seen[s] = 0
		anchors[s] = true
	}
	for i, line := range lines {
		if code[i] {
			continue
		}
		if m := atxRE.FindStringSubmatch(line); m != nil {
			add(m[2])
			continue
		}
		if i > 0 && !code[i-1] && setextRE.MatchString(line) && isParagraphLine(lines[i-1]) {
			add(strings.TrimSpace(lines[i-1]))
		}
	}
	return anchors
}

// isParagraphLine reports whether a line can be the text of a setext
// heading: not blank, not a heading, list item, quote or table row.
func isParagraphLine(line string) bool {
	t := strings.TrimSpace(line)
	if t == "" || atxRE.MatchString(line) || setextRE.MatchString(line) {
		return false
	}
	return !strings.HasPrefix(t, "- ") && !strings.HasPrefix(t, "* ") && !strings.HasPrefix(t, ">") && !strings.HasPrefix(t, "|")
}

var (
	inlineLinkRE = regexp.MustCompile(`!?\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])`)
	htmlTagRE    = regexp.MustCompile(`<[^>]+>`)
	escapeRE     = regexp.MustCompile(`\\([!-/:-@\[-` + "`" + `{-~])`)
	emphasisRE   = regexp.MustCompile(`(^|[^\p{L}\p{N}])_+|_+($|[^\p{L}\p{N}])`)
)

// slug is GitHub's anchor for a heading's Markdown text: the rendered text
// in lower case, spaces turned into hyphens, and every character but
// letters, digits, hyphens and underscores removed.
func slug(heading string) string {
	var text strings.Builder
	// Code spans keep their content literally; the rest loses its markup.
	for i, part := range strings.Split(heading, "`") {
		if i%2 == 1 {
			text.WriteString(part)
			continue
		}
		part = inlineLinkRE.ReplaceAllString(part, "$1")
		part = htmlTagRE.ReplaceAllString(part, "")
		part = emphasisRE.ReplaceAllString(part, "$1$2")
		part = escapeRE.ReplaceAllString(part, "$1")
		text.WriteString(part)
	}
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text.String())) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maskCode blanks out fenced code blocks, code spans and HTML comments
// with spaces, so that offsets in the result are offsets in text.
func maskCode(text string, code []bool) string {
	b := []byte(text)
	blank := func(from, to int) {
		for k := from; k < to; k++ {
			if b[k] != '\n' {
				b[k] = ' '
			}
		}
	}
	start := 0
	for i, line := range strings.SplitAfter(text, "\n") {
		if code[i] {
			blank(start, start+len(line))
		}
		start += len(line)
	}
	for {
		start := bytes.Index(b, []byte("<!--"))
		if start < 0 {
			break
		}
		end := bytes.Index(b[start:], []byte("-->"))
		if end < 0 {
			blank(start, len(b))
			break
		}
		blank(start, start+end+3)
	}
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' {
			i++
			continue
		}
		if b[i] != '`' {
			continue
		}
		n := runLength(b, i, '`')
		if end := closingRun(b, i+n, n); end > 0 {
			blank(i, end)
			i = end - 1
		} else {
			i += n - 1
		}
	}
	return string(b)
}

func runLength(b []byte, i int, c byte) int {
	n := 0
	for i+n < len(b) && b[i+n] == c {
		n++
	}
	return n
}

// closingRun finds the end of the run of exactly n backticks that closes
// a code span opened before from, within the paragraph; 0 when none.
func closingRun(b []byte, from, n int) int {
	for j := from; j < len(b); j++ {
		switch {
		case b[j] == '\n' && blankLineAt(b, j+1):
			return 0
		case b[j] == '`':
			m := runLength(b, j, '`')
			if m == n {
				return j + m
			}
			j += m - 1
		}
	}
	return 0
}

// blankLineAt reports whether the line starting at i is blank.
func blankLineAt[T ~string | ~[]byte](b T, i int) bool {
	for ; i < len(b) && b[i] != '\n'; i++ {
		if b[i] != ' ' && b[i] != '\t' {
			return false
		}
	}
	return true
}

// lineIndex returns a function from byte offset to 1-based line number.
func lineIndex(text string) func(int) int {
	var starts []int
	starts = append(starts, 0)
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	return func(off int) int {
		n, _ := slices.BinarySearch(starts, off+1)
		return n
	}
}

// inlineLinks finds inline links and images, [text](dest "title"), and
// uses of reference links, [text][label] and [label][], in masked text;
// orig is the text before masking, for messages.
func inlineLinks(b, orig string, lineAt func(int) int) []link {
	var out []link
	var open []int // offsets of unmatched "["
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '\n':
			if blankLineAt(b, i+1) {
				open = open[:0] // links do not cross paragraphs
			}
		case '[':
			open = append(open, i)
		case ']':
			if len(open) == 0 {
				continue
			}
			start := open[len(open)-1]
			open = open[:len(open)-1]
			if start > 0 && b[start-1] == '!' {
				start--
			}
			l, end := linkAfter(b, start, i)
			if end < 0 {
				continue
			}
			l.line, l.raw = lineAt(i+1), shorten(orig[start:end])
			out = append(out, l)
			i = end - 1
		}
	}
	return out
}

// linkAfter reads what follows the "]" at close of a bracket opened at
// start: an inline destination or a reference label. It returns the link
// and the offset after it, or -1 when the brackets are plain text.
func linkAfter(b string, start, close int) (link, int) {
	if close+1 < len(b) && b[close+1] == '(' {
		dest, end, ok := inlineDest(b, close+2)
		if !ok {
			return link{}, -1
		}
		return link{dest: dest}, end
	}
	if close+1 < len(b) && b[close+1] == '[' {
		j := strings.IndexAny(b[close+2:], "[]\n")
		if j < 0 || b[close+2+j] != ']' {
			return link{}, -1
		}
		label := b[close+2 : close+2+j]
		if strings.TrimSpace(label) == "" {
			label = strings.TrimPrefix(strings.TrimPrefix(b[start:close], "!"), "[")
		}
		if strings.HasPrefix(label, "^") {
			return link{}, -1
		}
		end := close + 3 + j
		return link{ref: normLabel(label)}, end
	}
	// A shortcut reference, [label], is a link only when the label is
	// defined, and then its definition is what is checked.
	return link{}, -1
}

// shorten puts a link as written on one line, cut to a readable length.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "..."
	}
	return s
}

// inlineDest parses `dest "title")` from i, just after "(": the
// destination and the offset after ")", or ok false when it is not a link.
func inlineDest(b string, i int) (dest string, end int, ok bool) {
	i = skipSpace(b, i)
	if i < len(b) && b[i] == '<' {
		j := strings.IndexAny(b[i+1:], ">\n")
		if j < 0 || b[i+1+j] != '>' {
			return "", 0, false
		}
		dest, i = b[i+1:i+1+j], i+2+j
	} else {
		depth, j := 0, i
	scan:
		for ; j < len(b); j++ {
			switch c := b[j]; {
			case c == '\\':
				j++
			case c == '(':
				depth++
			case c == ')' && depth == 0, c == ' ', c == '\t', c == '\n':
				break scan
			case c == ')':
				depth--
			}
		}
		dest, i = b[i:min(j, len(b))], j
	}
	i = skipSpace(b, i)
	if i < len(b) && (b[i] == '"' || b[i] == '\'' || b[i] == '(') {
		closer := map[byte]byte{'"': '"', '\'': '\'', '(': ')'}[b[i]]
		j := strings.IndexByte(b[i+1:], closer)
		if j < 0 {
			return "", 0, false
		}
		i = skipSpace(b, i+2+j)
	}
	if i >= len(b) || b[i] != ')' {
		return "", 0, false
	}
	return dest, i + 1, true
}

func skipSpace(b string, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
		i++
	}
	return i
}

// htmlLinks finds autolinks, <https://…>, and the href and src of HTML
// a and img tags.
func htmlLinks(b string, lineAt func(int) int) []link {
	var out []link
	for _, re := range []*regexp.Regexp{autolinkRE, htmlLinkRE} {
		for _, m := range re.FindAllStringSubmatchIndex(b, -1) {
			out = append(out, link{line: lineAt(m[0]), raw: shorten(b[m[0]:m[1]]), dest: b[m[2]:m[3]]})
		}
	}
	return out
}

// TestCheckerFindsBrokenLinks runs the checker on small trees, so that a
// checker that finds nothing cannot pass for a repository without broken
// links.
func TestCheckerFindsBrokenLinks(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the problems, in order
	}{
		{
			name: "good links",
			files: map[string]string{
				"README.md": "# Top\n\nSee [a](docs/a.md#section-one), [b](docs/a.md), [dir](docs) and [self](#top).\n" +
					"Also [ref][r1], [R1][] and <https://example.com/x?y=1#z>.\n" +
					"A [link\nover two lines](docs/a.md#faq-1) and [shortcut].\n\n" +
					"[r1]: docs/a.md#setext-title \"title\"\n[shortcut]: https://go.dev/\n",
				"docs/a.md": "## Section one\n\n## FAQ\n\n## FAQ\n\nSetext title\n------------\n\n" +
					"See [up](../README.md#top), [root](/docs/a.md) and [code](../main.go#L3-L5).\n",
				"main.go": "package main\n",
			},
		},
		{
			name: "code is not checked",
			files: map[string]string{
				"README.md": "# Top\n\n```toml\n[x](missing.md)\n```\n\nAnd `[y](missing.md)` and ``a `[z](m.md)` b``.\n" +
					"<!-- [c](missing.md) -->\nA [section] in text and [x] too.\n",
			},
		},
		{
			name: "missing file",
			files: map[string]string{
				"README.md": "# Top\n\n```\ncode\n```\nSee [`gone`](docs/gone.md).\n",
			},
			want: []string{"README.md:6: [`gone`](docs/gone.md): docs/gone.md does not exist"},
		},
		{
			name: "missing anchors",
			files: map[string]string{
				"README.md": "# Top\n\n[a](docs/a.md#sectoin-one) [b](#Top) [c](#nowhere-at-all)\n",
				"docs/a.md": "## Section one\n",
			},
			want: []string{
				"README.md:3: [a](docs/a.md#sectoin-one): no heading in docs/a.md has the anchor #sectoin-one (did you mean #section-one?)",
				"README.md:3: [b](#Top): anchors are lower case: write #top",
				"README.md:3: [c](#nowhere-at-all): no heading in this file has the anchor #nowhere-at-all",
			},
		},
		{
			name: "references",
			files: map[string]string{
				"README.md": "# Top\n\nSee [a][nope] and [b][def].\n\n[def]: docs/none.md\n",
			},
			want: []string{
				"README.md:3: [a][nope]: reference [nope] is not defined",
				"README.md:5: [def]: docs/none.md: docs/none.md does not exist",
			},
		},
		{
			name: "external links",
			files: map[string]string{
				"README.md": "# Top\n\n[a](https://) [b](http://example..com/) [c](ftp://example.com/) [d](https://example.com:99999/) [e](https://…)\n",
			},
			want: []string{"has no host", "bad host name", "only http, https and mailto", "bad port", "bad host name"},
		},
		{
			name: "outside the repository and anchors on non-Markdown",
			files: map[string]string{
				"README.md": "# Top\n\n[a](../x.md) [b](main.go#main) [c](docs#x)\n",
				"main.go":   "package main\n",
				"docs/a.md": "# A\n",
			},
			want: []string{"points outside the repository", "main.go is not Markdown", "docs is a directory"},
		},
		{
			name: "testdata is skipped",
			files: map[string]string{
				"README.md":            "# Top\n",
				"x/testdata/broken.md": "[a](missing.md)\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			files, err := markdownFiles(root)
			if err != nil {
				t.Fatal(err)
			}
			c := newChecker(root)
			var got []string
			for _, f := range files {
				got = append(got, c.check(f)...)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d: got %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestSlug checks heading anchors against GitHub's.
func TestSlug(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Leader election and fencing", "leader-election-and-fencing"},
		{"Rotating the encryption key", "rotating-the-encryption-key"},
		{"`tollgate keys rotate` (exit codes)", "tollgate-keys-rotate-exit-codes"},
		{"KV outage: replicas keep serving", "kv-outage-replicas-keep-serving"},
		{"What's in clear, and why?", "whats-in-clear-and-why"},
		{"`acme/state/<main-domain>` keys", "acmestatemain-domain-keys"},
		{"Proxy CPU per request: `bench/proxy.sh`", "proxy-cpu-per-request-benchproxysh"},
		{"**Bold** and _emphasis_ and snake_case", "bold-and-emphasis-and-snake_case"},
		{"[Linked](other.md) heading", "linked-heading"},
		{"Results (2026-12-03, tollgate c84b225)", "results-2026-12-03-tollgate-c84b225"},
		{"Über 10 000 — A/B", "über-10-000--ab"},
	}
	for _, tt := range tests {
		if got := slug(tt.heading); got != tt.want {
			t.Errorf("slug(%q): got %q, want %q", tt.heading, got, tt.want)
		}
	}
}
