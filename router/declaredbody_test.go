package router

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// closingBody is an incoming request body as net/http's server gives it:
// its declared bytes, and then, once the response headers are written,
// only http.ErrBodyReadAfterClose. A read past the declared bytes waits
// for the headers, as a transport's check read does when the server
// answers first.
type closingBody struct {
	r       io.Reader
	headers chan struct{}
}

func (b *closingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 || err != io.EOF {
		return n, err
	}
	select {
	case <-b.headers:
	case <-time.After(5 * time.Second):
	}
	return 0, http.ErrBodyReadAfterClose
}

func (b *closingBody) Close() error { return nil }

type headerSignal struct {
	*httptest.ResponseRecorder
	once    sync.Once
	headers chan struct{}
}

func (w *headerSignal) WriteHeader(code int) {
	w.ResponseRecorder.WriteHeader(code)
	w.once.Do(func() { close(w.headers) })
}

func (w *headerSignal) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.headers) })
	return w.ResponseRecorder.Write(p)
}

// TestUploadAnsweredBeforeCheckRead: a server that answers an upload once
// it has its declared bytes gets its whole answer to the client, though
// the incoming body is closed when the answer's headers are written (the
// transport's read past Content-Length used to fail then and cut the
// answer: "use of closed network connection").
func TestUploadAnsweredBeforeCheckRead(t *testing.T) {
	answer := strings.Repeat("a", 1<<20)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, answer)
	}))
	defer backend.Close()
	rt := New(Config{})
	t.Cleanup(rt.Close)
	if err := rt.Apply(parseConfig(t, fmt.Sprintf(`
[entryPoints.web]
address = "127.0.0.1:0"
[http.routers.up]
rule = "PathPrefix(`+"`/`"+`)"
service = "up"
[[http.services.up.loadBalancer.servers]]
url = %q
`, backend.URL))); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		upload := bytes.Repeat([]byte("u"), 100<<10)
		headers := make(chan struct{})
		req := httptest.NewRequest(http.MethodPut, "http://up.example.com/x", nil)
		req.Body = &closingBody{r: bytes.NewReader(upload), headers: headers}
		req.ContentLength = int64(len(upload))
		w := &headerSignal{ResponseRecorder: httptest.NewRecorder(), headers: headers}
		rt.Handler("web").ServeHTTP(w, req)
		if w.Code != http.StatusOK || w.Body.Len() != len(answer) {
			t.Fatalf("status %d, %d bytes of the %d-byte answer", w.Code, w.Body.Len(), len(answer))
		}
	}
}
