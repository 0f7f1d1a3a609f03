package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/tollgate-proxy/tollgate/router/clienthello"
	"github.com/tollgate-proxy/tollgate/router/tcp"
)

// TCP routing on an entry point: every accepted connection is looked at
// before anything is read from it for good.
//
//   - An entry point with no TCP router in the generation in force hands
//     the connection to HTTP at once, without reading anything.
//   - An entry point whose TCP routers all take connections without TLS,
//     and that serves no HTTP (no HTTP router, no redirection, no extra
//     handler), routes by the client's address at once, so that
//     protocols in which the server speaks first (SMTP, MySQL) work.
//   - Otherwise the first bytes are peeked (read without being consumed)
//     within the entry point's readHeaderTimeout. A TLS ClientHello
//     offering acme-tls/1, when challenges are answered, gets the
//     TLS-ALPN-01 answer. Else the first TCP router whose rule matches
//     the ClientHello (or, without TLS, the client's address) takes the
//     connection: passed through, with the peeked bytes, or terminated
//     with the entry point's certificates. A connection no TCP router
//     takes goes to HTTP, its bytes replayed; a TLS one on an entry point
//     without HTTPS is closed.

// entryPoint is what the accept loop of one entry point needs.
type entryPoint struct {
	name       string
	ln         net.Listener
	http       *connListener // the HTTP server's listener
	rt         *Router
	log        *slog.Logger
	extra      bool
	challenges Challenges
	httpTLS    bool
	redirects  bool
	// terminate are the TLS settings of TCP routers that terminate TLS,
	// by the name of their TLS options; "" for the default options.
	terminate map[string]*tls.Config
	timeout   time.Duration // to route a connection: readHeaderTimeout
	metrics   *tcp.Metrics
	conns     *connSet
}

func newEntryPoint(cfg ServersConfig, log *slog.Logger, name string, srv *http.Server, ln net.Listener, files *certIndex, def *tls.Certificate, conns *connSet) (*entryPoint, error) {
	ep := cfg.Config.EntryPoints[name]
	e := &entryPoint{
		name: name, ln: ln, http: newConnListener(ln.Addr()), rt: cfg.Router, log: log,
		extra: cfg.Extra[name] != nil, challenges: cfg.Challenges,
		httpTLS:   ep.HTTP != nil && ep.HTTP.TLS != nil,
		redirects: ep.HTTP != nil && ep.HTTP.Redirections != nil,
		terminate: map[string]*tls.Config{},
		timeout:   srv.ReadHeaderTimeout,
		metrics:   cfg.Metrics.tcpMetrics(),
		conns:     conns,
	}
	var count func(tls.ConnectionState) error
	if m := cfg.Metrics; m != nil {
		done := m.handshakes.WithLabelValues(name)
		count = func(tls.ConnectionState) error { done.Inc(); return nil }
	}
	certs := certsOf(cfg, files)
	names := []string{""}
	if t := cfg.Config.TLS; t != nil {
		for n := range t.Options {
			names = append(names, n)
		}
	}
	for _, n := range names {
		c, err := tlsConfig(cfg.Config.TLS, n, certs, def)
		if err != nil {
			return nil, fmt.Errorf("TLS options %s: %w", n, err)
		}
		// Not HTTP: offer no application protocol.
		c.NextProtos = nil
		c.VerifyConnection = count
		e.terminate[n] = c
	}
	return e, nil
}

// accept accepts the connections of ep until its listener is closed, and
// dispatches each.
func (s *Servers) accept(ep *entryPoint) error {
	var delay time.Duration
	for {
		c, err := ep.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			if !temporary(err) {
				return err
			}
			// Out of file descriptors, or a connection aborted before
			// it was accepted: go on after a pause, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Debug("accept failed", "entry_point", ep.name, "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		ep.dispatch(c)
	}
}

// temporary reports whether an error of Accept lets the listener go on
// accepting.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// dispatch hands c to HTTP at once when the entry point has no TCP router;
// otherwise it routes c in a goroutine of its own.
func (ep *entryPoint) dispatch(c net.Conn) {
	g := ep.rt.current.Load()
	var routes *tcp.EntryPoint
	if g != nil {
		routes = g.tcp.EntryPoint(ep.name)
	}
	if routes == nil {
		ep.toHTTP(c)
		return
	}
	if !ep.conns.add(c) {
		c.Close()
		return
	}
	go func() {
		defer ep.conns.done(c)
		ep.route(g, routes, c)
	}()
}

// servesHTTP reports whether the entry point serves anything over HTTP in
// generation g.
func (ep *entryPoint) servesHTTP(g *generation) bool {
	if ep.extra || ep.redirects {
		return true
	}
	t := g.tables[ep.name]
	return t != nil && (len(t.byHost) > 0 || len(t.hostless) > 0)
}

