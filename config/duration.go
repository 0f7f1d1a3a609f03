package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written as a Go duration string such as
// "10s", "1m30s" or "250ms", in TOML and in the store alike.
type Duration time.Duration

// String returns the duration in Go syntax ("1m30s"); it parses back to
// the same value.
func (d Duration) String() string { return time.Duration(d).String() }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: write a number with a unit, such as \"10s\", \"1m30s\" or \"250ms\"", s)
	}
	return Duration(d), nil
}
