package middleware

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/tollgate-proxy/tollgate/config"
)

// lorem is a compressible body above the default minimum size.
var lorem = strings.Repeat("tollgate compresses text that repeats itself. ", 100)

// decodeBody undoes the content coding enc of body.
func decodeBody(t *testing.T, enc string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "":
		return body
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatalf("zstd body: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected Content-Encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s body: %v", enc, err)
	}
	return out
}

// respond answers with status, header and body.
func respond(status int, header http.Header, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// compressCase is a response through Compress and what should come of it.
type compressCase struct {
	name      string
	cfg       config.Compress
	method    string
	reqHeader http.Header
	handler   http.HandlerFunc
	wantEnc   string
	wantVary  string // the whole Vary header; empty for none
	check     func(t *testing.T, h http.Header)
}

// compressCases are the cases of TestCompress.
func compressCases() []compressCase {
	text := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	ae := func(v string) http.Header { return http.Header{"Accept-Encoding": {v}} }
	all := config.Compress{Encodings: []string{"gzip", "br", "zstd"}}
	return []compressCase{
		{name: "gzip by default", reqHeader: ae("gzip, deflate, br, zstd"), handler: respond(200, text, lorem), wantEnc: "gzip", wantVary: "Accept-Encoding"},
		{name: "br", cfg: all, reqHeader: ae("br"), handler: respond(200, text, lorem), wantEnc: "br", wantVary: "Accept-Encoding"},
		{name: "zstd", cfg: all, reqHeader: ae("zstd"), handler: respond(200, text, lorem), wantEnc: "zstd", wantVary: "Accept-Encoding"},
		{name: "ties go to the configured order", cfg: config.Compress{Encodings: []string{"br", "gzip"}}, reqHeader: ae("gzip, br"), handler: respond(200, text, lorem), wantEnc: "br", wantVary: "Accept-Encoding"},
		{name: "q-values", cfg: all, reqHeader: ae("gzip;q=0.5, br;q=0.8, zstd;q=0.1"), handler: respond(200, text, lorem), wantEnc: "br", wantVary: "Accept-Encoding"},
		{name: "wildcard", cfg: config.Compress{Encodings: []string{"zstd", "gzip"}}, reqHeader: ae("*"), handler: respond(200, text, lorem), wantEnc: "zstd", wantVary: "Accept-Encoding"},
		{name: "refused", reqHeader: ae("gzip;q=0, *"), handler: respond(200, text, lorem), wantVary: "Accept-Encoding"},
		{name: "identity preferred", reqHeader: ae("gzip;q=0.5, identity"), handler: respond(200, text, lorem), wantVary: "Accept-Encoding"},
		{name: "no Accept-Encoding", handler: respond(200, text, lorem), wantVary: "Accept-Encoding"},
		{name: "empty Accept-Encoding", reqHeader: ae(""), handler: respond(200, text, lorem), wantVary: "Accept-Encoding"},
		{name: "below the minimum", reqHeader: ae("gzip"), handler: respond(200, text, lorem[:100]), wantVary: "Accept-Encoding",
			check: wantHeader("Content-Length", "100")},
		{name: "declared length below the minimum", reqHeader: ae("gzip"),
			handler: respond(200, http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"100"}}, lorem[:100]), wantVary: "Accept-Encoding"},
		{name: "lower minimum", cfg: config.Compress{MinResponseBodyBytes: 10}, reqHeader: ae("gzip"), handler: respond(200, text, lorem[:50]), wantEnc: "gzip", wantVary: "Accept-Encoding"},
		{name: "already encoded", reqHeader: ae("gzip"), handler: respond(200, http.Header{"Content-Type": {"text/plain"}, "Content-Encoding": {"x-custom"}}, lorem),
			wantVary: "Accept-Encoding", check: wantHeader("Content-Encoding", "x-custom")},
		{name: "excluded type", cfg: config.Compress{ExcludedContentTypes: []string{"image/png"}}, reqHeader: ae("gzip"), handler: respond(200, http.Header{"Content-Type": {"image/png"}}, lorem), wantVary: "Accept-Encoding"},
		{name: "excluded wildcard", cfg: config.Compress{ExcludedContentTypes: []string{"image/*"}}, reqHeader: ae("gzip"), handler: respond(200, http.Header{"Content-Type": {"IMAGE/webp"}}, lorem), wantVary: "Accept-Encoding"},
		{name: "excluded with parameters", cfg: config.Compress{ExcludedContentTypes: []string{"text/plain; charset=ascii"}}, reqHeader: ae("gzip"), handler: respond(200, text, lorem), wantVary: "Accept-Encoding"},
		{name: "not included", cfg: config.Compress{IncludedContentTypes: []string{"text/html"}}, reqHeader: ae("gzip"), handler: respond(200, http.Header{"Content-Type": {"application/json"}}, lorem), wantVary: "Accept-Encoding"},
		{name: "included", cfg: config.Compress{IncludedContentTypes: []string{"text/html"}}, reqHeader: ae("gzip"), handler: respond(200, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, lorem), wantEnc: "gzip", wantVary: "Accept-Encoding"},
		{name: "gRPC response", reqHeader: ae("gzip"), handler: respond(200, http.Header{"Content-Type": {"application/grpc+proto"}}, lorem), wantVary: "Accept-Encoding"},
		{name: "gRPC request", reqHeader: http.Header{"Accept-Encoding": {"gzip"}, "Content-Type": {"application/grpc"}}, handler: respond(200, text, lorem)},
		{name: "HEAD", method: "HEAD", reqHeader: ae("gzip"), handler: respond(200, text, lorem), wantVary: "Accept-Encoding"},
		{name: "Range request", reqHeader: http.Header{"Accept-Encoding": {"gzip"}, "Range": {"bytes=0-10"}}, handler: respond(200, text, lorem), wantVary: "Accept-Encoding"},
		{name: "206", reqHeader: ae("gzip"), handler: respond(206, http.Header{"Content-Type": {"text/plain"}, "Content-Range": {"bytes 0-4599/9999"}}, lorem), wantVary: "Accept-Encoding"},
		{name: "204", reqHeader: ae("gzip"), handler: respond(204, text, ""), wantVary: "Accept-Encoding"},
		{name: "304", reqHeader: ae("gzip"), handler: respond(304, text, ""), wantVary: "Accept-Encoding"},
		{name: "404 compressed too", reqHeader: ae("gzip"), handler: respond(404, text, lorem), wantEnc: "gzip", wantVary: "Accept-Encoding"},
		{name: "no-transform", reqHeader: ae("gzip"), handler: respond(200, http.Header{"Content-Type": {"text/plain"}, "Cache-Control": {"public, no-transform"}}, lorem), wantVary: "Accept-Encoding"},
		{name: "sniffed type", reqHeader: ae("gzip"), handler: respond(200, nil, lorem), wantEnc: "gzip", wantVary: "Accept-Encoding",
			check: wantHeader("Content-Type", "text/plain; charset=utf-8")},
		{name: "validators adjusted", reqHeader: ae("gzip"),
			handler: respond(200, http.Header{"Content-Type": {"text/plain"}, "Etag": {`"abc"`}, "Accept-Ranges": {"bytes"}, "Content-Length": {fmt.Sprint(len(lorem))}}, lorem),
			wantEnc: "gzip", wantVary: "Accept-Encoding",
			check: func(t *testing.T, h http.Header) {
				wantHeader("Etag", `W/"abc"`)(t, h)
				wantHeader("Accept-Ranges", "")(t, h)
			}},
		{name: "Vary added to", reqHeader: ae("gzip"), handler: respond(200, http.Header{"Content-Type": {"text/plain"}, "Vary": {"Origin"}}, lorem), wantEnc: "gzip", wantVary: "Origin, Accept-Encoding"},
	}
}

