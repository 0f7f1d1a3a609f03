package router

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router/middleware"
	"github.com/tollgate-proxy/tollgate/router/proxyproto"
)

// PROXY protocol on entry points ([entryPoints.NAME.proxyProtocol])
//
// proxyListener wraps an entry point's listener. Accept reads nothing:
// a connection reads its header on its first Read, RemoteAddr or
// LocalAddr, in the goroutine that serves it, so a client that sends
// nothing holds up no other. What a connection from a trusted address
// (trustedIPs, or every address with insecure) starts with decides:
//
//   - a header: with the PROXY command, its source and destination become
//     the connection's RemoteAddr and LocalAddr, and so the address that
//     is routed on (ClientIP), forwarded (X-Forwarded-For) and logged; a
//     LOCAL command or a version 1 UNKNOWN line keeps the connection's own;
//   - no header: the connection keeps its own addresses;
//   - an invalid header, or none complete within the entry point's
//     readHeaderTimeout: the connection is closed.
//
// A connection from any other address keeps its own addresses without
// waiting for a byte; if it starts with a PROXY header anyway it is
// refused (closed), since serving it would let any client claim any
// address. Every outcome is counted in
// tollgate_entrypoint_proxy_protocol_total.

// Outcomes of tollgate_entrypoint_proxy_protocol_total.
const (
	ppHeader   = "header"    // a trusted client sent a header
	ppNoHeader = "no_header" // a trusted client sent none
	ppRefused  = "refused"   // an untrusted client sent one: closed
	ppInvalid  = "invalid"   // a trusted client sent a bad or incomplete one: closed
)

// defaultProxyHeaderTimeout bounds the wait for a header when the entry
// point sets no readHeaderTimeout, as the HTTP server's own default.
const defaultProxyHeaderTimeout = 10 * time.Second

// newProxyCounter makes the counter of PROXY protocol outcomes; Metrics
// registers it.
func newProxyCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_entrypoint_proxy_protocol_total",
		Help: "Connections to entry points with proxyProtocol by outcome: header (a trusted client sent a PROXY header), no_header (a trusted client sent none), refused (an untrusted client sent one; closed), invalid (a trusted client sent a malformed or incomplete one; closed).",
	}, []string{"entrypoint", "outcome"})
}

// proxyListener is a net.Listener whose connections read a PROXY
// protocol header as the package comment above describes.
type proxyListener struct {
	net.Listener
	entryPoint string
	trusted    middleware.IPRanges
	insecure   bool
	timeout    time.Duration
	log        *slog.Logger
	count      func(outcome string)
}

// withProxyProtocol wraps ln when ep reads PROXY protocol headers, and
// returns ln itself otherwise. On error it closes ln. m and log may be
// nil.
func withProxyProtocol(ln net.Listener, name string, ep *config.EntryPoint, m *Metrics, log *slog.Logger) (net.Listener, error) {
	pp := ep.ProxyProtocol
	if pp == nil {
		return ln, nil
	}
	trusted, err := middleware.ParseIPRanges(pp.TrustedIPs)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("proxyProtocol.trustedIPs: %w", err)
	}
	var timeout time.Duration
	if tr := ep.Transport; tr != nil && tr.RespondingTimeouts != nil {
		timeout = tr.RespondingTimeouts.ReadHeaderTimeout.Std()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	count := func(string) {}
	if m != nil {
		byOutcome := map[string]prometheus.Counter{}
		// Every outcome exists from the start, so that increase() sees
		// the first of each.
		for _, o := range []string{ppHeader, ppNoHeader, ppRefused, ppInvalid} {
			byOutcome[o] = m.proxyProtocol.WithLabelValues(name, o)
		}
		count = func(o string) { byOutcome[o].Inc() }
	}
	return &proxyListener{
		Listener:   ln,
		entryPoint: name,
		trusted:    trusted,
		insecure:   pp.Insecure,
		timeout:    cmp.Or(timeout, defaultProxyHeaderTimeout),
		log:        log,
		count:      count,
	}, nil
}

// Accept returns the next connection without reading from it.
func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{Conn: c, l: l, trusted: l.insecure || l.trusted.ContainsHost(c.RemoteAddr().String())}, nil
}

