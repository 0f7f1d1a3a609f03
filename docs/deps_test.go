package docs_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestPackageDependencies checks the table "Packages and their
// dependencies" of docs/architecture.md against the code: every package
// that is not a test helper imports, outside its tests, only the tollgate
// packages its row names. The table is how the layering is kept: a new
// import across layers fails here until the table, and so the design, says
// it is meant.
func TestPackageDependencies(t *testing.T) {
	root := moduleRoot(t)
	allowed := documentedImports(t, filepath.Join(root, "docs", "architecture.md"))

	// Packages without non-test files (deploy, docs) list no imports.
	cmd := exec.Command("go", "list", "-f", "{{if .GoFiles}}{{.ImportPath}} {{join .Imports \" \"}}{{end}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	const module = "github.com/tollgate-proxy/tollgate"
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		if pkg == "" || pkg == "demo" || strings.HasPrefix(pkg, "e2e") || strings.HasPrefix(pkg, "internal/testserver") || strings.HasPrefix(pkg, "bench") {
			continue // programs and test helpers, not layers
		}
		want, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no row in docs/architecture.md's dependency table", pkg)
			continue
		}
		if want == nil {
			continue
		}
		for _, imp := range fields[1:] {
			dep, found := strings.CutPrefix(imp, module+"/")
			if !found {
				continue
			}
			if !slices.Contains(want, dep) {
				t.Errorf("%s imports %s, which its row in docs/architecture.md does not name: fix the import, or the table if the layering is meant to change", pkg, dep)
			}
		}
	}
}

// documentedImports reads the dependency table: for each package named in
// the first column, the packages named in the third; nil for the rows of
// test helpers, "(tests only)", which may import anything. A row may name
// several packages ("`a`, `b`").
func documentedImports(t *testing.T, file string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "## Packages and their dependencies")
	if !ok {
		t.Fatal(`docs/architecture.md has no section "Packages and their dependencies"`)
	}
	code := regexp.MustCompile("`([a-z0-9/]+)`")
	names := func(cell string) []string {
		var out []string
		for _, m := range code.FindAllStringSubmatch(cell, -1) {
			out = append(out, m[1])
		}
		return out
	}
	allowed := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 3 || strings.HasPrefix(strings.TrimSpace(cells[0]), "---") {
			if len(allowed) > 0 && !strings.HasPrefix(strings.TrimSpace(line), "|") {
				break // the end of the table
			}
			continue
		}
		deps := append([]string{}, names(cells[2])...) // not nil: "—" allows nothing
		if strings.Contains(cells[2], "tests only") {
			deps = nil // test helpers may import anything
		}
		for _, p := range names(cells[0]) {
			allowed[p] = deps
		}
	}
	if len(allowed) == 0 {
		t.Fatal("docs/architecture.md: no rows in the dependency table")
	}
	return allowed
}