func TestCompress(t *testing.T) {
	for _, tt := range compressCases() {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewCompress(tt.handler, &tt.cfg)
			if err != nil {
				t.Fatalf("NewCompress: %v", err)
			}
			ts := newFrontServer(t, h, false)
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp, body := fetchResponse(t, frontClient(ts), frontRequest(t, method, ts.URL, tt.reqHeader))
			if got := resp.Header.Get("Content-Encoding"); tt.wantEnc != "" && got != tt.wantEnc {
				t.Errorf("got Content-Encoding %q, want %q", got, tt.wantEnc)
			}
			if tt.wantEnc == "" && tt.check == nil && resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("got Content-Encoding %q, want none", resp.Header.Get("Content-Encoding"))
			}
			if got := strings.Join(resp.Header.Values("Vary"), ", "); got != tt.wantVary {
				t.Errorf("got Vary %q, want %q", got, tt.wantVary)
			}
			if method != http.MethodHead && resp.ContentLength != -1 && resp.ContentLength != int64(len(body)) {
				t.Errorf("got Content-Length %d with a body of %d bytes", resp.ContentLength, len(body))
			}
			if method != http.MethodHead && resp.StatusCode != 204 && resp.StatusCode != 304 {
				if got := string(decodeBody(t, tt.wantEnc, body)); got != lorem[:len(got)] || len(got) == 0 {
					t.Errorf("got a body of %d bytes that is not the one sent", len(got))
				}
			}
			if tt.check != nil {
				tt.check(t, resp.Header)
			}
		})
	}
}

