package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPathAndTrafficMiddlewares serves a configuration with the path,
// in-flight, buffering and content type middlewares through the whole
// router and a real server.
func TestPathAndTrafficMiddlewares(t *testing.T) {
	arrived, release := make(chan struct{}, 10), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") == "1" {
			arrived <- struct{}{}
			<-release
		}
		w.Header()["Content-Type"] = nil // the server guesses none
		w.Header().Set("X-Seen-Request-Uri", r.RequestURI)
		w.Header().Set("X-Seen-Forwarded-Prefix", r.Header.Get("X-Forwarded-Prefix"))
		w.Header().Set("X-Seen-Replaced-Path", r.Header.Get("X-Replaced-Path"))
		fmt.Fprint(w, "<html><body>hello</body></html>")
	}))
	t.Cleanup(backend.Close)
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.web]
address = "127.0.0.1:0"
[http.routers.tenant]
rule = "PathPrefix(`+"`/tenant/`"+`)"
service = "s"
middlewares = ["strip", "rewrite", "sniff"]
[http.routers.fixed]
rule = "PathPrefix(`+"`/fixed`"+`)"
service = "s"
middlewares = ["replace"]
[http.routers.limited]
rule = "PathPrefix(`+"`/limited`"+`)"
service = "s"
middlewares = ["inflight", "buffer"]
[http.routers.flaky]
rule = "PathPrefix(`+"`/flaky`"+`)"
service = "flaky"
middlewares = ["retrying"]
[http.middlewares.strip.stripPrefixRegex]
regex = ["^/tenant/[a-z]+"]
[http.middlewares.rewrite.replacePathRegex]
regex = "^/api/(.*)$"
replacement = "/v2/$1"
[http.middlewares.sniff.contentType]
[http.middlewares.replace.replacePath]
path = "/a%%2Fb"
[http.middlewares.inflight.inFlightReq]
amount = 1
[http.middlewares.inflight.inFlightReq.sourceCriterion]
requestHeaderName = "X-Api-Key"
[http.middlewares.buffer.buffering]
maxRequestBodyBytes = 10
[http.middlewares.retrying.buffering]
retryExpression = "IsNetworkError() && Attempts() < 2"
[[http.services.s.loadBalancer.servers]]
url = %[1]q
[[http.services.flaky.loadBalancer.servers]]
url = %[2]q
[[http.services.flaky.loadBalancer.servers]]
url = %[1]q
`, backend.URL, deadServerURL(t)))
	base := r.url("web")
	c := noRedirects()

	resp, _ := get(t, c, base+"/tenant/acme/api/a%2Fb?x=1", "", nil)
	for k, want := range map[string]string{
		"X-Seen-Request-Uri":      "/v2/a%2Fb?x=1",
		"X-Seen-Forwarded-Prefix": "/tenant/acme",
		"X-Seen-Replaced-Path":    "/api/a%2Fb",
		"Content-Type":            "text/html; charset=utf-8",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("stripPrefixRegex, replacePathRegex, contentType: got %s %q, want %q", k, got, want)
		}
	}

	resp, _ = get(t, c, base+"/fixed/x", "", nil)
	if got, want := resp.Header.Get("X-Seen-Request-Uri"), "/a%2Fb"; got != want {
		t.Errorf("replacePath: server got %q, want %q", got, want)
	}
	if got, want := resp.Header.Get("X-Seen-Replaced-Path"), "/fixed/x"; got != want {
		t.Errorf("replacePath: got X-Replaced-Path %q, want %q", got, want)
	}
	if got, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("without contentType: got Content-Type %q, want none, as the server sent none", got)
	}

	key := http.Header{"X-Api-Key": {"k"}}
	var wg sync.WaitGroup
	wg.Go(func() {
		if resp, _ := get(t, c, base+"/limited?hold=1", "", key); resp.StatusCode != http.StatusOK {
			t.Errorf("held request: got %d, want 200", resp.StatusCode)
		}
	})
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the held request did not reach the server")
	}
	if resp, _ := get(t, c, base+"/limited", "", key); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("inFlightReq: a second request of the source got %d, want 429", resp.StatusCode)
	}
	close(release)
	wg.Wait()
	req, err := http.NewRequest("POST", base+"/limited", strings.NewReader("01234567890"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = key
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("buffering: an 11-byte body got %d, want 413", resp.StatusCode)
	}

	// Round robin sends one of two requests to the dead server first;
	// the retry expression sends it again, to the live one.
	for i := range 2 {
		if resp, _ := get(t, c, base+"/flaky", "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("buffering retry, request %d: got %d, want 200", i, resp.StatusCode)
		}
	}
}
