package consul

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

var urlCases = []struct {
	name string
	url  string
	want Config // compared when wantErr is empty
	// wantErr is a fragment the error must contain.
	wantErr string
}{
	{name: "plain", url: "consul://127.0.0.1:8500",
		want: Config{Endpoint: "consul://127.0.0.1:8500", Address: "127.0.0.1:8500"}},
	{name: "default port", url: "consul://consul.service",
		want: Config{Endpoint: "consul://consul.service:8500", Address: "consul.service:8500"}},
	{name: "trailing slash", url: "consul://localhost:8501/",
		want: Config{Endpoint: "consul://localhost:8501", Address: "localhost:8501"}},
	{name: "ipv6", url: "consul://[::1]:8500",
		want: Config{Endpoint: "consul://[::1]:8500", Address: "[::1]:8500"}},
	{name: "ipv6 default port", url: "consul://[::1]",
		want: Config{Endpoint: "consul://[::1]:8500", Address: "[::1]:8500"}},
	{name: "datacenter and token file", url: "consul://h:8500?dc=eu1&token_file=/run/secrets/consul",
		want: Config{Endpoint: "consul://h:8500", Address: "h:8500", Datacenter: "eu1", TokenFile: "/run/secrets/consul"}},
	{name: "tls", url: "consul://h:8501?tls=true&ca_file=/ca.pem&cert_file=/c.pem&key_file=/k.pem&server_name=server.dc1.consul",
		want: Config{Endpoint: "consul://h:8501", Address: "h:8501", TLS: kvstore.ClientTLS{Enabled: true, CAFile: "/ca.pem",
			CertFile: "/c.pem", KeyFile: "/k.pem", ServerName: "server.dc1.consul"}}},
	{name: "insecure", url: "consul://h?tls=1&insecure_skip_verify=true",
		want: Config{Endpoint: "consul://h:8500", Address: "h:8500", TLS: kvstore.ClientTLS{Enabled: true, InsecureSkipVerify: true}}},
	{name: "tls false", url: "consul://h?tls=false",
		want: Config{Endpoint: "consul://h:8500", Address: "h:8500"}},

	{name: "wrong scheme", url: "etcd://h:2379", wantErr: `scheme "etcd"`},
	{name: "no scheme", url: "h:8500", wantErr: "want consul://host:port"},
	{name: "opaque", url: "consul:h:8500", wantErr: `missing "//"`},
	{name: "no host", url: "consul://", wantErr: "missing host"},
	{name: "no host name", url: "consul://:8500", wantErr: "missing host name"},
	{name: "several hosts", url: "consul://a:8500,b:8500", wantErr: "several hosts are not supported"},
	{name: "bad port", url: "consul://h:0", wantErr: `invalid port "0"`},
	{name: "port too large", url: "consul://h:70000", wantErr: `invalid port "70000"`},
	{name: "path", url: "consul://h:8500/v1/kv", wantErr: `unexpected path "/v1/kv"`},
	{name: "fragment", url: "consul://h:8500#x", wantErr: `unexpected fragment`},
	{name: "user info", url: "consul://tok:secret@h:8500", wantErr: "user info in the URL is not supported"},
	{name: "token param", url: "consul://h?token=abc", wantErr: `unknown parameter "token"; accepted: ` +
		"ca_file, cert_file, dc, insecure_skip_verify, key_file, server_name, tls, token_file"},
	{name: "unknown param", url: "consul://h?datacenter=x", wantErr: `unknown parameter "datacenter"`},
	{name: "repeated param", url: "consul://h?dc=a&dc=b", wantErr: "parameter dc given 2 times"},
	{name: "empty param", url: "consul://h?dc=", wantErr: "parameter dc is empty"},
	{name: "bad bool", url: "consul://h?tls=yes", wantErr: `tls="yes": want true or false`},
	{name: "tls option without tls", url: "consul://h?ca_file=/ca.pem", wantErr: "need TLS: add tls=true"},
	{name: "empty tls param", url: "consul://h?tls=true&ca_file=", wantErr: "parameter ca_file is empty"},
	{name: "cert without key", url: "consul://h?tls=true&cert_file=/c.pem", wantErr: "needs both cert_file and key_file"},
	{name: "stray bracket", url: "consul://]", wantErr: `invalid host "]"`},
	{name: "bad escape", url: "consul://h?dc=%zz", wantErr: "query"},
}

func TestParseURL(t *testing.T) {
	for _, tc := range urlCases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatalf("url.Parse(%q): %v", tc.url, err)
			}
			got, err := ParseURL(u)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseURL(%q): got error %v, want one containing %q", tc.url, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.url, err)
			}
			if got != tc.want {
				t.Fatalf("ParseURL(%q):\n got %+v\nwant %+v", tc.url, got, tc.want)
			}
		})
	}
}

// TestParseURLHidesUserInfo checks that a token put in the URL by mistake
// does not end up in the error, which is likely to be logged.
func TestParseURLHidesUserInfo(t *testing.T) {
	u, _ := url.Parse("consul://s3cr3t:pa55@h:8500")
	_, err := ParseURL(u)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "pa55") {
		t.Fatalf("got %v, want an error without the user info", err)
	}
}

func TestParseURLNil(t *testing.T) {
	if _, err := ParseURL(nil); err == nil {
		t.Fatal("ParseURL(nil): got nil error")
	}
}

func FuzzParseURL(f *testing.F) {
	for _, tc := range urlCases {
		f.Add(tc.url)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		cfg, err := ParseURL(u)
		if err != nil {
			if u.User != nil {
				if p, ok := u.User.Password(); ok && len(p) > 3 && strings.Contains(err.Error(), p) {
					t.Fatalf("error reveals the password: %v", err)
				}
			}
			return
		}
		if cfg.Endpoint != "consul://"+cfg.Address {
			t.Fatalf("endpoint %q does not match address %q", cfg.Endpoint, cfg.Address)
		}
		host, port, err := net.SplitHostPort(cfg.Address)
		if err != nil || host == "" || port == "" {
			t.Fatalf("address %q: %v", cfg.Address, err)
		}
		if u.User != nil {
			t.Fatalf("accepted user info in %q", raw)
		}
		// The result must parse to itself.
		again, err := url.Parse(cfg.Endpoint)
		if err != nil {
			t.Fatalf("endpoint %q does not parse: %v", cfg.Endpoint, err)
		}
		if cfg2, err := ParseURL(again); err != nil || cfg2.Address != cfg.Address {
			t.Fatalf("endpoint %q re-parses to %+v, %v", cfg.Endpoint, cfg2, err)
		}
	})
}
