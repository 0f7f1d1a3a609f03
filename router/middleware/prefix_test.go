package middleware

import (
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

func TestAddPrefix(t *testing.T) {
	tests := []struct {
		name           string
		prefix         string
		path           string // as sent, escaped
		wantPath       string
		wantRequestURI string
	}{
		{name: "plain", prefix: "/api", path: "/users", wantPath: "/api/users", wantRequestURI: "/api/users"},
		{name: "root", prefix: "/api", path: "/", wantPath: "/api/", wantRequestURI: "/api/"},
		{name: "query kept", prefix: "/api", path: "/users?id=1&x=%2F", wantPath: "/api/users", wantRequestURI: "/api/users?id=1&x=%2F"},
		{name: "trailing slash of prefix not doubled", prefix: "/api/", path: "/users", wantPath: "/api/users", wantRequestURI: "/api/users"},
		{name: "slash prefix changes nothing", prefix: "/", path: "/users", wantPath: "/users", wantRequestURI: "/users"},
		{name: "encoded slash kept", prefix: "/api", path: "/a%2Fb", wantPath: "/api/a/b", wantRequestURI: "/api/a%2Fb"},
		{name: "prefix needing escapes", prefix: "/my api", path: "/x", wantPath: "/my api/x", wantRequestURI: "/my%20api/x"},
		{name: "prefix needing escapes with encoded path", prefix: "/my api", path: "/a%2Fb", wantPath: "/my api/a/b", wantRequestURI: "/my%20api/a%2Fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewAddPrefix(echoSeen, &config.AddPrefix{Prefix: tt.prefix})
			if err != nil {
				t.Fatalf("NewAddPrefix: %v", err)
			}
			ts := newFrontServer(t, h, false)
			_, body := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL+tt.path, nil))
			seen := decodeSeen(t, body)
			if seen.Path != tt.wantPath {
				t.Errorf("got path %q, want %q", seen.Path, tt.wantPath)
			}
			if seen.RequestURI != tt.wantRequestURI {
				t.Errorf("got request URI %q, want %q", seen.RequestURI, tt.wantRequestURI)
			}
		})
	}
}

func TestAddPrefixConfig(t *testing.T) {
	for _, cfg := range []*config.AddPrefix{nil, {}, {Prefix: "api"}, {Prefix: "/a\nb"}} {
		if _, err := NewAddPrefix(echoSeen, cfg); err == nil {
			t.Errorf("NewAddPrefix(%+v): got no error, want one", cfg)
		}
	}
}

