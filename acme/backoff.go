package acme

import (
	"errors"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
)

// retryAfter is how long a rate-limit error asks to wait, or 0.
func retryAfter(err error, now time.Time) time.Duration {
	var rl *legoacme.RateLimitedError
	if !errors.As(err, &rl) {
		return 0
	}
	return parseRetryAfter(rl.RetryAfter, now)
}
