// Package wrr is smooth weighted round robin, the choice the HTTP and the
// TCP load balancers make: over any run of picks each choice gets its
// share by weight, and heavy choices are interleaved with light ones
// rather than picked in bursts.
package wrr

// Pick makes one pick among len(current) choices and returns its index,
// or -1 when every weight is 0. weight(i) is choice i's weight now, 0
// when it is unavailable; current is the state kept between picks, which
// the caller guards.
func Pick(current []int, weight func(i int) int) int {
	best, total := -1, 0
	for i := range current {
		w := weight(i)
		if w <= 0 {
			continue
		}
		current[i] += w
		total += w
		if best < 0 || current[i] > current[best] {
			best = i
		}
	}
	if best >= 0 {
		current[best] -= total
	}
	return best
}
