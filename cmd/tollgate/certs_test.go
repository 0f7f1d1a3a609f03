package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// TestOpsCommands runs certs, kv, cluster status and version against the
// embedded store and a real Consul agent.
func TestOpsCommands(t *testing.T) {
	consul := testserver.Consul(t)
	for _, endpoint := range []string{"file:" + filepath.Join(t.TempDir(), "state.db"), "consul://" + consul.Addr} {
		name, _, _ := strings.Cut(endpoint, ":")
		t.Run(name, func(t *testing.T) { testOpsCommands(t, endpoint) })
	}
}

func testOpsCommands(t *testing.T, endpoint string) {
	key := encryptionKey(t)
	kr := keyring(t, key)
	keyFile := writeFile(t, "key", key+"\n")
	const hash = "$2y$05$SECRETSECRETSECRETSECRE"
	cfgFile := writeFile(t, "tollgate.toml", fmt.Sprintf(`
[store]
endpoint = %q
prefix = "ops"

[entryPoints.websecure]
address = "127.0.0.1:0"
  [entryPoints.websecure.http.tls]

[http.routers.a]
rule = "Host(`+"`a.example.com`"+`)"
service = "s"
middlewares = ["auth"]
[[http.services.s.loadBalancer.servers]]
url = "http://127.0.0.1:9"
[http.middlewares.auth.basicAuth]
users = ["admin:%s"]

[acme]
email = "ops@example.com"
encryptionKeyFile = %q
  [acme.tlsChallenge]
`, endpoint, hash, keyFile))
	if code, out, errOut := tollgate(t, "storeconfig", "--config", cfgFile); code != exitOK {
		t.Fatalf("storeconfig: exit %d\n%s%s", code, out, errOut)
	}
	keys := acme.NewKeys("ops")
	certKey, _ := keys.Cert("a.example.com")
	stateKey, _ := keys.State("b.example.com")
	record := sealedCert(t, kr, certKey, "a.example.com")
	withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
		state, _ := json.Marshal(acme.DomainState{Failures: 2, LastError: "rate limited", NextAttempt: time.Now().Add(time.Hour)})
		node, _ := json.Marshal(leader.NodeRecord{Node: leader.Node{ID: "node-1"}, Version: "v9", Started: time.Now()})
		if _, err := st.Apply(ctx, nil, kvstore.PutOp(certKey, record), kvstore.PutOp(stateKey, state), kvstore.PutOp("ops/acme/certs/x.example.com", record), kvstore.PutOp("ops/nodes/node-1", node)); err != nil {
			t.Fatal(err)
		}
	})
	kv := "--kv=" + endpoint
	for _, tc := range []struct {
		name         string
		args         []string
		code         int
		want, absent []string
	}{
		{"version", []string{"version"}, exitOK, []string{"tollgate ", "go1."}, nil},
		{"kv ls", []string{"kv", "ls", kv, "--prefix", "ops"}, exitOK, []string{certKey, "ops/config/current", "key(s) under ops/"}, nil},
		{"kv ls folder", []string{"kv", "ls", "acme/", kv, "--prefix", "ops"}, exitOK, []string{certKey, stateKey}, []string{"ops/config/current"}},
		{"kv get record", []string{"kv", "get", "--config", cfgFile, "acme/certs/" + acme.CertShard("a.example.com") + "/a.example.com"}, exitOK,
			[]string{"BEGIN CERTIFICATE", `"data": "(hidden, `, `"kid"`}, []string{"PRIVATE KEY"}},
		{"kv get whole key", []string{"kv", "get", kv, "--prefix", "ops", certKey}, exitOK, []string{"BEGIN CERTIFICATE"}, nil},
		{"kv get secret", []string{"kv", "get", "--config", cfgFile, "config/v1/http/middlewares/auth/basic-auth/users/0"}, exitOK, []string{"(hidden"}, []string{"SECRET"}},
		{"kv get missing", []string{"kv", "get", "--config", cfgFile, "acme/nothing"}, exitFailure, []string{"no such key"}, nil},
		{"kv get bad key", []string{"kv", "get", "--config", cfgFile, "a//b"}, exitUsage, nil, nil},
		{"kv no subcommand", []string{"kv"}, exitUsage, []string{"name a subcommand"}, nil},
		{"certs list", []string{"certs", "list", "--config", cfgFile}, exitOK,
			[]string{"a.example.com", "b.example.com", "(no certificate)", "2 failure(s)", "1 certificate(s)",
				"ops/acme/certs/x.example.com", "misplaced, not served: belongs at ops/acme/certs/" + acme.CertShard("x.example.com") + "/x.example.com"}, nil},
		{"certs show", []string{"certs", "show", "--config", cfgFile, "A.Example.com."}, exitOK,
			[]string{"key:      " + certKey, "state:    ok", "BEGIN CERTIFICATE", "(hidden, "}, []string{"PRIVATE KEY"}},
		{"certs show failing", []string{"certs", "show", "--config", cfgFile, "b.example.com"}, exitOK, []string{"no certificate stored", "rate limited"}, nil},
		{"certs show unknown", []string{"certs", "show", "--config", cfgFile, "c.example.com"}, exitFailure, []string{"nothing stored for c.example.com"}, nil},
		{"certs bad name", []string{"certs", "show", "--config", cfgFile, "not a name"}, exitUsage, nil, nil},
		{"certs no name", []string{"certs", "renew", "--config", cfgFile}, exitUsage, []string{"missing argument"}, nil},
		{"certs bad reason", []string{"certs", "revoke", "--config", cfgFile, "--reason", "bored", "a.example.com"}, exitUsage, []string{"--reason"}, nil},
		{"no leader", []string{"cluster", "status", "--config", cfgFile}, exitFailure,
			[]string{"leader:        none", "node-1", "v9", "1 (0 expire", "no leader"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tollgate(t, tc.args...)
			out := stdout + stderr
			if code != tc.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("output holds %q:\n%s", a, out)
				}
			}
		})
	}

	// renew: the record asks for renewal now, its key still opens.
	if code, out, errOut := tollgate(t, "certs", "renew", "--config", cfgFile, "a.example.com"); code != exitOK || !strings.Contains(out, "renewal of a.example.com") {
		t.Fatalf("renew: exit %d\n%s%s", code, out, errOut)
	}
	withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
		kv, err := st.Get(ctx, certKey)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := acme.DecodeCert(kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		if rec.ARI == nil || time.Since(rec.ARI.RenewAt) > time.Minute {
			t.Fatalf("renew did not set ari.renewAt: %+v", rec.ARI)
		}
		if _, err := rec.KeyPair(kr, certKey); err != nil {
			t.Fatalf("the renewed record's key no longer opens: %v", err)
		}
		// A leader elected: cluster status exits 0 and names it.
		info, _ := json.Marshal(leader.Info{Node: leader.Node{ID: "node-1"}, Since: time.Now(), Token: 7})
		if _, err := kvstore.Put(ctx, st, "ops/leader", info); err != nil {
			t.Fatal(err)
		}
	})
	if code, out, errOut := tollgate(t, "cluster", "status", "--config", cfgFile); code != exitOK || !strings.Contains(out, "leader:        node-1 (term 7") || !strings.Contains(out, "leader  ") {
		t.Fatalf("cluster status: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := tollgate(t, "certs", "list", "--config", cfgFile); code != exitOK || !strings.Contains(out, "renewal due") {
		t.Fatalf("certs list after renew: exit %d\n%s%s", code, out, errOut)
	}

	// delete, twice.
	if code, out, errOut := tollgate(t, "certs", "delete", "--config", cfgFile, "a.example.com"); code != exitOK || !strings.Contains(out, "deleted "+certKey) {
		t.Fatalf("delete: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := tollgate(t, "certs", "delete", "--config", cfgFile, "a.example.com"); code != exitFailure || !strings.Contains(errOut, "no certificate for a.example.com") {
		t.Fatalf("second delete: exit %d\n%s%s", code, out, errOut)
	}
}

func TestRedact(t *testing.T) {
	pemKey, _ := privateKeyPEM(t)
	for _, tc := range []struct {
		name, in string
		record   bool // an ACME record
		want     []string
	}{
		{"sealed", `{"privateKey":{"alg":"xchacha20poly1305","kid":"01234567","data":"c2VjcmV0"}}`, true, []string{`"kid": "01234567"`, `(hidden, 8 characters)`}},
		{"account", `{"key":{"alg":"plaintext","data":"c2VjcmV0"}}`, true, []string{`(hidden, 8 characters)`}},
		{"pem in json", fmt.Sprintf(`{"x":%q}`, "before\n"+string(pemKey)+"after"), false, []string{"before", "(private key hidden)", "after"}},
		{"raw pem", "a\n" + string(pemKey) + "b\n-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n", false, []string{"a\n(private key hidden)\nb\n-----BEGIN CERTIFICATE-----"}},
		{"unterminated", "x -----BEGIN EC PRIVATE KEY-----\nc2VjcmV0", false, []string{"x (private key hidden)"}},
		{"plain text", ":8080", false, []string{":8080"}},
		// Damaged records: nothing of the sealed data is shown, whatever
		// shape it is in.
		{"sealed key as a string", `{"privateKey":"c2VjcmV0"}`, true, []string{`"privateKey": "(hidden, 8 characters)"`}},
		{"sealed data not a string", `{"privateKey":{"alg":"xchacha20poly1305","data":["c2VjcmV0"]}}`, true, []string{`"data": "(hidden)"`}},
		{"sealed data in another field", `{"privateKey":{"alg":"xchacha20poly1305","kid":"c2VjcmV0+/==","dat":"c2VjcmV0"}}`, true, []string{`"kid": "(hidden, 12 characters)"`, `"dat": "(hidden, 8 characters)"`}},
		{"account key as a string", `{"key":"c2VjcmV0"}`, true, []string{`(hidden, 8 characters)`}},
		{"truncated record", `{"version":1,"privateKey":{"alg":"xchacha20poly1305","data":"c2VjcmV0`, true, []string{"(not valid JSON, 69 bytes: not shown"}},
		{"truncated JSON elsewhere", `{"data":"c2VjcmV0`, false, []string{"(not valid JSON, 17 bytes: not shown"}},
		{"record not JSON", "c2VjcmV0", true, []string{"(not valid JSON, 8 bytes: not shown"}},
		{"binary", "\xff\x00c2VjcmV0\x80", false, []string{"(not UTF-8 text, 11 bytes: not shown)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(redact([]byte(tc.in), tc.record))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("redact(%q) = %q, lacks %q", tc.in, got, w)
				}
			}
			if strings.Contains(got, "c2VjcmV0") || strings.Contains(got, "PRIVATE KEY-----\nM") {
				t.Errorf("redact(%q) = %q: the secret is still there", tc.in, got)
			}
		})
	}
}