func TestStripPrefix(t *testing.T) {
	tests := []struct {
		name           string
		prefixes       []string
		path           string // as sent, escaped
		wantPath       string
		wantRequestURI string
		wantForwarded  []string
	}{
		{name: "plain", prefixes: []string{"/api"}, path: "/api/users", wantPath: "/users", wantRequestURI: "/users", wantForwarded: []string{"/api"}},
		{name: "whole path keeps a slash", prefixes: []string{"/api"}, path: "/api", wantPath: "/", wantRequestURI: "/", wantForwarded: []string{"/api"}},
		{name: "string prefix as in traefik", prefixes: []string{"/api"}, path: "/apiv2/x", wantPath: "/v2/x", wantRequestURI: "/v2/x", wantForwarded: []string{"/api"}},
		{name: "no match", prefixes: []string{"/api"}, path: "/other", wantPath: "/other", wantRequestURI: "/other"},
		{name: "first match in order", prefixes: []string{"/a", "/a/b"}, path: "/a/b/c", wantPath: "/b/c", wantRequestURI: "/b/c", wantForwarded: []string{"/a"}},
		{name: "second prefix", prefixes: []string{"/x", "/a/b"}, path: "/a/b/c", wantPath: "/c", wantRequestURI: "/c", wantForwarded: []string{"/a/b"}},
		{name: "prefix with trailing slash", prefixes: []string{"/api/"}, path: "/api/x", wantPath: "/x", wantRequestURI: "/x", wantForwarded: []string{"/api/"}},
		{name: "query kept", prefixes: []string{"/api"}, path: "/api/x?q=1", wantPath: "/x", wantRequestURI: "/x?q=1", wantForwarded: []string{"/api"}},
		{name: "encoded rest kept", prefixes: []string{"/api"}, path: "/api/a%2Fb", wantPath: "/a/b", wantRequestURI: "/a%2Fb", wantForwarded: []string{"/api"}},
		{name: "encoded prefix", prefixes: []string{"/my api"}, path: "/my%20api/x%2Fy", wantPath: "/x/y", wantRequestURI: "/x%2Fy", wantForwarded: []string{"/my api"}},
		{name: "prefix ending in an encoded slash", prefixes: []string{"/api/"}, path: "/api%2Fx%2Fy", wantPath: "/x/y", wantRequestURI: "/x%2Fy", wantForwarded: []string{"/api/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewStripPrefix(echoSeen, &config.StripPrefix{Prefixes: tt.prefixes})
			if err != nil {
				t.Fatalf("NewStripPrefix: %v", err)
			}
			ts := newFrontServer(t, h, false)
			_, body := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL+tt.path, nil))
			seen := decodeSeen(t, body)
			if seen.Path != tt.wantPath {
				t.Errorf("got path %q, want %q", seen.Path, tt.wantPath)
			}
			if seen.RequestURI != tt.wantRequestURI {
				t.Errorf("got request URI %q, want %q", seen.RequestURI, tt.wantRequestURI)
			}
			if got := seen.Header.Values(ForwardedPrefixHeader); !slices.Equal(got, tt.wantForwarded) {
				t.Errorf("got %s %q, want %q", ForwardedPrefixHeader, got, tt.wantForwarded)
			}
		})
	}
}

// TestStripPrefixLeavesRequest checks that the handler before the
// middleware (the router's access log) still sees the original request.
func TestStripPrefixLeavesRequest(t *testing.T) {
	h, err := NewStripPrefix(echoSeen, &config.StripPrefix{Prefixes: []string{"/api"}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var path string
	var prefixes []string
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		mu.Lock()
		defer mu.Unlock()
		path, prefixes = r.URL.Path, r.Header.Values(ForwardedPrefixHeader)
	})
	ts := newFrontServer(t, outer, false)
	fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL+"/api/x", nil))
	mu.Lock()
	defer mu.Unlock()
	if path != "/api/x" || len(prefixes) != 0 {
		t.Errorf("got path %q and forwarded prefixes %q after the middleware, want \"/api/x\" and none", path, prefixes)
	}
}

func TestStripPrefixConfig(t *testing.T) {
	for _, cfg := range []*config.StripPrefix{nil, {}, {Prefixes: []string{"/a", "b"}}, {Prefixes: []string{""}}} {
		if _, err := NewStripPrefix(echoSeen, cfg); err == nil {
			t.Errorf("NewStripPrefix(%+v): got no error, want one", cfg)
		}
	}
}

func TestStripRawPrefix(t *testing.T) {
	tests := []struct{ raw, prefix, want string }{
		{"/api/a%2Fb", "/api", "/a%2Fb"},
		{"/my%20api/x", "/my api", "/x"},
		{"/api%2Fx", "/api/", "/x"},
		{"/%61pi/x", "/api", "/x"},
		{"/api", "/api", "/"},
		{"/ap", "/api", ""},
		{"/b%2Fc", "/api", ""},
		{"/a%zzb", "/a%zz", ""},
		{"/%", "/x", ""},
	}
	for _, tt := range tests {
		if got := stripRawPrefix(tt.raw, tt.prefix); got != tt.want {
			t.Errorf("stripRawPrefix(%q, %q): got %q, want %q", tt.raw, tt.prefix, got, tt.want)
		}
	}
}
