package acme_test

import (
	"testing"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// testChallengeLag checks tollgate_acme_applied_revision and
// tollgate_acme_challenge_lag_revisions: in sync once the cache applied a
// challenge answer, behind by the difference while it does not follow the
// store.
func testChallengeLag(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	if got := f.metric("tollgate_acme_challenge_lag_revisions"); got != 0 {
		t.Fatalf("lag with no challenge = %v, want 0", got)
	}
	const token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	key := f.key(f.keys.HTTP01, token)
	rev := f.put(key, acme.ChallengeRecord{Domain: "a.example.com", Token: token, KeyAuth: token + ".thumbprint"})
	f.wait(key, rev)
	applied := f.metric("tollgate_acme_applied_revision")
	if applied < float64(rev) {
		t.Fatalf("applied revision = %v, want at least %d", applied, rev)
	}
	if got := f.metric("tollgate_acme_challenge_lag_revisions"); got != 0 {
		t.Fatalf("lag once applied = %v, want 0", got)
	}

	// A replica that stopped following the store falls behind the next
	// answer written.
	f.stop()
	const token2 = "fwbHygBEt7qTSc3MBw0JAg28Eu4kvyHK-QDu03xs-pB"
	rev2 := f.put(f.key(f.keys.HTTP01, token2), acme.ChallengeRecord{Domain: "b.example.com", Token: token2, KeyAuth: token2 + ".thumbprint"})
	if got := f.metric("tollgate_acme_applied_revision"); got != applied {
		t.Fatalf("applied revision of a stopped cache = %v, want %v", got, applied)
	}
	if got, want := f.metric("tollgate_acme_challenge_lag_revisions"), float64(rev2)-applied; got != want || got <= 0 {
		t.Fatalf("lag of a stopped cache = %v, want %v (> 0)", got, want)
	}
}