// wantHeader checks one header of a response.
func wantHeader(name, want string) func(*testing.T, http.Header) {
	return func(t *testing.T, h http.Header) {
		t.Helper()
		if got := h.Get(name); got != want {
			t.Errorf("got %s %q, want %q", name, got, want)
		}
	}
}

// TestCompressThroughProxy compresses what a real service answers through
// httputil.ReverseProxy, which flushes after every write of a response of
// unknown length.
func TestCompressThroughProxy(t *testing.T) {
	backend := newFrontServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Length", "20")
			_, _ = io.WriteString(w, lorem[:20])
		case "/chunked":
			for i := 0; i < len(lorem); i += 500 {
				_, _ = io.WriteString(w, lorem[i:min(i+500, len(lorem))])
				http.NewResponseController(w).Flush()
			}
		default:
			_, _ = io.WriteString(w, lorem)
		}
	}), false)
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewCompress(httputil.NewSingleHostReverseProxy(target), &config.Compress{Encodings: []string{"zstd", "br", "gzip"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	tests := []struct{ path, acceptEncoding, wantEnc, wantBody string }{
		{"/", "gzip, br", "br", lorem},
		{"/chunked", "gzip, zstd", "zstd", lorem},
		{"/chunked", "gzip", "gzip", lorem},
		{"/small", "gzip", "", lorem[:20]},
	}
	for _, tt := range tests {
		resp, body := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL+tt.path, http.Header{"Accept-Encoding": {tt.acceptEncoding}}))
		if got := resp.Header.Get("Content-Encoding"); got != tt.wantEnc {
			t.Errorf("%s with %q: got Content-Encoding %q, want %q", tt.path, tt.acceptEncoding, got, tt.wantEnc)
			continue
		}
		if got := string(decodeBody(t, tt.wantEnc, body)); got != tt.wantBody {
			t.Errorf("%s with %q: got a body of %d bytes, want the %d sent", tt.path, tt.acceptEncoding, len(got), len(tt.wantBody))
		}
	}
}

// TestCompressStreaming checks that a flush decides at once and that the
// flushed part can be decoded before the rest is written.
func TestCompressStreaming(t *testing.T) {
	for _, enc := range []string{"gzip", "br", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			release := make(chan struct{})
			backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: 1\n\n")
				w.(http.Flusher).Flush()
				<-release
				_, _ = io.WriteString(w, "data: 2\n\n")
			})
			h, err := NewCompress(backend, &config.Compress{Encodings: []string{enc}})
			if err != nil {
				t.Fatal(err)
			}
			ts := newFrontServer(t, h, false)
			c := frontClient(ts)
			c.Timeout = 10 * time.Second
			resp, err := c.Do(frontRequest(t, "GET", ts.URL, http.Header{"Accept-Encoding": {enc}}))
			if err != nil {
				close(release)
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != enc {
				close(release)
				t.Fatalf("got Content-Encoding %q, want %q", got, enc)
			}
			dec := streamDecoder(t, enc, resp.Body)
			first := make([]byte, len("data: 1\n\n"))
			if _, err := io.ReadFull(dec, first); err != nil || string(first) != "data: 1\n\n" {
				t.Errorf("got first event %q (%v), want %q", first, err, "data: 1\n\n")
			}
			close(release)
			rest, err := io.ReadAll(dec)
			if err != nil || string(rest) != "data: 2\n\n" {
				t.Errorf("got the rest %q (%v), want %q", rest, err, "data: 2\n\n")
			}
		})
	}
}

