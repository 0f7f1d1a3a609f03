package middleware

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// seenRequest is what a backend saw of a request.
type seenRequest struct {
	Method     string
	Host       string
	Path       string
	RawPath    string
	RequestURI string
	Header     http.Header
}

// echoSeen answers every request with the JSON of its seenRequest.
var echoSeen = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(seenRequest{
		Method: r.Method, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath,
		RequestURI: r.RequestURI, Header: r.Header,
	})
})

// newFrontServer serves h over HTTP, or HTTPS when tls is true, until the
// test ends.
func newFrontServer(t *testing.T, h http.Handler, tls bool) *httptest.Server {
	t.Helper()
	var ts *httptest.Server
	if tls {
		ts = httptest.NewTLSServer(h)
	} else {
		ts = httptest.NewServer(h)
	}
	t.Cleanup(ts.Close)
	return ts
}

// frontClient returns a client of ts that neither follows redirects nor
// asks for or decodes compressed responses by itself.
func frontClient(ts *httptest.Server) *http.Client {
	c := ts.Client()
	c.Transport.(*http.Transport).DisableCompression = true
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// fetchResponse sends req with c and returns the response and its body.
func fetchResponse(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of %s %s: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// decodeSeen parses what echoSeen answered.
func decodeSeen(t *testing.T, body []byte) seenRequest {
	t.Helper()
	var s seenRequest
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("backend answer %q: %v", body, err)
	}
	return s
}

// frontRequest builds a request or fails the test.
func frontRequest(t *testing.T, method, url string, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return req
}
