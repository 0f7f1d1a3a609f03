package acme_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// fuzzKey is a fixed keyring key, so that fuzz inputs reproduce.
const fuzzKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func FuzzDecodeCert(f *testing.F) {
	kr := parseKeyring(f, fuzzKey)
	const key = "tollgate/acme/certs/example.com"
	certPEM, keyPEM, _ := selfSigned(f, []string{"example.com"}, time.Now().Add(time.Hour))
	sealed, err := kr.Seal(key, keyPEM)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(acme.CertRecord{
		Version: acme.RecordVersion, Domains: []string{"example.com"},
		Certificate: string(certPEM), PrivateKey: sealed,
	})
	f.Add(good)
	f.Add([]byte(`{"version":1,"domains":["a"],"certificate":"x","privateKey":{"alg":"plaintext","data":"y"}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"domains":[]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := acme.DecodeCert(b)
		if err != nil {
			return
		}
		if rec.Version != acme.RecordVersion || len(rec.Domains) == 0 || rec.Certificate == "" {
			t.Fatalf("decoded a record DecodeCert should refuse: %+v", rec)
		}
		pair, err := rec.KeyPair(kr, key)
		if err == nil && (pair == nil || len(pair.Certificate) == 0) {
			t.Fatal("KeyPair returned no certificate and no error")
		}
		if checked, err := acme.CheckCert(kr, key, b); checked == nil {
			t.Fatalf("CheckCert returned no record for one DecodeCert decodes (err %v)", err)
		}
	})
}

func FuzzParseKeyring(f *testing.F) {
	f.Add(fuzzKey)
	f.Add("# comment\n" + fuzzKey + "," + strings.TrimRight(fuzzKey, "="))
	f.Add("")
	f.Add("AAAA")
	f.Add("#\n\n\r\n ,,")
	f.Fuzz(func(t *testing.T, text string) {
		kr, err := acme.ParseKeyring(text)
		if err != nil {
			return
		}
		if id := kr.ActiveID(); len(id) != 8 {
			t.Fatalf("active key id %q is not 8 hex digits", id)
		}
		s, err := kr.Seal("k", []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := kr.Open("k", s); err != nil || string(got) != "v" {
			t.Fatalf("round trip: %q, %v", got, err)
		}
	})
}

func FuzzKeysParse(f *testing.F) {
	keys := acme.NewKeys("tollgate")
	for _, build := range []func() (string, error){
		func() (string, error) { return keys.Cert("example.com") },
		func() (string, error) { return keys.Order("*.example.com") },
		func() (string, error) { return keys.State("example.com") },
		func() (string, error) { return keys.Request("a.example.com") },
		func() (string, error) { return keys.HTTP01("tok_en-1") },
		func() (string, error) { return keys.TLSALPN01("example.com") },
		func() (string, error) { return keys.Account("https://acme.example/dir", "ops@example.com") },
	} {
		k, err := build()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(k)
	}
	f.Add("tollgate/acme/certs/")
	f.Add("tollgate/acme/certs/example.com")
	f.Add("tollgate/acme/certs/0/example.com")
	f.Add("tollgate/acme//x")
	f.Add("tollgate/acme/challenges/http-01")
	f.Add("tollgate/acmex/certs/a")
	f.Fuzz(func(t *testing.T, key string) {
		p, ok := keys.Parse(key)
		if !ok {
			return
		}
		if p.Dir == "" || p.Name == "" {
			t.Fatalf("Parse(%q) = %+v: empty part", key, p)
		}
		// Nothing is lost: the parts make the key again (a certificate's
		// shard follows from its name).
		got := keys.Root + "/" + p.Dir + "/" + p.Name
		if p.Dir == "certs" {
			got = keys.Root + "/certs/" + acme.CertShard(p.Name) + "/" + p.Name
		}
		if got != key {
			t.Fatalf("Parse(%q) = %+v, which makes %q", key, p, got)
		}
		if kvstore.ValidateKey(key) != nil {
			return
		}
		// For the item folders, the key builders agree.
		var rebuilt string
		var err error
		switch p.Dir {
		case "certs":
			rebuilt, err = keys.Cert(p.Name)
		case "orders":
			rebuilt, err = keys.Order(p.Name)
		case "challenges/http-01":
			rebuilt, err = keys.HTTP01(p.Name)
		case "challenges/tls-alpn-01":
			rebuilt, err = keys.TLSALPN01(p.Name)
		default:
			return
		}
		if err != nil || rebuilt != key {
			t.Fatalf("Parse(%q) = %+v, which the builder makes into %q, %v", key, p, rebuilt, err)
		}
	})
}

func FuzzSealedOpen(f *testing.F) {
	kr := parseKeyring(f, fuzzKey)
	good, err := kr.Seal("k", []byte("secret"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Alg, good.KeyID, good.Data, "k")
	f.Add(good.Alg, good.KeyID, good.Data, "other")
	f.Add(good.Alg, good.KeyID, good.Data[:20], "k")
	f.Add(acme.AlgPlaintext, "", "pem", "k")
	f.Add("", "", "", "")
	f.Add(acme.AlgXChaCha, good.KeyID, base64.StdEncoding.EncodeToString(make([]byte, 40)), "k")
	f.Fuzz(func(t *testing.T, alg, kid, data, path string) {
		s := acme.Sealed{Alg: alg, KeyID: kid, Data: data}
		got, err := kr.Open(path, s)
		// Only "secret", sealed at "k" under fuzzKey (by this process or
		// the one that made the seed corpus), opens: forging a seal is not
		// expected from a fuzzer.
		if err == nil && alg == acme.AlgXChaCha && (path != "k" || string(got) != "secret") {
			t.Fatalf("opened a sealed value the keyring never made: %q", got)
		}
		_, _ = acme.PlaintextKeyring().Open(path, s)
		_ = kr.NeedsReseal(s)
	})
}