// streamDecoder decodes a compressed stream as it arrives.
func streamDecoder(t *testing.T, enc string, r io.Reader) io.Reader {
	t.Helper()
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case "br":
		return brotli.NewReader(r)
	default:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
}

// TestCompressHijack checks that a handler can take the connection over
// through the compressing writer.
func TestCompressHijack(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = brw.Flush()
	})
	h, err := NewCompress(backend, &config.Compress{})
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	resp, body := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL, http.Header{"Accept-Encoding": {"gzip"}}))
	if string(body) != "hijacked" || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("got body %q with Content-Encoding %q, want \"hijacked\" as is", body, resp.Header.Get("Content-Encoding"))
	}
}

// upgradeEcho switches to the "tg-echo" protocol, which echoes lines.
func upgradeEcho(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "tg-echo" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("backend Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tg-echo\r\n\r\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString(line)
			_ = brw.Flush()
		}
	})
}

// TestUpgradeThroughMiddlewares opens a WebSocket-like upgraded connection
// to a real service through httputil.ReverseProxy and the middlewares
// that wrap the response writer.
func TestUpgradeThroughMiddlewares(t *testing.T) {
	backend := newFrontServer(t, upgradeEcho(t), false)
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = httputil.NewSingleHostReverseProxy(target)
	if h, err = NewHeaderRedirect(h, &config.HeaderRedirect{Header: "X-Region", Targets: map[string]string{"eu": "https://eu.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if h, err = NewCompress(h, &config.Compress{Encodings: []string{"gzip", "br"}}); err != nil {
		t.Fatal(err)
	}
	if h, err = NewHeaders(h, &config.Headers{FrameDeny: true, CustomResponseHeaders: map[string]string{"X-A": "1"}}); err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: front\r\nConnection: Upgrade\r\nUpgrade: tg-echo\r\nAccept-Encoding: gzip, br\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("got status %d with Content-Encoding %q, want 101 without", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Errorf("got echo %q (%v), want %q", got, err, msg)
		}
	}
}

// TestCompressConcurrent shares pooled encoders between many requests.
func TestCompressConcurrent(t *testing.T) {
	h, err := NewCompress(respond(200, http.Header{"Content-Type": {"text/plain"}}, lorem), &config.Compress{Encodings: []string{"gzip", "br", "zstd"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	c := frontClient(ts)
	var wg sync.WaitGroup
	for i := range 30 {
		enc := []string{"gzip", "br", "zstd"}[i%3]
		wg.Go(func() {
			resp, body := fetchResponse(t, c, frontRequest(t, "GET", ts.URL, http.Header{"Accept-Encoding": {enc}}))
			if got := resp.Header.Get("Content-Encoding"); got != enc {
				t.Errorf("got Content-Encoding %q, want %q", got, enc)
				return
			}
			if got := string(decodeBody(t, enc, body)); got != lorem {
				t.Errorf("%s: got a body of %d bytes, want the %d sent", enc, len(got), len(lorem))
			}
		})
	}
	wg.Wait()
}

// TestCompressEncodings checks that every pool makes a working encoder.
func TestCompressEncodings(t *testing.T) {
	for name, pool := range encoderPools {
		enc, ok := pool.Get().(encoder)
		if !ok || enc == nil {
			t.Fatalf("the %s pool makes no encoder", name)
		}
		var buf bytes.Buffer
		enc.Reset(&buf)
		if _, err := io.WriteString(enc, lorem); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := enc.Close(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := string(decodeBody(t, name, buf.Bytes())); got != lorem {
			t.Errorf("%s: got %d bytes back, want %d", name, len(got), len(lorem))
		}
		pool.Put(enc)
	}
}

func TestCompressConfig(t *testing.T) {
	bad := []*config.Compress{
		nil,
		{IncludedContentTypes: []string{"text/html"}, ExcludedContentTypes: []string{"image/png"}},
		{MinResponseBodyBytes: -1},
		{Encodings: []string{"gzip", "deflate"}},
		{ExcludedContentTypes: []string{"text"}},
		{IncludedContentTypes: []string{"text/html; charset"}},
	}
	for _, cfg := range bad {
		if _, err := NewCompress(echoSeen, cfg); err == nil {
			t.Errorf("NewCompress(%+v): got no error, want one", cfg)
		}
	}
}

// negotiateCases seed FuzzNegotiateEncoding too.
var negotiateCases = []struct {
	header  []string
	offered []string
	want    string
}{
	{[]string{"gzip"}, []string{"gzip"}, "gzip"},
	{[]string{"GZIP"}, []string{"gzip"}, "gzip"},
	{[]string{"x-gzip"}, []string{"gzip"}, "gzip"},
	{[]string{"deflate"}, []string{"gzip"}, ""},
	{[]string{""}, []string{"gzip"}, ""},
	{[]string{"br, gzip"}, []string{"gzip", "br"}, "gzip"},
	{[]string{"gzip;q=0.5", "br;q=0.6"}, []string{"gzip", "br"}, "br"},
	{[]string{"gzip; q=1.0, br; Q=0.999"}, []string{"br", "gzip"}, "gzip"},
	{[]string{"*;q=0.5, gzip;q=0.4"}, []string{"gzip", "zstd"}, "zstd"},
	{[]string{"*"}, []string{"br", "gzip"}, "br"},
	{[]string{"*;q=0"}, []string{"gzip"}, ""},
	{[]string{"gzip;q=0, *"}, []string{"gzip"}, ""},
	{[]string{"gzip;q=0, *"}, []string{"gzip", "br"}, "br"},
	{[]string{"identity;q=1, gzip;q=0.9"}, []string{"gzip"}, ""},
	{[]string{"identity;q=0.5, gzip"}, []string{"gzip"}, "gzip"},
	{[]string{"identity"}, []string{"gzip"}, ""},
	{[]string{"gzip;q=2"}, []string{"gzip"}, ""},
	{[]string{"gzip;q=-1"}, []string{"gzip"}, ""},
	{[]string{"gzip;q=NaN"}, []string{"gzip"}, ""},
	{[]string{"gzip;q=abc, br"}, []string{"gzip", "br"}, "br"},
	{[]string{"gzip;level=1;q=0.3, br;q=0.2"}, []string{"br", "gzip"}, "gzip"},
	{[]string{"gzip;q=0.8, gzip;q=0.1, br;q=0.5"}, []string{"br", "gzip"}, "gzip"},
	{[]string{" , ;q=1, zstd"}, []string{"gzip", "zstd"}, "zstd"},
}

func TestNegotiateEncoding(t *testing.T) {
	for _, tt := range negotiateCases {
		if got := negotiateEncoding(tt.header, tt.offered); got != tt.want {
			t.Errorf("negotiateEncoding(%q, %q): got %q, want %q", tt.header, tt.offered, got, tt.want)
		}
	}
}

// FuzzNegotiateEncoding feeds arbitrary Accept-Encoding headers to the
// negotiation: it must not panic, must choose an offered encoding, and may
// only choose one the header names, directly or by "*".
func FuzzNegotiateEncoding(f *testing.F) {
	for _, tt := range negotiateCases {
		f.Add(strings.Join(tt.header, ","))
	}
	offered := []string{"zstd", "br", "gzip"}
	f.Fuzz(func(t *testing.T, header string) {
		got := negotiateEncoding([]string{header}, offered)
		if got == "" {
			return
		}
		if !slices.Contains(offered, got) {
			t.Fatalf("negotiateEncoding(%q): got %q, which is not offered", header, got)
		}
		if lower := strings.ToLower(header); !strings.Contains(lower, got) && !strings.Contains(lower, "*") {
			t.Fatalf("negotiateEncoding(%q): got %q, which the header does not accept", header, got)
		}
	})
}
