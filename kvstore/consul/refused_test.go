package consul

import (
	"errors"
	"testing"

	"github.com/hashicorp/consul/api"
)

// TestKeyWriteRefused: a rolled-back beat means the lock is lost when the
// session check failed, and also when Consul refused the lock op for the
// key's lock delay or an invalid session, which it does when the session
// was invalidated before the release reached the key (seen in CI: the
// session check passed, the lock op met the lock delay).
func TestKeyWriteRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		errs []*api.TxnError
		lost bool
	}{
		{"session check", []*api.TxnError{{OpIndex: 0, What: `failed session check for key "k", current session "" != "s"`}}, true},
		{"lock delay", []*api.TxnError{{OpIndex: 1, What: `failed to lock key "k" due to lock delay`}}, true},
		{"invalid session", []*api.TxnError{{OpIndex: 1, What: `failed to lock key "k": invalid session "s"`}}, true},
		{"other", []*api.TxnError{{OpIndex: 1, What: "value too large"}}, false},
	} {
		err := keyWriteRefused(&api.TxnResponse{Errors: tc.errs})
		var loss *lossError
		if got := errors.As(err, &loss); got != tc.lost {
			t.Errorf("%s: %v is a loss: %t, want %t", tc.name, err, got, tc.lost)
		}
	}
}
