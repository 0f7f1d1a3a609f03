package acme

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
)

// retryAfter is how long a rate-limit error asks to wait, or 0.
func retryAfter(err error, now time.Time) time.Duration {
	var rl *legoacme.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter == "" {
		return 0
	}
	if s, perr := strconv.Atoi(rl.RetryAfter); perr == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, perr := http.ParseTime(rl.RetryAfter); perr == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
