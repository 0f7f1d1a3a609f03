package migrate_test

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/migrate"
)

// TestImportChecks imports one Traefik 1.x value at a time into an
// embedded store and checks what Import does with each kind of entry.
func TestImportChecks(t *testing.T) {
	type want struct {
		name   string
		status migrate.Status
		detail string // a part of the item's Detail
	}
	const email, acct = "ops@example.com", "https://acme-v02.api.letsencrypt.org/acme/acct/1"
	now := time.Now().Truncate(time.Second)
	day := func(d int) time.Time { return now.Add(time.Duration(d) * 24 * time.Hour) }
	acctImported := want{email, migrate.StatusImported, acct}
	var (
		dupSerial   string     // the serial of the duplicate that must win
		expiredDays = day(-10) // when the expired certificate expired
		dupLatest   = day(80)  // the latest expiry among duplicates
		keys        = acme.NewKeys("tollgate")
	)
	for _, tc := range []struct {
		name       string
		accountURI string
		entries    func(t *testing.T, ca *testCA) []v1Entry
		opts       migrate.ImportOptions
		want       []want
		// check inspects the store afterwards.
		check func(t *testing.T, ctx context.Context, st kvstore.Store)
	}{{
		name: "key of another certificate", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			c := ca.valid(t, ecKey(t, elliptic.P256()), "a.example.com")
			c.keyPEM = legoKeyPEM(t, ecKey(t, elliptic.P256()))
			return []v1Entry{{main: "a.example.com", cert: c}}
		},
		want:  []want{acctImported, {"a.example.com", migrate.StatusFailed, "the private key does not match the certificate"}},
		check: absent("a.example.com"),
	}, {
		name: "expired", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			return []v1Entry{{main: "old.example.com", cert: ca.issue(t, ecKey(t, elliptic.P256()), day(-100), expiredDays, "old.example.com")}}
		},
		want:  []want{acctImported, {"old.example.com", migrate.StatusSkipped, "expired on " + expiredDays.UTC().Format(time.DateOnly) + "; --include-expired imports it anyway"}},
		check: absent("old.example.com"),
	}, {
		name: "expired, included", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			return []v1Entry{{main: "old.example.com", cert: ca.issue(t, ecKey(t, elliptic.P256()), day(-100), expiredDays, "old.example.com")}}
		},
		opts: migrate.ImportOptions{IncludeExpired: true},
		want: []want{acctImported, {"old.example.com", migrate.StatusImported, "expires " + expiredDays.UTC().Format(time.DateOnly)}},
		check: func(t *testing.T, ctx context.Context, st kvstore.Store) {
			if rec := certRecord(t, ctx, st, keys, "old.example.com"); !rec.NotAfter.Equal(expiredDays) {
				t.Fatalf("notAfter %s, want %s", rec.NotAfter, expiredDays)
			}
		},
	}, {
		name: "duplicates: the latest expiry wins", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			var out []v1Entry
			for _, end := range []time.Time{day(20), dupLatest, day(50)} {
				out = append(out, v1Entry{main: "example.com", cert: ca.issue(t, ecKey(t, elliptic.P256()), day(-10), end, "example.com")})
			}
			dupSerial = fmt.Sprintf("%x", out[1].cert.leaf.SerialNumber)
			return out
		},
		want: []want{acctImported,
			{"example.com", migrate.StatusSkipped, "a duplicate: another certificate for example.com, expiring " + dupLatest.UTC().Format(time.DateOnly) + ", is imported instead"},
			{"example.com", migrate.StatusImported, "expires " + dupLatest.UTC().Format(time.DateOnly)},
			{"example.com", migrate.StatusSkipped, "a duplicate"},
		},
		check: func(t *testing.T, ctx context.Context, st kvstore.Store) {
			if rec := certRecord(t, ctx, st, keys, "example.com"); rec.Serial != dupSerial {
				t.Fatalf("the record is serial %s, want %s, the one that expires last", rec.Serial, dupSerial)
			}
		},
	}, {
		name: "names the certificate lacks are dropped", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			c := ca.valid(t, ecKey(t, elliptic.P256()), "shop.example.com", "www.shop.example.com")
			return []v1Entry{{main: "Shop.Example.com.", sans: []string{"shop.example.com", "old.example.com", "WWW.shop.example.com."}, cert: c}}
		},
		want: []want{acctImported, {"shop.example.com", migrate.StatusImported, "names Traefik listed that the certificate does not cover are left out: old.example.com"}},
		check: func(t *testing.T, ctx context.Context, st kvstore.Store) {
			rec := certRecord(t, ctx, st, keys, "shop.example.com")
			if want := []string{"shop.example.com", "www.shop.example.com"}; !slices.Equal(rec.Domains, want) {
				t.Fatalf("domains %v, want %v", rec.Domains, want)
			}
		},
	}, {
		name: "main domain not covered", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			return []v1Entry{{main: "other.example.com", cert: ca.valid(t, ecKey(t, elliptic.P256()), "a.example.com")}}
		},
		want:  []want{acctImported, {"other.example.com", migrate.StatusFailed, `does not cover its main domain "other.example.com"`}},
		check: absent("other.example.com"),
	}, {
		name: "main domain from the certificate", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			return []v1Entry{{cert: ca.valid(t, ecKey(t, elliptic.P256()), "cn.example.com")}}
		},
		want: []want{acctImported, {"cn.example.com", migrate.StatusImported, "issued by Test Intermediate R1"}},
	}, {
		name: "a wildcard", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			return []v1Entry{{main: "*.example.net", cert: ca.valid(t, ecKey(t, elliptic.P256()), "*.example.net")}}
		},
		want: []want{acctImported, {"*.example.net", migrate.StatusImported, "renewing it needs [acme.dnsChallenge]"}},
	}, {
		name: "unreadable entries", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			noChain := ca.valid(t, ecKey(t, elliptic.P256()), "b.example.com")
			noChain.chain = []byte("not a certificate")
			noKey := ca.valid(t, ecKey(t, elliptic.P256()), "c.example.com")
			noKey.keyPEM = []byte("not a key")
			badDER := ca.valid(t, ecKey(t, elliptic.P256()), "d.example.com")
			badDER.chain = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})
			return []v1Entry{{main: "b.example.com", cert: noChain}, {main: "c.example.com", cert: noKey}, {main: "d.example.com", cert: badDER}}
		},
		want: []want{acctImported,
			{"b.example.com", migrate.StatusFailed, "no PEM certificate in the entry"},
			{"c.example.com", migrate.StatusFailed, "no PEM private key in the entry"},
			{"d.example.com", migrate.StatusFailed, "the certificate does not parse"},
		},
	}, {
		name: "entries without certificate or key", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			noChain := ca.valid(t, ecKey(t, elliptic.P256()), "e.example.com")
			noChain.chain = nil
			noKey := ca.valid(t, ecKey(t, elliptic.P256()), "f.example.com")
			noKey.keyPEM = nil
			return []v1Entry{{main: "e.example.com", cert: noChain}, {main: "f.example.com", cert: noKey}}
		},
		want: []want{acctImported,
			{"e.example.com", migrate.StatusSkipped, "an entry without certificate or key, which Traefik ignores too"},
			{"f.example.com", migrate.StatusSkipped, "an entry without certificate or key"},
		},
	}, {
		name: "dry run", accountURI: acct,
		entries: func(t *testing.T, ca *testCA) []v1Entry {
			return []v1Entry{{main: "a.example.com", cert: ca.valid(t, ecKey(t, elliptic.P256()), "a.example.com")}}
		},
		opts:  migrate.ImportOptions{DryRun: true},
		want:  []want{acctImported, {"a.example.com", migrate.StatusImported, "expires"}},
		check: mustBeEmpty,
	}, {
		name: "account not registered", accountURI: "",
		want: []want{{email, migrate.StatusSkipped, "Traefik had not registered it"}},
	}, {
		name: "ACME v1 account", accountURI: "https://acme-v01.api.letsencrypt.org/acme/reg/123",
		want: []want{{email, migrate.StatusSkipped, "an ACME v1 account"}},
	}, {
		name: "account at another CA", accountURI: "https://acme.example.net/acme/acct/7",
		want:  []want{{email, migrate.StatusSkipped, "registered at acme.example.net, not at the configured CA " + prodCA}},
		check: mustBeEmpty,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			st := embeddedStore(t)
			kr, _ := newKeyring(t)
			acctKey := rsaKey(t)
			var entries []v1Entry
			if tc.entries != nil {
				entries = tc.entries(t, newTestCA(t, "Test Intermediate R1"))
			}
			secrets := secretsOf(t, legoKeyPEM(t, acctKey))
			for _, e := range entries {
				if bytes.Contains(e.cert.keyPEM, []byte("PRIVATE KEY")) {
					secrets = append(secrets, secretsOf(t, e.cert.keyPEM)...)
				}
			}
			imp, err := migrate.DecodeTraefikV1(gzipped(t, mustJSON(t, traefikV1Account(acctKey, email, tc.accountURI, entries...))))
			if err != nil {
				t.Fatalf("DecodeTraefikV1: %v", err)
			}
			res, err := migrate.Import(ctx, st, keys, kr, prodCA, imp, tc.opts)
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			var got []string
			for _, it := range res.Items {
				got = append(got, it.String())
				noSecret(t, "the item", it.String()+" "+it.Detail+" "+it.Origin, secrets)
			}
			if len(res.Items) != len(tc.want) {
				t.Fatalf("items:\n%s\nwant %d", strings.Join(got, "\n"), len(tc.want))
			}
			for i, w := range tc.want {
				it := res.Items[i]
				if it.Name != w.name || it.Status != w.status || !strings.Contains(it.Detail, w.detail) {
					t.Errorf("item %d = %s; want %s %s (%s…)", i, it, w.name, w.status, w.detail)
				}
				written := it.Status == migrate.StatusImported || it.Status == migrate.StatusReplaced
				if it.DryRun != (tc.opts.DryRun && written) {
					t.Errorf("%s: DryRun %t", it, it.DryRun)
				}
				if tc.opts.DryRun && written && !strings.Contains(it.String(), "would be "+string(it.Status)) {
					t.Errorf("%q does not say it would be %s", it, it.Status)
				}
			}
			if tc.check != nil {
				tc.check(t, ctx, st)
			}
		})
	}
}

