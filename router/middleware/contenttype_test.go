package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// noSniff marks a response as the router does before proxying it: a
// Content-Type key without values, so that net/http guesses none.
func noSniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.Header()["Content-Type"]; !ok {
			w.Header()["Content-Type"] = nil
		}
		next.ServeHTTP(w, r)
	})
}

func TestContentType(t *testing.T) {
	// The server answers ?status with ?body and ?type, or no
	// Content-Type at all (it does not guess one either).
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if ct := q.Get("type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		} else {
			w.Header()["Content-Type"] = nil
		}
		if q.Get("status") == "204" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = w.Write([]byte(q.Get("body")))
	}))
	t.Cleanup(backend.Close)
	proxy := func() http.Handler { return proxyTo(t, backend.URL) }
	yes, no := true, false
	const html = "<html><body>hi</body></html>"
	tests := []struct {
		name     string
		cfg      *config.ContentType // nil: no middleware
		marked   bool                // the router's mark is set
		query    string
		wantType []string
	}{
		{name: "without the middleware net/http guesses", query: "body=" + url.QueryEscape(html), wantType: []string{"text/html; charset=utf-8"}},
		{name: "without the middleware the router's mark keeps none", marked: true, query: "body=" + url.QueryEscape(html)},
		{name: "detected", cfg: &config.ContentType{}, marked: true, query: "body=" + url.QueryEscape(html), wantType: []string{"text/html; charset=utf-8"}},
		{name: "autoDetect true", cfg: &config.ContentType{AutoDetect: &yes}, marked: true, query: "body=" + url.QueryEscape("\x89PNG\x0d\x0a\x1a\x0a rest"), wantType: []string{"image/png"}},
		{name: "autoDetect false does nothing", cfg: &config.ContentType{AutoDetect: &no}, marked: true, query: "body=" + url.QueryEscape(html)},
		{name: "detected without the mark", cfg: &config.ContentType{}, query: "body=plain", wantType: []string{"text/plain; charset=utf-8"}},
		{name: "the server's type kept", cfg: &config.ContentType{}, marked: true, query: "type=application/json&body=" + url.QueryEscape(html), wantType: []string{"application/json"}},
		{name: "no body, no type", cfg: &config.ContentType{}, marked: true, query: "body="},
		{name: "no content, no type", cfg: &config.ContentType{}, marked: true, query: "status=204"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := proxy()
			if tt.marked {
				h = noSniff(h)
			}
			if tt.cfg != nil {
				var err error
				if h, err = NewContentType(h, tt.cfg); err != nil {
					t.Fatal(err)
				}
			}
			ts := newFrontServer(t, h, false)
			resp, _ := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL+"/?"+tt.query, nil))
			if got := resp.Header.Values("Content-Type"); !slices.Equal(got, tt.wantType) {
				t.Errorf("got Content-Type %q, want %q", got, tt.wantType)
			}
		})
	}
	if _, err := NewContentType(echoSeen, nil); err == nil {
		t.Error("NewContentType(nil): got no error, want one")
	}
}
