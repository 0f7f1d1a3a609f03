package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestBadFiles checks the exact messages for a catalog of invalid files:
// testdata/bad/NAME.toml is expected to fail with testdata/bad/NAME.golden.
// Run with -update to rewrite the golden files after a deliberate change.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("catalog has %d bad files, want at least 20", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			_, err := LoadFile(file)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("LoadFile(%s) = %v, want an *Error", file, err)
			}
			for _, p := range ce.Problems {
				if !strings.HasPrefix(p.Where, file) {
					t.Errorf("problem %q is not located in %s", p, file)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("error message differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
