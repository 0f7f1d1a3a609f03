package middleware

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

func TestHeadersRequest(t *testing.T) {
	cfg := &config.Headers{CustomRequestHeaders: map[string]string{
		"x-added":    "1",
		"X-Replaced": "new",
		"X-Removed":  "",
		"Host":       "backend.internal",
	}}
	h, err := NewHeaders(echoSeen, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	req := frontRequest(t, "GET", ts.URL+"/", http.Header{"X-Replaced": {"old"}, "X-Removed": {"secret"}, "X-Other": {"kept"}})
	_, body := fetchResponse(t, frontClient(ts), req)
	seen := decodeSeen(t, body)
	want := map[string][]string{
		"X-Added":    {"1"},
		"X-Replaced": {"new"},
		"X-Removed":  nil,
		"X-Other":    {"kept"},
	}
	for name, w := range want {
		if got := seen.Header.Values(name); len(got) != len(w) || len(w) > 0 && got[0] != w[0] {
			t.Errorf("got request header %s %q, want %q", name, got, w)
		}
	}
	if seen.Host != "backend.internal" {
		t.Errorf("got host %q, want %q", seen.Host, "backend.internal")
	}
}

func TestHeadersResponse(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "ALLOWALL")
		w.Header().Set("X-Powered-By", "php")
		w.Header().Set("Server", "backend")
		switch r.URL.Path {
		case "/empty":
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/flush":
			http.NewResponseController(w).Flush()
		default:
			_, _ = io.WriteString(w, "hello")
		}
	})
	full := config.Headers{
		FrameDeny: true, ContentTypeNosniff: true, ContentSecurityPolicy: "default-src 'self'",
		ReferrerPolicy: "no-referrer", PermissionsPolicy: "camera=()",
		STSSeconds: 31536000, STSIncludeSubdomains: true, STSPreload: true,
		CustomResponseHeaders: map[string]string{"X-Powered-By": "", "X-Custom": "v"},
	}
	const hsts = "max-age=31536000; includeSubDomains; preload"
	tests := []struct {
		name   string
		cfg    config.Headers
		tls    bool
		path   string
		header http.Header
		want   map[string]string // "" means absent
	}{
		{name: "plain HTTP has no HSTS", cfg: full, path: "/", want: map[string]string{
			"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'self'",
			"Referrer-Policy": "no-referrer", "Permissions-Policy": "camera=()", "Strict-Transport-Security": "",
			"X-Powered-By": "", "X-Custom": "v", "Server": "backend",
		}},
		{name: "HTTPS has HSTS", cfg: full, tls: true, path: "/", want: map[string]string{"Strict-Transport-Security": hsts, "X-Frame-Options": "DENY"}},
		{name: "forwarded HTTPS has HSTS", cfg: full, path: "/", header: http.Header{"X-Forwarded-Proto": {"https"}}, want: map[string]string{"Strict-Transport-Security": hsts}},
		{name: "forced HSTS", cfg: config.Headers{STSSeconds: 60, ForceSTSHeader: true}, path: "/", want: map[string]string{"Strict-Transport-Security": "max-age=60", "X-Frame-Options": "ALLOWALL"}},
		{name: "custom frame options", cfg: config.Headers{FrameDeny: true, CustomFrameOptionsValue: "SAMEORIGIN"}, path: "/", want: map[string]string{"X-Frame-Options": "SAMEORIGIN"}},
		{name: "custom response header removes a security one", cfg: config.Headers{FrameDeny: true, CustomResponseHeaders: map[string]string{"X-Frame-Options": ""}}, path: "/", want: map[string]string{"X-Frame-Options": ""}},
		{name: "implicit 200", cfg: full, path: "/empty", want: map[string]string{"X-Frame-Options": "DENY", "X-Custom": "v", "X-Powered-By": ""}},
		{name: "204", cfg: full, path: "/nocontent", want: map[string]string{"X-Frame-Options": "DENY", "X-Custom": "v"}},
		{name: "flush first", cfg: full, path: "/flush", want: map[string]string{"X-Frame-Options": "DENY", "X-Custom": "v"}},
		{name: "no response edits", cfg: config.Headers{CustomRequestHeaders: map[string]string{"X-A": "1"}}, path: "/", want: map[string]string{"X-Frame-Options": "ALLOWALL", "X-Powered-By": "php"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHeaders(backend, &tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts := newFrontServer(t, h, tt.tls)
			resp, _ := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL+tt.path, tt.header))
			for name, want := range tt.want {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("got %s %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestHeadersStreaming checks that a flushed chunk reaches the client
// before the handler goes on, with the edited header.
func TestHeadersStreaming(t *testing.T) {
	release := make(chan struct{})
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		<-release
		_, _ = io.WriteString(w, "second\n")
	})
	h, err := NewHeaders(backend, &config.Headers{FrameDeny: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	defer close(release) // before ts.Close, so that the handler ends
	resp, err := frontClient(ts).Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("got X-Frame-Options %q, want DENY", got)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Errorf("got first chunk %q (%v), want %q", line, err, "first\n")
	}
}

// TestResponseControllerThroughWrappers checks that deadlines and flushes
// reach the connection through every response writer wrapper.
func TestResponseControllerThroughWrappers(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline: %v", err)
		}
		if err := rc.EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
		_, _ = io.WriteString(w, "ok")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	})
	var h http.Handler = backend
	var err error
	if h, err = NewCompress(h, &config.Compress{}); err != nil {
		t.Fatal(err)
	}
	if h, err = NewHeaderRedirect(h, &config.HeaderRedirect{Header: "X-Region", Targets: map[string]string{"eu": "https://eu.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if h, err = NewHeaders(h, &config.Headers{FrameDeny: true}); err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	resp, body := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL, http.Header{"Accept-Encoding": {"gzip"}}))
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("got Content-Encoding %q, want gzip: a flush decides for compression", resp.Header.Get("Content-Encoding"))
	}
	body = decodeBody(t, resp.Header.Get("Content-Encoding"), body)
	if string(body) != "ok" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("got body %q and X-Frame-Options %q, want \"ok\" and DENY", body, resp.Header.Get("X-Frame-Options"))
	}
}

func TestHeadersConfig(t *testing.T) {
	bad := []*config.Headers{
		nil,
		{CustomRequestHeaders: map[string]string{"X Bad": "1"}},
		{CustomRequestHeaders: map[string]string{"": "1"}},
		{CustomResponseHeaders: map[string]string{"X-A": "a\r\nSet-Cookie: x"}},
		{STSSeconds: -1},
	}
	for _, cfg := range bad {
		if _, err := NewHeaders(echoSeen, cfg); err == nil {
			t.Errorf("NewHeaders(%+v): got no error, want one", cfg)
		}
	}
}

func TestAddVary(t *testing.T) {
	tests := []struct {
		have []string
		want []string
	}{
		{nil, []string{"Accept-Encoding"}},
		{[]string{"Origin"}, []string{"Origin", "Accept-Encoding"}},
		{[]string{"origin, accept-encoding"}, []string{"origin, accept-encoding"}},
		{[]string{"*"}, []string{"*"}},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.have {
			h.Add("Vary", v)
		}
		addVary(h, "Accept-Encoding")
		got := h.Values("Vary")
		if len(got) != len(tt.want) {
			t.Errorf("addVary to %q: got %q, want %q", tt.have, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("addVary to %q: got %q, want %q", tt.have, got, tt.want)
			}
		}
	}
}

func TestHeadersAppend(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Resp", "backend")
		_, _ = io.WriteString(w, strings.Join(r.Header.Values("X-Req"), ","))
	})
	h, err := NewHeaders(backend, &config.Headers{
		AppendRequestHeaders:  map[string]string{"x-req": "added"},
		AppendResponseHeaders: map[string]string{"X-Resp": "added"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	for _, tc := range []struct {
		sent, want string
	}{{"", "added"}, {"client", "client,added"}} {
		hd := http.Header{}
		if tc.sent != "" {
			hd.Set("X-Req", tc.sent)
		}
		resp, body := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL+"/", hd))
		if string(body) != tc.want {
			t.Errorf("sent %q: the backend saw %q, want %q", tc.sent, body, tc.want)
		}
		if got := resp.Header.Values("X-Resp"); len(got) != 2 || got[0] != "backend" || got[1] != "added" {
			t.Errorf("response header X-Resp %q, want the backend's value and the added one", got)
		}
	}
	for _, bad := range []map[string]string{{"Host": "x"}, {"X-A": ""}} {
		if _, err := NewHeaders(backend, &config.Headers{AppendRequestHeaders: bad}); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