// TestCertsUnusable (issue 14, A7 and A10): records that decode but cannot
// be served (the key sealed for another name, a chain not the key's), a
// garbage one and a truncated one are each reported failing by certs
// list, certs show and cluster status, and nothing of their sealed keys or
// bytes is printed, by certs show or kv get.
func TestCertsUnusable(t *testing.T) {
	endpoint := "file:" + filepath.Join(t.TempDir(), "state.db")
	key := encryptionKey(t)
	kr := keyring(t, key)
	cfgFile := acmeConfig(t, endpoint, fmt.Sprintf("encryptionKeyFile = %q", writeFile(t, "key", key+"\n")))
	keys := acme.NewKeys("keys")
	names := []string{"wrongkey.example.com", "wrongchain.example.com", "garbage.example.com", "truncated.example.com", "good.example.com"}
	records := map[string][]byte{}
	var secrets []string
	for _, n := range names {
		certKey, _ := keys.Cert(n)
		records[n] = sealedCert(t, kr, certKey, n)
	}
	decode := func(b []byte) acme.CertRecord {
		var r acme.CertRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	wrongKey, other := decode(records[names[0]]), decode(records[names[1]])
	wrongKey.PrivateKey = other.PrivateKey
	records[names[0]], _ = json.Marshal(wrongKey)
	wrongChain := decode(records[names[1]])
	wrongChain.Certificate = decode(sealedCert(t, kr, "elsewhere", names[1])).Certificate
	records[names[1]], _ = json.Marshal(wrongChain)
	secrets = append(secrets, wrongKey.PrivateKey.Data[:16], wrongChain.PrivateKey.Data[:16])
	records[names[2]] = []byte("\x00\xff\x13garbage-c2VjcmV0-garbage\xfe")
	secrets = append(secrets, "c2VjcmV0")
	full := decode(records[names[3]])
	records[names[3]] = records[names[3]][:len(records[names[3]])*3/4]
	secrets = append(secrets, full.PrivateKey.Data[:16])
	withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
		var ops []kvstore.Op
		for n, b := range records {
			certKey, _ := keys.Cert(n)
			ops = append(ops, kvstore.PutOp(certKey, b))
		}
		if _, err := st.Apply(ctx, nil, ops...); err != nil {
			t.Fatal(err)
		}
	})
	noSecret := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s prints %q:\n%s", what, s, out)
			}
		}
	}

	code, out, errOut := tollgate(t, "certs", "list", "--config", cfgFile)
	if code != exitOK {
		t.Fatalf("certs list: exit %d\n%s%s", code, out, errOut)
	}
	noSecret("certs list", out+errOut)
	for _, line := range strings.Split(out, "\n") {
		name, _, _ := strings.Cut(line, " ")
		if failing := strings.Contains(line, "failing: stored record unusable"); slices.Contains(names, name) && failing != (name != "good.example.com") {
			t.Errorf("certs list: %s", line)
		}
	}
	code, out, errOut = tollgate(t, "cluster", "status", "--config", cfgFile)
	if code != exitFailure || !strings.Contains(out, "4 name(s) failing (4 with an unusable record)") {
		t.Errorf("cluster status: exit %d\n%s%s", code, out, errOut)
	}
	noSecret("cluster status", out+errOut)
	for _, n := range names[:4] {
		code, out, errOut = tollgate(t, "certs", "show", "--config", cfgFile, n)
		if code != exitOK || !strings.Contains(out, "failing: stored record unusable") || !strings.Contains(out, "error:") {
			t.Errorf("certs show %s: exit %d\n%s%s", n, code, out, errOut)
		}
		noSecret("certs show "+n, out+errOut)
		certKey, _ := keys.Cert(n)
		code, out, errOut = tollgate(t, "kv", "get", "--config", cfgFile, certKey)
		if code != exitOK {
			t.Errorf("kv get %s: exit %d\n%s%s", n, code, out, errOut)
		}
		noSecret("kv get "+n, out+errOut)
	}
	// Without the encryption key, the keys are not checked, and it is said.
	code, out, errOut = tollgate(t, "certs", "list", "--kv", endpoint, "--prefix", "keys")
	if code != exitOK || !strings.Contains(errOut, "private keys not checked") || !strings.Contains(out, "garbage.example.com") {
		t.Errorf("certs list without the key: exit %d\n%s%s", code, out, errOut)
	}
}

