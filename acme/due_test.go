package acme

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// testRecord returns a usable certificate record for name stored at key,
// its key sealed by kr.
func testRecord(t *testing.T, kr *Keyring, key, name string) *CertRecord {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	notBefore, notAfter := now.Add(-time.Hour), now.Add(90*24*time.Hour)
	c := testcert.SelfSigned(t, testcert.Spec{Names: []string{name}, Serial: 1, NotBefore: notBefore, NotAfter: notAfter})
	sealed, err := kr.Seal(key, c.KeyPEM(t))
	if err != nil {
		t.Fatal(err)
	}
	return &CertRecord{Version: RecordVersion, Domains: []string{name}, NotBefore: notBefore, NotAfter: notAfter,
		Certificate: string(c.CertPEM()), PrivateKey: sealed}
}

// TestDueUnusable (issue 14, A7): the leader orders at once, subject to
// the backoff of the domain's state, a name whose newest stored record is
// unusable, whether the view still holds the certificate before it (a
// replica that was running) or none (one that started over the record).
func TestDueUnusable(t *testing.T) {
	now := time.Now()
	w := Want{Domains: []string{"a.example.com"}}
	held := &CertEntry{Record: &CertRecord{Domains: w.Domains, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}}
	unusable := &UnusableRecord{Key: "k", Err: errors.New("does not open")}
	later := now.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		cert    *CertEntry
		bad     *UnusableRecord
		state   *DomainState
		wantAt  time.Time
		wantWhy string
	}{
		{"usable", held, nil, nil, held.Record.RenewAt(), "renewal"},
		{"none held", nil, nil, nil, now, "new"},
		{"held, newest unusable", held, unusable, nil, now, "record unusable"},
		{"only unusable", nil, unusable, nil, now, "record unusable"},
		{"unusable, backing off", held, unusable, &DomainState{Failures: 1, NextAttempt: later}, later, "record unusable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := emptyView()
			if tc.cert != nil {
				v.Certs[w.Main()] = tc.cert
			}
			if tc.bad != nil {
				v.Unusable[w.Main()] = tc.bad
			}
			if tc.state != nil {
				v.States[w.Main()] = tc.state
			}
			at, why := (&Manager{}).due(v, w, now)
			if !at.Equal(tc.wantAt) || why != tc.wantWhy {
				t.Errorf("due = %s, %q; want %s, %q", at, why, tc.wantAt, tc.wantWhy)
			}
		})
	}
}

// TestStoredCert (issue 14, A7): the leader's consistent read before an
// order takes a stored record as done only when replicas can serve it;
// the record is returned whenever it decodes, for the renewal's ARI
// replaces.
func TestStoredCert(t *testing.T) {
	kr, err := ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	const key = "p/acme/certs/0/a.example.com"
	good := testRecord(t, kr, key, "a.example.com")
	other := testRecord(t, kr, key+"x", "a.example.com")
	marshal := func(r CertRecord) []byte { b, _ := json.Marshal(r); return b }
	wrongKey, wrongChain := *good, *good
	wrongKey.PrivateKey = other.PrivateKey
	wrongChain.Certificate = other.Certificate
	full := marshal(*good)
	for _, tc := range []struct {
		name              string
		value             []byte
		decoded, isUsable bool
	}{
		{"good", full, true, true},
		{"wrong key", marshal(wrongKey), true, false},
		{"wrong chain", marshal(wrongChain), true, false},
		{"truncated", full[:len(full)/2], false, false},
		{"garbage", []byte{0xff, 0x00, 0x13}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, ok := storedCert(kr, kvstore.KV{Key: key, Value: tc.value})
			if (rec != nil) != tc.decoded || ok != tc.isUsable {
				t.Errorf("storedCert = %v, %v; want decoded %v, usable %v", rec != nil, ok, tc.decoded, tc.isUsable)
			}
		})
	}
}
