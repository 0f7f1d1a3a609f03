package middleware

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// holdingBackend holds every request whose query has hold=1 until its
// release channel is closed or the request's context ends, and answers
// the others at once.
type holdingBackend struct {
	arrived chan struct{} // one value per held request that arrived
	release chan struct{}
}

func newHoldingBackend() *holdingBackend {
	return &holdingBackend{arrived: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *holdingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("panic") == "1" {
		panic(http.ErrAbortHandler)
	}
	if r.URL.Query().Get("hold") == "1" {
		b.arrived <- struct{}{}
		select {
		case <-b.release:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// waitArrived waits for n held requests to reach the backend.
func (b *holdingBackend) waitArrived(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-b.arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("held requests did not reach the backend")
		}
	}
}

func TestInFlightReq(t *testing.T) {
	for _, tt := range []struct {
		name    string
		sc      *config.SourceCriterion
		same    http.Header // the source of the held requests
		other   http.Header // another source, or the same when nil
		sharing bool        // other shares the count of same
	}{
		{name: "client IP by default", same: http.Header{}, other: http.Header{}, sharing: true},
		{name: "request header", sc: &config.SourceCriterion{RequestHeaderName: "X-Api-Key"},
			same: http.Header{"X-Api-Key": {"a"}}, other: http.Header{"X-Api-Key": {"b"}}},
		{name: "request header missing is one source", sc: &config.SourceCriterion{RequestHeaderName: "X-Api-Key"},
			same: http.Header{}, other: http.Header{"X-Other": {"b"}}, sharing: true},
		{name: "request host", sc: &config.SourceCriterion{RequestHost: true},
			same: http.Header{"Host": {"a.example"}}, other: http.Header{"Host": {"b.example"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			backend := newHoldingBackend()
			h, err := NewInFlightReq(backend, &config.InFlightReq{Amount: 2, SourceCriterion: tt.sc})
			if err != nil {
				t.Fatal(err)
			}
			ts := newFrontServer(t, h, false)
			c := frontClient(ts)
			send := func(query string, header http.Header) int {
				req := frontRequest(t, "GET", ts.URL+"/?"+query, header)
				if host := header.Get("Host"); host != "" {
					req.Host = host
				}
				resp, _ := fetchResponse(t, c, req)
				return resp.StatusCode
			}
			var wg sync.WaitGroup
			codes := make([]int, 2)
			for i := range codes {
				wg.Go(func() { codes[i] = send("hold=1", tt.same) })
			}
			backend.waitArrived(t, 2)
			if got := send("", tt.same); got != http.StatusTooManyRequests {
				t.Errorf("a third request of the source: got %d, want 429", got)
			}
			wantOther := http.StatusOK
			if tt.sharing {
				wantOther = http.StatusTooManyRequests
			}
			if got := send("", tt.other); got != wantOther {
				t.Errorf("a request of the other source: got %d, want %d", got, wantOther)
			}
			close(backend.release)
			wg.Wait()
			for i, code := range codes {
				if code != http.StatusOK {
					t.Errorf("held request %d: got %d, want 200", i, code)
				}
			}
			if got := send("", tt.same); got != http.StatusOK {
				t.Errorf("after the held requests ended: got %d, want 200", got)
			}
			if n := h.(*inFlightReq).sources(); n != 0 {
				t.Errorf("%d sources kept with nothing in flight, want 0", n)
			}
		})
	}
}

// TestInFlightReqReleases checks that a slot comes back when the handler
// panics and when the client goes away while the request is held.
func TestInFlightReqReleases(t *testing.T) {
	backend := newHoldingBackend()
	h, err := NewInFlightReq(backend, &config.InFlightReq{Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = discardLog()
	ts.Start()
	t.Cleanup(ts.Close)
	c := frontClient(ts)

	if _, err := c.Get(ts.URL + "/?panic=1"); err == nil {
		t.Fatal("the panicking request got an answer, want the connection dropped")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/?hold=1", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	backend.waitArrived(t, 1)
	if resp, _ := fetchResponse(t, c, frontRequest(t, "GET", ts.URL+"/", nil)); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("while one request is held: got %d, want 429", resp.StatusCode)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled request: got %v, want context.Canceled", err)
	}
	// The server notices the client left and the handler returns; poll
	// for the slot, as nothing signals it.
	deadline := time.Now().Add(10 * time.Second)
	for h.(*inFlightReq).sources() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if resp, _ := fetchResponse(t, c, frontRequest(t, "GET", ts.URL+"/", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("after a panic and a cancelled request: got %d, want 200", resp.StatusCode)
	}
	if n := h.(*inFlightReq).sources(); n != 0 {
		t.Errorf("%d sources kept with nothing in flight, want 0", n)
	}
}

func TestInFlightReqConfig(t *testing.T) {
	for _, cfg := range []*config.InFlightReq{nil, {}, {Amount: -1}, {Amount: 1, SourceCriterion: &config.SourceCriterion{IPStrategy: &config.IPStrategy{ExcludedIPs: []string{"x"}}}}} {
		if _, err := NewInFlightReq(echoSeen, cfg); err == nil {
			t.Errorf("NewInFlightReq(%+v): got no error, want one", cfg)
		}
	}
}

// discardLog is a server error log that drops what it is given, for
// tests that make a handler panic on purpose.
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