// proxyConn is a connection of a proxyListener. Its header is read once,
// by whichever of Read, RemoteAddr (trusted only) and LocalAddr (trusted
// only) comes first; the bytes read past it are returned by Read.
type proxyConn struct {
	net.Conn
	l       *proxyListener
	trusted bool

	once          sync.Once
	br            *bufio.Reader
	err           error    // returned by every Read once set
	remote, local net.Addr // from the header, when it has addresses

	mu       sync.Mutex
	deadline time.Time // the read deadline the user of the conn set last
	headerBy time.Time // while the header is read, when it must be done
}

// earliest returns the earlier of a and b, a zero time being none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// start reads the header, once.
func (c *proxyConn) start() { c.once.Do(c.readHeader) }

func (c *proxyConn) readHeader() {
	c.br = bufio.NewReader(c.Conn)
	// Bound the wait by the timeout and by the deadline the server set,
	// whichever comes first, and give the server its own back after.
	c.mu.Lock()
	c.headerBy = time.Now().Add(c.l.timeout)
	_ = c.Conn.SetReadDeadline(earliest(c.headerBy, c.deadline))
	c.mu.Unlock()
	h, err := proxyproto.Read(c.br)
	c.mu.Lock()
	c.headerBy = time.Time{}
	_ = c.Conn.SetReadDeadline(c.deadline)
	c.mu.Unlock()

	own := c.Conn.RemoteAddr()
	switch {
	case !c.trusted && errors.Is(err, proxyproto.ErrNoHeader):
		return
	case !c.trusted && (err == nil || errors.Is(err, proxyproto.ErrInvalid)):
		c.l.count(ppRefused)
		c.l.log.Debug("PROXY protocol header from an untrusted address refused",
			slog.String("entry_point", c.l.entryPoint), slog.String("client", own.String()))
		c.fail(errors.New("PROXY protocol header from an untrusted address"))
	case !c.trusted:
		// The client closed or stalled before its first bytes: Read
		// reports it as the connection's own error.
		c.err = err
	case err == nil:
		c.l.count(ppHeader)
		if h.Command == proxyproto.Proxy && h.HasAddrs() {
			c.remote = net.TCPAddrFromAddrPort(h.Source)
			c.local = net.TCPAddrFromAddrPort(h.Destination)
		}
	case errors.Is(err, proxyproto.ErrNoHeader), err == io.EOF:
		c.l.count(ppNoHeader)
	default:
		c.l.count(ppInvalid)
		c.l.log.Debug("invalid PROXY protocol header, connection closed",
			slog.String("entry_point", c.l.entryPoint), slog.String("client", own.String()),
			// Only what was wrong: the error's text quotes the header.
			slog.String("reason", proxyproto.Problem(err)))
		// Read returns it, and the HTTP server logs it (a TLS handshake
		// error): it too names the problem only.
		c.fail(fmt.Errorf("invalid PROXY protocol header: %s", proxyproto.Problem(err)))
	}
}

// fail closes the connection; every Read returns err.
func (c *proxyConn) fail(err error) {
	c.err = err
	c.Conn.Close()
}

func (c *proxyConn) Read(p []byte) (int, error) {
	c.start()
	if c.err != nil {
		return 0, c.err
	}
	if c.br.Buffered() == 0 {
		return c.Conn.Read(p)
	}
	return c.br.Read(p)
}

// RemoteAddr is the client's address: the header's source when a trusted
// client sent one, which it waits for; the connection's own otherwise.
func (c *proxyConn) RemoteAddr() net.Addr {
	if !c.trusted {
		return c.Conn.RemoteAddr()
	}
	c.start()
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr is the address the client connected to: the header's
// destination when a trusted client sent one, which it waits for; the
// connection's own otherwise.
func (c *proxyConn) LocalAddr() net.Addr {
	if !c.trusted {
		return c.Conn.LocalAddr()
	}
	c.start()
	if c.local != nil {
		return c.local
	}
	return c.Conn.LocalAddr()
}

// SetDeadline sets the deadlines; while the header is read, the read
// deadline is the earlier of t and the header's.
func (c *proxyConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// SetReadDeadline sets the read deadline; while the header is read, the
// earlier of t and the header's.
func (c *proxyConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetReadDeadline(earliest(c.headerBy, t))
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *proxyConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
