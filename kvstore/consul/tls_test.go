package consul

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// TestTLS opens stores on an HTTPS stand-in for a Consul agent, whose
// certificate (httptest's) is for example.com and 127.0.0.1: the CA file,
// the server name (given, or the host of Address) and the settings that
// must fail.
func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status/leader" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `"127.0.0.1:8300"`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "https://")

	for _, tc := range []struct {
		name    string
		tls     kvstore.ClientTLS
		wantErr string // empty: New must succeed
	}{
		{"server name from address", kvstore.ClientTLS{Enabled: true, CAFile: ca}, ""},
		{"server name given", kvstore.ClientTLS{Enabled: true, CAFile: ca, ServerName: "example.com"}, ""},
		{"wrong server name", kvstore.ClientTLS{Enabled: true, CAFile: ca, ServerName: "other.example"}, "certificate"},
		{"unknown CA", kvstore.ClientTLS{Enabled: true}, "certificate"},
		{"insecure", kvstore.ClientTLS{Enabled: true, InsecureSkipVerify: true}, ""},
		{"missing CA file", kvstore.ClientTLS{Enabled: true, CAFile: ca + ".missing"}, "read CA file"},
		{"options without TLS", kvstore.ClientTLS{CAFile: ca}, "need TLS"},
		{"plain HTTP to HTTPS", kvstore.ClientTLS{}, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(t.Context(), Config{Address: addr, TLS: tc.tls, RequestTimeout: 5 * time.Second})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = s.Close()
				return
			}
			if err == nil {
				_ = s.Close()
				t.Fatalf("New: got a store, want an error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), addr) {
				t.Fatalf("New: got %v, want an error naming %s and containing %q", err, addr, tc.wantErr)
			}
		})
	}
}

func TestAddressHost(t *testing.T) {
	for addr, want := range map[string]string{
		"consul.example:8501": "consul.example",
		"10.0.0.1:8501":       "10.0.0.1",
		"[::1]:8501":          "::1",
		"consul.example":      "consul.example",
		"[::1]":               "::1",
	} {
		if got := addressHost(addr); got != want {
			t.Errorf("addressHost(%q): got %q, want %q", addr, got, want)
		}
	}
}
