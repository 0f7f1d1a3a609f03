package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// newMWServer serves h on a real loopback server closed with the test.
func newMWServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// mwDo sends a request built by the test and returns the response with
// its body read.
func mwDo(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of %s %s: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// mwGet sends a GET to srv with the given header lines ("Name: value").
func mwGet(t *testing.T, srv *httptest.Server, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	return mwDo(t, req)
}

// mwNext answers 200 "next" and counts its calls.
type mwNext struct{ n atomic.Int64 }

func (n *mwNext) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n.n.Add(1)
	_, _ = io.WriteString(w, "next")
}

func (n *mwNext) calls() int { return int(n.n.Load()) }

func TestClientIP(t *testing.T) {
	tests := []struct {
		name     string
		remote   string
		xff      []string
		strategy *config.IPStrategy
		want     string
		wantErr  string
	}{
		{name: "remote address", remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "remote address without port", remote: "192.0.2.1", want: "192.0.2.1"},
		{name: "mapped remote address", remote: "[::ffff:192.0.2.1]:80", want: "192.0.2.1"},
		{name: "zone dropped", remote: "[fe80::1%eth0]:80", want: "fe80::1"},
		{name: "bad remote address", remote: "pipe", wantErr: "not an IP address"},
		{name: "empty strategy uses remote address", remote: "192.0.2.1:1", xff: []string{"1.1.1.1"}, strategy: &config.IPStrategy{}, want: "192.0.2.1"},
		{name: "nil strategy ignores header", remote: "192.0.2.1:1", xff: []string{"1.1.1.1"}, want: "192.0.2.1"},
		{name: "depth 1", xff: []string{"1.1.1.1, 2.2.2.2"}, strategy: &config.IPStrategy{Depth: 1}, want: "2.2.2.2"},
		{name: "depth 2", xff: []string{"1.1.1.1, 2.2.2.2"}, strategy: &config.IPStrategy{Depth: 2}, want: "1.1.1.1"},
		{name: "depth beyond header", xff: []string{"1.1.1.1, 2.2.2.2"}, strategy: &config.IPStrategy{Depth: 3}, wantErr: "has 2 entries, depth is 3"},
		{name: "depth without header", strategy: &config.IPStrategy{Depth: 1}, wantErr: "has 0 entries"},
		{name: "depth across header lines", xff: []string{"1.1.1.1", "2.2.2.2, 3.3.3.3"}, strategy: &config.IPStrategy{Depth: 2}, want: "2.2.2.2"},
		{name: "empty entries skipped", xff: []string{" , 1.1.1.1 ,, 2.2.2.2,"}, strategy: &config.IPStrategy{Depth: 2}, want: "1.1.1.1"},
		{name: "entry with port", xff: []string{"2.2.2.2:80"}, strategy: &config.IPStrategy{Depth: 1}, want: "2.2.2.2"},
		{name: "IPv6 entry with port", xff: []string{"[2001:db8::1]:443"}, strategy: &config.IPStrategy{Depth: 1}, want: "2001:db8::1"},
		{name: "garbage entry", xff: []string{"unknown"}, strategy: &config.IPStrategy{Depth: 1}, wantErr: "not an IP address"},
		{name: "negative depth", strategy: &config.IPStrategy{Depth: -1}, wantErr: "negative"},
		{
			name: "excluded skipped", xff: []string{"1.1.1.1, 10.0.0.1, 10.0.0.2"},
			strategy: &config.IPStrategy{ExcludedIPs: []string{"10.0.0.0/8"}}, want: "1.1.1.1",
		},
		{
			name: "excluded single IP", xff: []string{"1.1.1.1, 2.2.2.2"},
			strategy: &config.IPStrategy{ExcludedIPs: []string{"2.2.2.2"}}, want: "1.1.1.1",
		},
		{
			name: "first non-excluded from the right", xff: []string{"1.1.1.1, 3.3.3.3, 10.0.0.2"},
			strategy: &config.IPStrategy{ExcludedIPs: []string{"10.0.0.0/8"}}, want: "3.3.3.3",
		},
		{
			name: "all excluded", xff: []string{"10.0.0.1, 10.0.0.2"},
			strategy: &config.IPStrategy{ExcludedIPs: []string{"10.0.0.0/8"}}, wantErr: "every X-Forwarded-For entry is excluded",
		},
		{
			name: "garbage before a non-excluded entry", xff: []string{"1.1.1.1, junk, 10.0.0.2"},
			strategy: &config.IPStrategy{ExcludedIPs: []string{"10.0.0.0/8"}}, wantErr: "entry 2 from the right",
		},
		{
			name: "mapped excluded range", xff: []string{"1.1.1.1, 10.0.0.2"},
			strategy: &config.IPStrategy{ExcludedIPs: []string{"::ffff:10.0.0.0/104"}}, want: "1.1.1.1",
		},
		{
			name: "bad excluded range", xff: []string{"1.1.1.1"},
			strategy: &config.IPStrategy{ExcludedIPs: []string{"10.0.0.0/33"}}, wantErr: "neither an IP nor a CIDR range",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, err := ClientIP(r, tt.strategy)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %s", err, tt.want)
			}
			if want := netip.MustParseAddr(tt.want); got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// TestClientIPOverHTTP checks the remote address of a real connection.
func TestClientIPOverHTTP(t *testing.T) {
	srv := newMWServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, err := ClientIP(r, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, ip.String())
	}))
	if _, body := mwGet(t, srv, "X-Forwarded-For: 203.0.113.9"); body != "127.0.0.1" {
		t.Errorf("got %q, want 127.0.0.1", body)
	}
}
