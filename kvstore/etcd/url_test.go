package etcd

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

var parseURLTests = []struct {
	name    string
	url     string
	want    Config // compared on the fields ParseURL sets
	wantErr string // substring of the error; empty: no error
}{
	{name: "one host", url: "etcd://10.0.0.1:2379",
		want: Config{Endpoint: "etcd://10.0.0.1:2379", Endpoints: []string{"10.0.0.1:2379"}}},
	{name: "several hosts, default port", url: "etcd://h1,h2:2380,h3:2379/",
		want: Config{Endpoint: "etcd://h1:2379,h2:2380,h3:2379", Endpoints: []string{"h1:2379", "h2:2380", "h3:2379"}}},
	{name: "ipv6", url: "etcd://[::1]:2379",
		want: Config{Endpoint: "etcd://[::1]:2379", Endpoints: []string{"[::1]:2379"}}},
	{name: "tls with files", url: "etcd://h:2379?ca_file=/ca.pem&cert_file=/c.pem&key_file=/k.pem&server_name=etcd.local",
		want: Config{Endpoint: "etcd://h:2379", Endpoints: []string{"h:2379"}, TLS: kvstore.ClientTLS{Enabled: true,
			CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem", ServerName: "etcd.local"}}},
	{name: "tls only", url: "etcd://h:2379?tls=true&insecure_skip_verify=true",
		want: Config{Endpoint: "etcd://h:2379", Endpoints: []string{"h:2379"},
			TLS: kvstore.ClientTLS{Enabled: true, InsecureSkipVerify: true}}},
	{name: "tls plain", url: "etcd://h:2379?tls=1",
		want: Config{Endpoint: "etcd://h:2379", Endpoints: []string{"h:2379"}, TLS: kvstore.ClientTLS{Enabled: true}}},
	{name: "tls off", url: "etcd://h:2379?tls=false",
		want: Config{Endpoint: "etcd://h:2379", Endpoints: []string{"h:2379"}}},
	{name: "auth", url: "etcd://h:2379?username=tollgate&password_file=/run/secrets/etcd",
		want: Config{Endpoint: "etcd://h:2379", Endpoints: []string{"h:2379"}, Username: "tollgate",
			PasswordFile: "/run/secrets/etcd"}},
	{name: "user in userinfo", url: "etcd://tollgate@h:2379",
		want: Config{Endpoint: "etcd://h:2379", Endpoints: []string{"h:2379"}, Username: "tollgate"}},

	{name: "wrong scheme", url: "consul://h:8500", wantErr: `scheme "consul", want "etcd"`},
	{name: "no host", url: "etcd:///", wantErr: "no host"},
	{name: "opaque", url: "etcd:h:2379", wantErr: "no host"},
	{name: "path", url: "etcd://h:2379/prefix", wantErr: `path "/prefix" not supported`},
	{name: "password in userinfo", url: "etcd://u:hunter2@h:2379", wantErr: "password in the URL is not accepted"},
	{name: "password parameter", url: "etcd://h:2379?password=hunter2", wantErr: "use password_file=PATH"},
	{name: "unknown parameter", url: "etcd://h:2379?timeout=5s", wantErr: `unknown parameter "timeout"; known: tls, ca_file`},
	{name: "repeated parameter", url: "etcd://h:2379?tls=true&tls=true", wantErr: `"tls" given 2 times`},
	{name: "bad bool", url: "etcd://h:2379?tls=yes", wantErr: `tls="yes": want true or false`},
	{name: "empty parameter", url: "etcd://h:2379?ca_file=", wantErr: "parameter ca_file is empty"},
	{name: "empty username", url: "etcd://h:2379?username=", wantErr: "parameter username is empty"},
	{name: "tls off with files", url: "etcd://h:2379?tls=false&ca_file=/ca.pem", wantErr: "tls=false contradicts"},
	{name: "tls off with skip verify", url: "etcd://h:2379?insecure_skip_verify=true&tls=false", wantErr: "tls=false contradicts"},
	{name: "cert without key", url: "etcd://h:2379?cert_file=/c.pem", wantErr: "needs both cert_file and key_file"},
	{name: "empty host", url: "etcd://h1:2379,,h2:2379", wantErr: "empty host"},
	{name: "bad port", url: "etcd://h:0", wantErr: "bad port"},
	{name: "port not a number", url: "etcd://h:x,h2:2379", wantErr: "bad port"},
	{name: "two users", url: "etcd://a@h:2379?username=b", wantErr: `username "b" contradicts`},
	{name: "fragment", url: "etcd://h:2379#x", wantErr: "fragment"},
}

func TestParseURL(t *testing.T) {
	for _, tc := range parseURLTests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatalf("url.Parse: %v", err)
			}
			got, err := ParseURL(u)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %q reveals the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !equalConfig(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func equalConfig(a, b Config) bool { return reflect.DeepEqual(a, b) }

func TestPasswordPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPassword, "from-env")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
		err  string
	}{
		{"flag wins", Config{Username: "u", Password: "from-flag", PasswordFile: file}, "from-flag", ""},
		{"file next", Config{Username: "u", PasswordFile: file}, "from-file", ""},
		{"env last", Config{Username: "u"}, "from-env", ""},
		{"no user, no auth", Config{}, "", ""},
		{"password without user", Config{Password: "x"}, "", "no username"},
		{"missing file", Config{Username: "u", PasswordFile: file + ".missing"}, "", "read password file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.password()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Setenv(EnvPassword, "")
	if _, err := (Config{Username: "u"}).password(); err == nil || !strings.Contains(err.Error(), EnvPassword) {
		t.Fatalf("user without any password: got %v, want an error pointing at %s", err, EnvPassword)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, tc := range parseURLTests {
		f.Add(tc.url)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		cfg, err := ParseURL(u)
		if _, hasPW := u.User.Password(); hasPW && err == nil {
			t.Fatalf("ParseURL(%q) accepted a password in the URL", raw)
		}
		if err != nil {
			return
		}
		if len(cfg.Endpoints) == 0 || !strings.HasPrefix(cfg.Endpoint, "etcd://") || cfg.Password != "" {
			t.Fatalf("ParseURL(%q) = %+v: want endpoints, an etcd:// Endpoint and no password", raw, cfg)
		}
		if _, err := cfg.clientEndpoints(); err != nil {
			t.Fatalf("ParseURL(%q): endpoints %q rejected by New: %v", raw, cfg.Endpoints, err)
		}
		// What ParseURL accepts, it accepts again from its own Endpoint.
		again, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return // url.Parse refuses some host lists it produced itself (IPv6 lists)
		}
		cfg2, err := ParseURL(again)
		if err != nil || !slices.Equal(cfg2.Endpoints, cfg.Endpoints) {
			t.Fatalf("ParseURL(%q) endpoints %q; reparsed: %q, %v", raw, cfg.Endpoints, cfg2.Endpoints, err)
		}
	})
}

// TestTLSConfigErrors checks that New refuses contradictory or unreadable
// TLS settings before connecting, saying what is wrong.
func TestTLSConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		tls  kvstore.ClientTLS
		want string
	}{
		{"files without tls", kvstore.ClientTLS{CAFile: missing}, "need TLS: add tls=true"},
		{"cert without key", kvstore.ClientTLS{Enabled: true, CertFile: missing}, "needs both cert_file and key_file"},
		{"unreadable CA file", kvstore.ClientTLS{Enabled: true, CAFile: missing}, "read CA file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.Context(), Config{Endpoints: []string{"127.0.0.1:1"}, TLS: tc.tls})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "etcd://127.0.0.1:1") {
				t.Fatalf("got %v, want an error naming the endpoint and containing %q", err, tc.want)
			}
		})
	}
	eps, err := Config{Endpoints: []string{"h:2379"}, TLS: kvstore.ClientTLS{Enabled: true}}.clientEndpoints()
	if err != nil || !slices.Equal(eps, []string{"https://h:2379"}) {
		t.Fatalf("endpoints with TLS: got %q, %v; want https://h:2379", eps, err)
	}
}
