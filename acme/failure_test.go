package acme

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"

	legoacme "github.com/go-acme/lego/v4/acme"
)

// TestFailureReason checks how the cause of a failed order is derived
// from the ACME problem or the error, wrapped as the order code and lego
// wrap them.
func TestFailureReason(t *testing.T) {
	problem := func(typ, detail string, status int) *legoacme.ProblemDetails {
		return &legoacme.ProblemDetails{Type: "urn:ietf:params:acme:error:" + typ, Detail: detail, HTTPStatus: status}
	}
	// A failed challenge comes out of lego's prober inside its per-name
	// error map, which unwraps to a list.
	challenge := func(p *legoacme.ProblemDetails) error {
		return errors.Join(fmt.Errorf("[a.example.com] invalid challenge: %w", p))
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"rate limited", &legoacme.RateLimitedError{ProblemDetails: problem("rateLimited", "too many certificates", 429)}, failRateLimited},
		{"rate limited, wrapped", fmt.Errorf("new order: %w", problem("rateLimited", "", 429)), failRateLimited},
		{"HTTP-01 answer missing", challenge(problem("unauthorized", "Non-200 status code from HTTP: 404", 403)), failValidation},
		{"CAA forbids", challenge(problem("caa", "CAA record forbids issuance", 403)), failValidation},
		{"no DNS record", challenge(problem("dns", "NXDOMAIN looking up A", 400)), failValidation},
		{"connection refused", challenge(problem("connection", "connection refused", 400)), failValidation},
		{"wrong answer", challenge(problem("incorrectResponse", "key authorization mismatch", 403)), failValidation},
		{"TLS-ALPN-01 failed", challenge(problem("tls", "no ALPN", 400)), failValidation},
		{"order made invalid", fmt.Errorf("the CA made the order invalid: %w", problem("unauthorized", "authorization failed", 403)), failValidation},
		{"compound", problem("compound", "several", 400), failOther},
		{"compound with a CAA subproblem", &legoacme.ProblemDetails{Type: "urn:ietf:params:acme:error:compound", HTTPStatus: 403,
			SubProblems: []legoacme.SubProblem{{Type: "urn:ietf:params:acme:error:malformed"}, {Type: "urn:ietf:params:acme:error:caa"}}}, failValidation},
		{"rejected identifier", problem("rejectedIdentifier", "policy forbids issuing for name", 400), failRejectedIdentifier},
		{"unsupported identifier", problem("unsupportedIdentifier", "", 400), failRejectedIdentifier},
		{"bad nonce", &legoacme.NonceError{ProblemDetails: problem("badNonce", "", 400)}, failCAError},
		{"server internal", problem("serverInternal", "", 500), failCAError},
		{"an unnamed 503", &legoacme.ProblemDetails{HTTPStatus: 503}, failCAError},
		{"account does not exist", classify(problem("accountDoesNotExist", "", 400)), failAccount},
		{"account deactivated", classify(problem("unauthorized", "Account is not valid, has status \"deactivated\"", 403)), failAccount},
		{"account unauthorized", problem("unauthorized", "account is not authorized to use this order", 403), failAccount},
		{"deadline", fmt.Errorf("get directory: %w", context.DeadlineExceeded), failUnreachable},
		{"dial refused", &url.Error{Op: "Post", URL: "https://ca.example/acme", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}, failUnreachable},
		{"order not stored", fmt.Errorf("order %w, so not pursued: %w", errNotStored, errors.New("store down")), failStore},
		{"malformed", problem("malformed", "bad CSR", 400), failOther},
		{"plain", errors.New("order still processing after 2m0s"), failOther},
	} {
		if got := failureReason(tc.err); got != tc.want {
			t.Errorf("%s: reason %q, want %q", tc.name, got, tc.want)
		}
	}
}
