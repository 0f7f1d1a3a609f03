package wrr

import (
	"slices"
	"testing"
)

// TestPick: weights 5, 1, 1 give the smooth sequence a a b a c a a, and
// a choice of weight 0 is never picked.
func TestPick(t *testing.T) {
	weights := []int{5, 1, 1, 0}
	current := make([]int, len(weights))
	var got []int
	for range 7 {
		got = append(got, Pick(current, func(i int) int { return weights[i] }))
	}
	if want := []int{0, 0, 1, 0, 2, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("picks %v, want %v", got, want)
	}
	if i := Pick(current, func(int) int { return 0 }); i != -1 {
		t.Errorf("no weight: %d, want -1", i)
	}
}