// absent checks that no record was written for name.
func absent(name string) func(*testing.T, context.Context, kvstore.Store) {
	return func(t *testing.T, ctx context.Context, st kvstore.Store) {
		t.Helper()
		key, err := acme.NewKeys("tollgate").Cert(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, key); !errors.Is(err, kvstore.ErrNotFound) {
			t.Fatalf("%s: %v, want no record", key, err)
		}
	}
}

func mustBeEmpty(t *testing.T, ctx context.Context, st kvstore.Store) {
	t.Helper()
	l, err := st.List(ctx, "")
	if err != nil || len(l.KVs) != 0 {
		t.Fatalf("%d keys written (%v), want none", len(l.KVs), err)
	}
}

// certRecord reads and opens the record of name.
func certRecord(t *testing.T, ctx context.Context, st kvstore.Store, keys acme.Keys, name string) *acme.CertRecord {
	t.Helper()
	key, err := keys.Cert(name)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := st.Get(ctx, key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	rec, err := acme.DecodeCert(kv.Value)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return rec
}

// TestImportStoreFails checks that a failing store stops the import with
// an error and the items done so far.
func TestImportStoreFails(t *testing.T) {
	ctx := testContext(t)
	st := embeddedStore(t)
	kr, _ := newKeyring(t)
	ca := newTestCA(t, "Test Intermediate R1")
	imp, err := migrate.DecodeTraefikV1(mustJSON(t, traefikV1Account(rsaKey(t), "ops@example.com", "https://acme-v02.api.letsencrypt.org/acme/acct/1",
		v1Entry{main: "a.example.com", cert: ca.valid(t, ecKey(t, elliptic.P256()), "a.example.com")})))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Import(ctx, st, acme.NewKeys("tollgate"), kr, prodCA, imp, migrate.ImportOptions{})
	if err == nil || res == nil || len(res.Items) != 1 || res.Items[0].Kind != "account" {
		t.Fatalf("Import into a closed store: %v, %v; want an error after the account", res, err)
	}
	if _, err := migrate.Import(ctx, st, acme.NewKeys("tollgate"), nil, prodCA, imp, migrate.ImportOptions{}); err == nil {
		t.Fatal("Import without a keyring: no error")
	}
	if _, err := migrate.Import(ctx, st, acme.NewKeys("tollgate"), kr, prodCA, nil, migrate.ImportOptions{}); err == nil {
		t.Fatal("Import of nothing: no error")
	}
}
