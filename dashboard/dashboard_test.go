package dashboard

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAssetsServed(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/dashboard/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/dashboard/index.html", "text/html; charset=utf-8", "<main"},
		{"/dashboard/app.js", "text/javascript; charset=utf-8", "setInterval"},
		{"/dashboard/app.css", "text/css; charset=utf-8", "prefers-color-scheme: dark"},
		{"/dashboard/icon.svg", "image/svg+xml", "<svg"},
	} {
		w := serve(t, h, http.MethodGet, tc.path, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", tc.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		if got := w.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", tc.path, got)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, got)
		}
		if w.Header().Get("ETag") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v lack ETag or nosniff", tc.path, w.Header())
		}
		// The ETag revalidates.
		again := serve(t, h, http.MethodGet, tc.path, map[string]string{"If-None-Match": w.Header().Get("ETag")})
		if again.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: status %d, want 304", tc.path, again.Code)
		}
	}
}

// TestPolicy: the policy allows no inline script or style and no other
// origin, and the HTML holds none that it would block.
func TestPolicy(t *testing.T) {
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(ContentSecurityPolicy, bad) {
			t.Errorf("the policy allows %q: %s", bad, ContentSecurityPolicy)
		}
	}
	body := serve(t, Handler(), http.MethodGet, "/dashboard/", nil).Body.String()
	for _, re := range []string{`<script>`, `<script [^>]*>[^<]`, `<style`, ` style=`, ` on[a-z]+=`, `https?://`} {
		if m := regexp.MustCompile(re).FindString(body); m != "" {
			t.Errorf("index.html holds %q, which the policy blocks or which leaves the origin", m)
		}
	}
	js := serve(t, Handler(), http.MethodGet, "/dashboard/app.js", nil).Body.String()
	for _, bad := range []string{"innerHTML", "eval(", "new Function", "document.write"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s: build the DOM with textContent", bad)
		}
	}
}

func TestRedirect(t *testing.T) {
	h := Handler()
	w := serve(t, h, http.MethodGet, "/dashboard", nil)
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/dashboard/" {
		t.Fatalf("GET /dashboard: %d to %q, want 301 to /dashboard/", w.Code, w.Header().Get("Location"))
	}
	w = serve(t, h, http.MethodGet, "/dashboard?x=1", nil)
	if w.Header().Get("Location") != "/dashboard/?x=1" {
		t.Fatalf("GET /dashboard?x=1: Location %q, want /dashboard/?x=1", w.Header().Get("Location"))
	}
}

func TestNotFound(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/dashboard/nope.js", "/dashboard/assets/app.js", "/dashboard/../api/", "/elsewhere", "/dashboardx"} {
		w := serve(t, h, http.MethodGet, path, nil)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, w.Code)
		}
		if w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no CSP on the 404", path)
		}
	}
}

func TestReadOnly(t *testing.T) {
	w := serve(t, Handler(), http.MethodPost, "/dashboard/", nil)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /dashboard/: %d, Allow %q; want 405 with GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	w = serve(t, Handler(), http.MethodHead, "/dashboard/app.js", nil)
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("HEAD /dashboard/app.js: %d with %d bytes", w.Code, w.Body.Len())
	}
}
