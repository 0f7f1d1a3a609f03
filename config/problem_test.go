package config

import (
	"strconv"
	"strings"
	"testing"
)

// TestErrorCounts checks the counts Error prints: "1 more problem", "N
// more problems".
func TestErrorCounts(t *testing.T) {
	for n, want := range map[int]string{
		maxPrinted + 1: "… and 1 more problem",
		maxPrinted + 2: "… and 2 more problems",
	} {
		e := &Error{Source: "f.toml", Problems: make([]Problem, n)}
		got := e.Error()
		if !strings.HasSuffix(got, want) || !strings.Contains(got, "invalid configuration: "+strconv.Itoa(n)+" problems in f.toml:") {
			t.Errorf("%d problems: %q…, want it to end in %q", n, got[:60], want)
		}
	}
}
