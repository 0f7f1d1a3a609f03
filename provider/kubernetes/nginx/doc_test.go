package nginx

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// annotationNames lists every annotation name this package reads or
// reports by name, found in its source: the arguments of the translation's
// readers and reporters, the lists of related annotations and the keys of
// string maps (such as known).
func annotationNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	lit := func(e ast.Expr) {
		if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
			if s, err := strconv.Unquote(b.Value); err == nil && s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == "" {
				set[s] = true
			}
		}
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && len(n.Args) > 0 {
					switch sel.Sel.Name {
					case "get", "boolean", "integer", "seconds", "report", "refuse":
						lit(n.Args[0])
					case "redirect":
						for _, a := range n.Args {
							lit(a)
						}
					}
				}
			case *ast.AssignStmt:
				// name := "allowlist-source-range"
				if id, ok := n.Lhs[0].(*ast.Ident); ok && id.Name == "name" && len(n.Rhs) == 1 {
					lit(n.Rhs[0])
				}
			case *ast.CompositeLit:
				switch typ := n.Type.(type) {
				case *ast.ArrayType:
					if id, ok := typ.Elt.(*ast.Ident); ok && id.Name == "string" {
						for _, e := range n.Elts {
							lit(e)
						}
					}
				case *ast.MapType:
					if id, ok := typ.Key.(*ast.Ident); ok && id.Name == "string" {
						for _, e := range n.Elts {
							if kv, ok := e.(*ast.KeyValueExpr); ok {
								lit(kv.Key)
							}
						}
					}
				}
			}
			return true
		})
	}
	return slices.Sorted(func(yield func(string) bool) {
		for s := range set {
			if !yield(s) {
				return
			}
		}
	})
}

// TestDocListsEveryAnnotation: the migration guide's table names every
// annotation the translation knows, so that it cannot drift from the code.
func TestDocListsEveryAnnotation(t *testing.T) {
	const guide = "../../../docs/migrating-from-ingress-nginx.md"
	b, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	names := annotationNames(t)
	if len(names) < 80 {
		t.Fatalf("found %d annotation names in the source, want more: the search is broken", len(names))
	}
	for _, n := range names {
		if !strings.Contains(string(b), "`"+n+"`") {
			t.Errorf("%s does not name `%s`", guide, n)
		}
	}
}