// TestClusterStatusRetries: cluster status shows the names waiting for a
// retry after a failure, and a leader that cannot load the ACME account
// (which holds every order back) — not as a failing name.
func TestClusterStatusRetries(t *testing.T) {
	endpoint := "file:" + filepath.Join(t.TempDir(), "state.db")
	key := encryptionKey(t)
	cfgFile := acmeConfig(t, endpoint, fmt.Sprintf("encryptionKeyFile = %q", writeFile(t, "key", key+"\n")))
	keys := acme.NewKeys("keys")
	now := time.Now().UTC()
	withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
		var ops []kvstore.Op
		for name, in := range map[string]time.Duration{"soon.example.com": time.Minute, "later.example.com": time.Hour} {
			k, _ := keys.State(name)
			b, _ := json.Marshal(acme.DomainState{Failures: 2, LastError: "validation failed", LastAttempt: now, NextAttempt: now.Add(in)})
			ops = append(ops, kvstore.PutOp(k, b))
		}
		k, _ := keys.AccountState()
		b, _ := json.Marshal(acme.DomainState{Failures: 3, LastError: "register account at https://ca.test/dir: connection refused", LastAttempt: now, NextAttempt: now.Add(4 * time.Minute)})
		ops = append(ops, kvstore.PutOp(k, b))
		if _, err := st.Apply(ctx, nil, ops...); err != nil {
			t.Fatal(err)
		}
	})
	_, out, errOut := tollgate(t, "cluster", "status", "--config", cfgFile)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^retries: +soon\.example\.com in [\dms]+ \(2 failure\(s\)\), later\.example\.com in [\dhms]+ \(2 failure\(s\)\)$`),
		regexp.MustCompile(`(?m)^account: +failing: no order is placed until it loads \(3 attempt\(s\), next in [\dms]+\): register account at https://ca\.test/dir: connection refused$`),
		regexp.MustCompile(`(?m)2 name\(s\) failing`),
	} {
		if !want.MatchString(out) {
			t.Errorf("cluster status does not match %s:\n%s%s", want, out, errOut)
		}
	}
	_, out, _ = tollgate(t, "certs", "list", "--config", cfgFile)
	if strings.Contains(out, acme.AccountStateName) {
		t.Errorf("certs list shows the account's failure as a name:\n%s", out)
	}
}
