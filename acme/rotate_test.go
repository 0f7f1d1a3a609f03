package acme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

// rotKeyring returns a keyring of fresh keys, the first sealing, and the
// keys' base64 text.
func rotKeyring(t testing.TB, keys ...string) *acme.Keyring {
	t.Helper()
	kr, err := acme.ParseKeyring(strings.Join(keys, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func rotNewKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// rotKeyPEM returns a fresh P-256 private key as PKCS #8 PEM, and the key.
func rotKeyPEM(t testing.TB) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), key
}

// rotCert returns a certificate record for name as the leader writes it:
// a self-signed certificate whose key is sealed by kr for key.
func rotCert(t testing.TB, kr *acme.Keyring, key, name, serial string) []byte {
	t.Helper()
	keyPEM, priv := rotKeyPEM(t)
	notAfter := time.Now().Add(60 * 24 * time.Hour).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notAfter.Add(-90 * 24 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := kr.Seal(key, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	b, err := json.MarshalIndent(acme.CertRecord{
		Version: acme.RecordVersion, Domains: []string{name},
		NotBefore: tmpl.NotBefore, NotAfter: notAfter, Issuer: name, Serial: serial, KeyType: "EC256",
		CA: "https://ca.test/dir", CertURL: "https://ca.test/cert/" + serial,
		ARI:  &acme.ARIState{WindowStart: now, WindowEnd: now.Add(time.Hour), RenewAt: now.Add(time.Minute), CheckAgain: now, CheckedAt: now},
		Node: "leader-1", Token: 7, Written: now,
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), PrivateKey: sealed,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rotAccount returns an account record whose key is sealed by kr for key.
func rotAccount(t testing.TB, kr *acme.Keyring, key string) []byte {
	t.Helper()
	keyPEM, _ := rotKeyPEM(t)
	sealed, err := kr.Seal(key, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(acme.AccountRecord{
		Version: acme.RecordVersion, CA: "https://ca.test/dir", Email: "ops@example.com",
		URI: "https://ca.test/acct/1", Registration: json.RawMessage(`{"status":"valid","contact":["mailto:ops@example.com"]}`),
		Key: sealed, Node: "leader-1", Token: 3, Written: time.Now().UTC(),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rotEnv is one test's records under their own prefix.
type rotEnv struct {
	t    *testing.T
	ctx  context.Context
	st   kvstore.Store
	keys acme.Keys
}

func newRotEnv(t *testing.T, st kvstore.Store) *rotEnv {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return &rotEnv{t: t, ctx: ctx, st: st, keys: acme.NewKeys("rotate-" + strings.ReplaceAll(t.Name(), "/", "-"))}
}

func (e *rotEnv) certKey(name string) string {
	e.t.Helper()
	k, err := e.keys.Cert(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *rotEnv) accountKey(email string) string {
	e.t.Helper()
	k, err := e.keys.Account("https://ca.test/dir", email)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *rotEnv) put(key string, value []byte) {
	e.t.Helper()
	if _, err := kvstore.Put(e.ctx, e.st, key, value); err != nil {
		e.t.Fatal(err)
	}
}

func (e *rotEnv) get(key string) kvstore.KV {
	e.t.Helper()
	kv, err := e.st.Get(e.ctx, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return kv
}

// all returns every entry under the test's prefix.
func (e *rotEnv) all() []kvstore.KV {
	e.t.Helper()
	l, err := e.st.List(e.ctx, e.keys.Prefix())
	if err != nil {
		e.t.Fatal(err)
	}
	return l.KVs
}

func (e *rotEnv) reencrypt(kr *acme.Keyring, dryRun bool) acme.ReencryptResult {
	e.t.Helper()
	return e.reencryptOn(e.st, kr, dryRun)
}

func (e *rotEnv) reencryptOn(st kvstore.Store, kr *acme.Keyring, dryRun bool) acme.ReencryptResult {
	e.t.Helper()
	res, err := acme.Reencrypt(e.ctx, st, e.keys, kr, dryRun)
	if err != nil {
		e.t.Fatalf("Reencrypt: %v", err)
	}
	if res.Checked != res.Resealed+res.Current+len(res.Failed) {
		e.t.Fatalf("Checked %d != Resealed %d + Current %d + Failed %d", res.Checked, res.Resealed, res.Current, len(res.Failed))
	}
	return res
}

func wantCounts(t *testing.T, res acme.ReencryptResult, checked, resealed, current, failed int) {
	t.Helper()
	if res.Checked != checked || res.Resealed != resealed || res.Current != current || len(res.Failed) != failed {
		t.Fatalf("result %+v; want checked %d, resealed %d, current %d, failed %d", res, checked, resealed, current, failed)
	}
}

// sealedField is the name of the sealed field of the record at key.
func sealedField(key string) string {
	if strings.Contains(key, "/acme/accounts/") {
		return "key"
	}
	return "privateKey"
}

// checkResealed checks that after is before with only its sealed key
// replaced, now sealed under kr's active key, opening to the same PEM.
func checkResealed(t *testing.T, key string, before, after []byte, old, kr *acme.Keyring) {
	t.Helper()
	var b, a map[string]any
	if err := json.Unmarshal(before, &b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(after, &a); err != nil {
		t.Fatalf("%s: resealed record is not JSON: %v", key, err)
	}
	field := sealedField(key)
	sb, sa := b[field], a[field]
	delete(b, field)
	delete(a, field)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%s: resealing changed more than %s:\nbefore %v\nafter  %v", key, field, b, a)
	}
	var sealedBefore, sealedAfter acme.Sealed
	remarshal(t, sb, &sealedBefore)
	remarshal(t, sa, &sealedAfter)
	if kr.NeedsReseal(sealedAfter) {
		t.Fatalf("%s: sealed under %q/%q after Reencrypt, want key %s", key, sealedAfter.Alg, sealedAfter.KeyID, kr.ActiveID())
	}
	want, err := old.Open(key, sealedBefore)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kr.Open(key, sealedAfter)
	if err != nil {
		t.Fatalf("%s: resealed key does not open: %v", key, err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s: resealed key differs from the original", key)
	}
	if !kr.Plaintext() && strings.Contains(string(after), "PRIVATE KEY") {
		t.Fatalf("%s: resealed record holds the key in clear", key)
	}
	if strings.HasSuffix(string(after), "\n") || !strings.Contains(string(after), "\n  \"") {
		t.Fatalf("%s: not written as json.MarshalIndent(rec, \"\", \"  \") writes it", key)
	}
}

func remarshal(t *testing.T, v any, out any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

func TestReencrypt(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Client(t)
			t.Run("OldToNew", func(t *testing.T) { testReencryptOldToNew(t, st) })
			t.Run("DryRun", func(t *testing.T) { testReencryptDryRun(t, st) })
			t.Run("Undecodable", func(t *testing.T) { testReencryptUndecodable(t, st) })
			t.Run("Plaintext", func(t *testing.T) { testReencryptPlaintext(t, st) })
			t.Run("Conflict", func(t *testing.T) { testReencryptConflict(t, st) })
		})
	}
}

// testReencryptOldToNew reseals records of the old key under the new one,
// leaves other records alone, and finds everything current the second
// time.
func testReencryptOldToNew(t *testing.T, st kvstore.Store) {
	e := newRotEnv(t, st)
	oldKey, newKey := rotNewKey(t), rotNewKey(t)
	old, kr := rotKeyring(t, oldKey), rotKeyring(t, newKey, oldKey)
	before := map[string][]byte{}
	for _, name := range []string{"a.example.com", "b.example.com", "*.c.example.com"} {
		k := e.certKey(name)
		before[k] = rotCert(t, old, k, name, "0a")
		e.put(k, before[k])
	}
	ak := e.accountKey("ops@example.com")
	before[ak] = rotAccount(t, old, ak)
	e.put(ak, before[ak])
	// Records without keys are not Reencrypt's.
	stateKey, err := e.keys.State("a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	e.put(stateKey, []byte(`{"failures":1}`))
	stateRev := e.get(stateKey).Revision

	res := e.reencrypt(kr, false)
	wantCounts(t, res, 4, 4, 0, 0)
	if len(res.Changes) != 4 {
		t.Fatalf("changes %+v, want 4", res.Changes)
	}
	for _, c := range res.Changes {
		if before[c.Key] == nil || c.From != old.ActiveID() || c.To != kr.ActiveID() {
			t.Fatalf("change %+v; want one of the records, from %s to %s", c, old.ActiveID(), kr.ActiveID())
		}
	}
	newOnly := rotKeyring(t, newKey)
	revs := map[string]int64{}
	for k, b := range before {
		kv := e.get(k)
		revs[k] = kv.Revision
		checkResealed(t, k, b, kv.Value, old, newOnly)
	}
	// The certificates are served with the new key alone.
	for _, name := range []string{"a.example.com", "b.example.com", "*.c.example.com"} {
		k := e.certKey(name)
		rec, err := acme.DecodeCert(e.get(k).Value)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rec.KeyPair(newOnly, k); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if kv := e.get(stateKey); kv.Revision != stateRev {
		t.Fatalf("state record rewritten")
	}

	// Idempotent: everything is current, nothing is written.
	res = e.reencrypt(kr, false)
	wantCounts(t, res, 4, 0, 4, 0)
	for k, rev := range revs {
		if got := e.get(k).Revision; got != rev {
			t.Fatalf("%s rewritten by a second run: revision %d, was %d", k, got, rev)
		}
	}
}

// testReencryptDryRun counts what a run would do without writing.
func testReencryptDryRun(t *testing.T, st kvstore.Store) {
	e := newRotEnv(t, st)
	oldKey, newKey := rotNewKey(t), rotNewKey(t)
	old, kr := rotKeyring(t, oldKey), rotKeyring(t, newKey, oldKey)
	k1, k2 := e.certKey("a.example.com"), e.certKey("b.example.com")
	e.put(k1, rotCert(t, old, k1, "a.example.com", "01"))
	e.put(k2, rotCert(t, kr, k2, "b.example.com", "02"))
	ak := e.accountKey("")
	e.put(ak, rotAccount(t, old, ak))
	before := e.all()

	res := e.reencrypt(kr, true)
	wantCounts(t, res, 3, 2, 1, 0)
	if len(res.Changes) != 2 || res.Changes[0].Key != k1 || res.Changes[1].Key != ak {
		t.Fatalf("changes %+v, want %s then %s", res.Changes, k1, ak)
	}
	if after := e.all(); !reflect.DeepEqual(after, before) {
		t.Fatal("a dry run wrote to the store")
	}
	// The real run does what the dry run announced.
	wantCounts(t, e.reencrypt(kr, false), 3, 2, 1, 0)
}

// testReencryptUndecodable reports records that do not decode or open
// and leaves them as they are, resealing the others.
func testReencryptUndecodable(t *testing.T, st kvstore.Store) {
	e := newRotEnv(t, st)
	oldKey, newKey := rotNewKey(t), rotNewKey(t)
	old, kr := rotKeyring(t, oldKey), rotKeyring(t, newKey, oldKey)
	stranger := rotKeyring(t, rotNewKey(t))

	good := e.certKey("good.example.com")
	e.put(good, rotCert(t, old, good, "good.example.com", "01"))
	bad := map[string][]byte{}
	notJSON := e.certKey("garbage.example.com")
	bad[notJSON] = []byte(`{"version": 1, "privateKey": {"alg": "xchacha20poly1305", "data": "c2VjcmV0`)
	unknownKey := e.certKey("unknown-key.example.com")
	bad[unknownKey] = rotCert(t, stranger, unknownKey, "unknown-key.example.com", "02")
	moved := e.certKey("moved.example.com") // sealed for another key path
	bad[moved] = rotCert(t, old, e.certKey("elsewhere.example.com"), "moved.example.com", "03")
	newer := e.certKey("newer.example.com")
	bad[newer] = []byte(strings.Replace(string(rotCert(t, old, newer, "newer.example.com", "04")), "{\n", "{\n  \"futureField\": true,\n", 1))
	version := e.accountKey("v2@example.com")
	bad[version] = []byte(strings.Replace(string(rotAccount(t, old, version)), `"version": 1`, `"version": 2`, 1))
	for k, v := range bad {
		e.put(k, v)
	}
	revs := map[string]int64{}
	for k := range bad {
		revs[k] = e.get(k).Revision
	}

	res := e.reencrypt(kr, false)
	wantCounts(t, res, 6, 1, 0, 5)
	for k, v := range bad {
		i := slices.IndexFunc(res.Failed, func(f string) bool { return strings.HasPrefix(f, k+": ") })
		if i < 0 {
			t.Fatalf("%s not reported in %q", k, res.Failed)
		}
		var rec struct {
			PrivateKey, Key acme.Sealed
		}
		_ = json.Unmarshal(v, &rec)
		for _, s := range []acme.Sealed{rec.PrivateKey, rec.Key} {
			if s.Data != "" && strings.Contains(res.Failed[i], s.Data) {
				t.Fatalf("the reason for %s holds the sealed key: %s", k, res.Failed[i])
			}
		}
		if strings.Contains(res.Failed[i], "c2VjcmV0") {
			t.Fatalf("the reason holds part of the value: %s", res.Failed[i])
		}
		kv := e.get(k)
		if string(kv.Value) != string(v) || kv.Revision != revs[k] {
			t.Fatalf("%s was rewritten although it failed", k)
		}
	}
	for k, want := range map[string]string{
		notJSON: "not valid JSON", unknownKey: "not in the keyring", moved: "does not open",
		newer: "does not know", version: "version 2",
	} {
		i := slices.IndexFunc(res.Failed, func(f string) bool { return strings.HasPrefix(f, k+": ") })
		if !strings.Contains(res.Failed[i], want) {
			t.Fatalf("reason %q, want it to say %q", res.Failed[i], want)
		}
	}
	if kv := e.get(good); kr.NeedsReseal(sealedOf(t, kv.Value)) {
		t.Fatal("the good record was not resealed")
	}
}

func sealedOf(t *testing.T, b []byte) acme.Sealed {
	t.Helper()
	rec, err := acme.DecodeCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec.PrivateKey
}

// testReencryptPlaintext encrypts records stored in clear; the plaintext
// keyring finds them current and cannot open sealed ones.
func testReencryptPlaintext(t *testing.T, st kvstore.Store) {
	e := newRotEnv(t, st)
	plain := acme.PlaintextKeyring()
	k := e.certKey("clear.example.com")
	ak := e.accountKey("clear@example.com")
	before := map[string][]byte{k: rotCert(t, plain, k, "clear.example.com", "01"), ak: rotAccount(t, plain, ak)}
	for key, v := range before {
		e.put(key, v)
	}
	wantCounts(t, e.reencrypt(plain, false), 2, 0, 2, 0)

	kr := rotKeyring(t, rotNewKey(t))
	res := e.reencrypt(kr, false)
	wantCounts(t, res, 2, 2, 0, 0)
	for _, c := range res.Changes {
		if c.From != "plaintext" || c.To != kr.ActiveID() {
			t.Fatalf("change %+v, want plaintext → %s", c, kr.ActiveID())
		}
	}
	for key, v := range before {
		checkResealed(t, key, v, e.get(key).Value, plain, kr)
	}

	// The plaintext keyring holds no key to open them with.
	res = e.reencrypt(plain, false)
	wantCounts(t, res, 2, 0, 0, 2)
	if !strings.Contains(res.Failed[0], "not in the keyring") {
		t.Fatalf("reason %q", res.Failed[0])
	}
}

// interfering is a store on which another writer acts just before each
// of Reencrypt's writes.
type interfering struct {
	kvstore.Store
	writes   atomic.Int32
	meddling func(ctx context.Context, key string)
}

func (s *interfering) Apply(ctx context.Context, fence kvstore.Lock, ops ...kvstore.Op) (int64, error) {
	s.writes.Add(1)
	s.meddling(ctx, ops[0].Key)
	return s.Store.Apply(ctx, fence, ops...)
}

// testReencryptConflict has the leader write a record between
// Reencrypt's read and write: the leader's record wins and is resealed.
func testReencryptConflict(t *testing.T, st kvstore.Store) {
	e := newRotEnv(t, st)
	oldKey, newKey := rotNewKey(t), rotNewKey(t)
	old, kr := rotKeyring(t, oldKey), rotKeyring(t, newKey, oldKey)
	k := e.certKey("busy.example.com")
	e.put(k, rotCert(t, old, k, "busy.example.com", "01"))
	renewed := rotCert(t, old, k, "busy.example.com", "02")

	// The leader renews once, sealing under the old key (it had not
	// restarted yet).
	once := &interfering{Store: st}
	once.meddling = func(ctx context.Context, key string) {
		if once.writes.Load() == 1 {
			if _, err := kvstore.Put(ctx, st, key, renewed); err != nil {
				t.Error(err)
			}
		}
	}
	res := e.reencryptOn(once, kr, false)
	wantCounts(t, res, 1, 1, 0, 0)
	if once.writes.Load() != 2 {
		t.Fatalf("%d writes, want the conflicting one and its retry", once.writes.Load())
	}
	kv := e.get(k)
	rec, err := acme.DecodeCert(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Serial != "02" {
		t.Fatalf("serial %s: the leader's renewal was overwritten", rec.Serial)
	}
	checkResealed(t, k, renewed, kv.Value, old, kr)

	// The leader deletes the record meanwhile: nothing to reseal.
	gone := e.certKey("gone.example.com")
	e.put(gone, rotCert(t, old, gone, "gone.example.com", "03"))
	del := &interfering{Store: st}
	del.meddling = func(ctx context.Context, key string) {
		if key == gone {
			if err := kvstore.Delete(ctx, st, key); err != nil {
				t.Error(err)
			}
		}
	}
	e.put(k, renewed) // under the old key again
	res = e.reencryptOn(del, kr, false)
	wantCounts(t, res, 1, 1, 0, 0)
	if _, err := st.Get(e.ctx, gone); err == nil {
		t.Fatal("a deleted record came back")
	}

	// A record that never stops changing is reported, not fought over.
	e.put(k, renewed)
	serial := 10
	busy := &interfering{Store: st}
	busy.meddling = func(ctx context.Context, key string) {
		serial++
		if _, err := kvstore.Put(ctx, st, key, rotCert(t, old, key, "busy.example.com", fmt.Sprint(serial))); err != nil {
			t.Error(err)
		}
	}
	res = e.reencryptOn(busy, kr, false)
	wantCounts(t, res, 1, 0, 0, 1)
	if !strings.Contains(res.Failed[0], "run again") {
		t.Fatalf("reason %q", res.Failed[0])
	}
}
