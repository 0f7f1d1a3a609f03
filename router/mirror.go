package router

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

const (
	// mirrorTimeout bounds one mirror request: a mirror that keeps it
	// longer is abandoned.
	mirrorTimeout = 30 * time.Second
	// maxMirrorsInFlight bounds the mirror requests of one mirroring
	// service in flight at once; copies beyond it are dropped and
	// counted, so that a slow mirror cannot pile up goroutines.
	maxMirrorsInFlight = 256
)

// mirroring sends each request to main, untouched but for its body, and
// copies of a share of the requests to mirrors, whose answers are
// discarded. A copy runs in a goroutine of its own, with a context of its
// own: the main answer never waits for it, and it is not cancelled when
// the main answer ends, but by mirrorTimeout and by the end of the
// generation. With mirrorBody the body is read first, up to maxBody
// (-1: no limit), and handed to main and to each mirror from memory; a
// larger body is passed on to main as it comes and the request is not
// mirrored. With healthCheck the service is up while main is.
type mirroring struct {
	name       string
	main       serviceHandler
	mirrors    []*mirror
	mirrorBody bool
	maxBody    int64
	check      bool
	group      *mirrorGroup
	log        *slog.Logger
	// inFlight holds one token per mirror request in flight.
	inFlight chan struct{}
	// dropped counts the copies not sent because maxMirrorsInFlight were
	// in flight.
	dropped atomic.Int64
}

// mirror is one mirror: it gets percent of each hundred requests, evenly
// spread.
type mirror struct {
	name    string
	h       http.Handler
	percent int
	seen    atomic.Uint64
}

// take reports whether the request being counted is copied to m: exactly
// percent of each run of 100 requests are, spread evenly.
func (m *mirror) take() bool {
	switch {
	case m.percent <= 0:
		return false
	case m.percent >= 100:
		return true
	}
	k := int((m.seen.Add(1) - 1) % 100)
	return (k+1)*m.percent/100 > k*m.percent/100
}

func newMirroring(name string, cfg *config.Mirroring, handlers map[string]serviceHandler, group *mirrorGroup, log *slog.Logger) *mirroring {
	m := &mirroring{
		name:       name,
		main:       handlers[cfg.Service],
		mirrorBody: cfg.MirrorBody == nil || *cfg.MirrorBody,
		maxBody:    -1,
		check:      cfg.HealthCheck != nil,
		group:      group,
		log:        log,
		inFlight:   make(chan struct{}, maxMirrorsInFlight),
	}
	if cfg.MaxBodySize != nil {
		m.maxBody = *cfg.MaxBodySize
	}
	for _, c := range cfg.Mirrors {
		m.mirrors = append(m.mirrors, &mirror{name: c.Name, h: handlers[c.Name], percent: c.Percent})
	}
	return m
}

func (m *mirroring) up() bool { return !m.check || m.main.up() }

func (m *mirroring) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setService(r, m.name)
	var chosen []*mirror
	for _, mr := range m.mirrors {
		if mr.take() {
			chosen = append(chosen, mr)
		}
	}
	if len(chosen) == 0 {
		m.main.ServeHTTP(w, r)
		return
	}
	var body []byte
	if m.mirrorBody && r.Body != nil && r.Body != http.NoBody {
		if m.maxBody >= 0 && r.ContentLength > m.maxBody {
			m.main.ServeHTTP(w, r) // too large to copy: not mirrored
			return
		}
		var ok bool
		body, r, ok = m.readBody(r)
		if !ok {
			m.main.ServeHTTP(w, r)
			return
		}
	}
	for _, mr := range chosen {
		m.send(r, body, mr)
	}
	m.main.ServeHTTP(w, r)
}

// readBody reads r's body up to maxBody and returns it with a request
// whose body reads it again, for main. ok is false when the body is too
// large or could not be read: the request is then not mirrored, and
// main gets what was read followed by the rest (or the error).
func (m *mirroring) readBody(r *http.Request) (body []byte, main *http.Request, ok bool) {
	var src io.Reader = r.Body
	if m.maxBody >= 0 {
		src = io.LimitReader(r.Body, m.maxBody+1)
	}
	body, err := io.ReadAll(src)
	rest := io.Reader(eofReader{})
	switch {
	case err != nil:
		rest = errReader{err}
	case m.maxBody >= 0 && int64(len(body)) > m.maxBody:
		rest = r.Body
	default:
		ok = true
	}
	main = r.Clone(r.Context())
	main.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), r.Body}
	return body, main, ok
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type readCloser struct {
	io.Reader
	io.Closer
}

// send starts a copy of r, with body (nil: none), to mr, unless
// maxMirrorsInFlight copies are in flight or the generation has ended.
func (m *mirroring) send(r *http.Request, body []byte, mr *mirror) {
	select {
	case m.inFlight <- struct{}{}:
	default:
		if n := m.dropped.Add(1); n&(n-1) == 0 { // 1, 2, 4, 8…: not every time
			m.log.Warn("mirror requests dropped: too many in flight", "service", m.name, "mirror", mr.name, "in_flight", maxMirrorsInFlight, "dropped", n)
		}
		return
	}
	ctx, cancel := context.WithTimeout(m.group.ctx, mirrorTimeout)
	cr := r.Clone(ctx) // carries none of the main request's context values
	cr.Body, cr.ContentLength, cr.TransferEncoding = http.NoBody, 0, nil
	if len(body) > 0 {
		cr.Body, cr.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	started := m.group.run(func() {
		defer func() { <-m.inFlight }()
		defer cancel()
		mr.h.ServeHTTP(&discardWriter{}, cr)
	})
	if !started {
		cancel()
		<-m.inFlight
	}
}

// discardWriter is the ResponseWriter of a mirror request: the answer is
// dropped.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}

func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// mirrorGroup owns the mirror requests of one generation: their context
// ends with the generation, and close waits for them.
type mirrorGroup struct {
	ctx    context.Context
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// run runs f in a goroutine of the group and reports whether it did: not
// once the group is closed.
func (g *mirrorGroup) run(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Go(f)
	return true
}

// close refuses new mirror requests and waits for those in flight, whose
// context the caller has cancelled.
func (g *mirrorGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