// readers are the bufio.Readers connections are peeked with, sized for a
// ClientHello.
var readers = sync.Pool{New: func() any { return clienthello.NewReader(nil) }}

// route decides who serves c: a TCP router of routes, or HTTP.
func (ep *entryPoint) route(g *generation, routes *tcp.EntryPoint, c net.Conn) {
	client := remoteIP(c)
	if !routes.HasTLS() && !ep.servesHTTP(g) {
		if r := routes.Match(&tcp.Hello{ClientIP: client}); r != nil {
			r.Serve(ep.conns.ctx, c)
			return
		}
		ep.toHTTP(c)
		return
	}
	c.SetReadDeadline(time.Now().Add(ep.timeout))
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	hello, err := clienthello.Peek(br)
	peeked, _ := br.Peek(br.Buffered())
	rc := &replayConn{Conn: c, buf: bytes.Clone(peeked)}
	br.Reset(nil)
	readers.Put(br)
	switch {
	case err == nil:
		ep.routeTLS(routes, rc, client, hello)
	case errors.Is(err, clienthello.ErrNotTLS), errors.Is(err, clienthello.ErrMalformed), errors.Is(err, clienthello.ErrTooLarge):
		if r := routes.Match(&tcp.Hello{ClientIP: client}); r != nil {
			c.SetReadDeadline(time.Time{})
			r.Serve(ep.conns.ctx, rc)
			return
		}
		ep.toHTTP(rc)
	default:
		reason := tcp.ReasonError
		if errors.Is(err, os.ErrDeadlineExceeded) {
			reason = tcp.ReasonTimeout
		}
		ep.metrics.Unrouted(ep.name, reason)
		ep.log.Debug("connection closed before it could be routed", "entry_point", ep.name, "client", client, "reason", reason, "error", err)
		c.Close()
	}
}

// routeTLS routes a connection that starts with a TLS ClientHello; the
// read deadline set for the hello still runs and bounds a handshake.
func (ep *entryPoint) routeTLS(routes *tcp.EntryPoint, c *replayConn, client netip.Addr, hello *clienthello.Hello) {
	if ep.challenges != nil && slices.Contains(hello.ALPN, ACMETLSProto) {
		// The challenge answer, even for a name passed through.
		tc := tls.Server(c, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			return challengeTLS(ep.challenges, h)
		}})
		_ = tc.Handshake()
		tc.Close()
		return
	}
	r := routes.Match(&tcp.Hello{TLS: true, ServerName: hello.ServerName, ALPN: hello.ALPN, ClientIP: client})
	switch {
	case r != nil && r.TLS.Passthrough:
		c.SetReadDeadline(time.Time{})
		r.Serve(ep.conns.ctx, c)
	case r != nil:
		cfg := ep.terminate[r.TLS.Options]
		if cfg == nil {
			cfg = ep.terminate[""]
		}
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			ep.log.Debug("TLS handshake failed", "entry_point", ep.name, "router", r.Name, "client", client, "error", err)
			c.Close()
			return
		}
		c.SetReadDeadline(time.Time{})
		r.Serve(ep.conns.ctx, tc)
	case ep.httpTLS:
		ep.toHTTP(c)
	default:
		ep.metrics.Unrouted(ep.name, tcp.ReasonNoRouter)
		ep.log.Debug("TLS connection closed: no TCP router takes it and the entry point does not serve HTTPS", "entry_point", ep.name, "client", client, "server_name", hello.ServerName)
		c.Close()
	}
}

// toHTTP hands c to the entry point's HTTP server, or closes it once that
// has stopped.
func (ep *entryPoint) toHTTP(c net.Conn) {
	c.SetReadDeadline(time.Time{})
	select {
	case ep.http.conns <- c:
	case <-ep.http.done:
		c.Close()
	}
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// replayConn returns the bytes peeked from a connection before reading
// on.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite closes the writing half of the connection, when it has one.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// connListener is the listener of an entry point's HTTP server: it
// accepts the connections dispatch hands to HTTP.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// connSet tracks the connections being routed or proxied over TCP, so
// that Shutdown can wait for them and close them once its grace period
// ends.
type connSet struct {
	// ctx bounds the connections to servers; it ends with the grace
	// period.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
}

func (s *connSet) init() {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.open = map[net.Conn]struct{}{}
}

// add tracks c, unless the set has been closed.
func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.open[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *connSet) done(c net.Conn) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
	s.wg.Done()
}

// drain waits for the connections to end until ctx does, then closes
// them and waits for their goroutines.
func (s *connSet) drain(ctx context.Context) {
	ended := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	<-ended
}
