package testserver

import (
	"context"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections to a server until it is frozen: then it
// stops forwarding, and connections made after that are accepted but never
// answered, like a server behind a network partition. Outage tests put it
// between one client and the server.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	frozen bool
	closed bool
	conns  map[net.Conn]struct{}
}

// NewProxy starts a proxy on 127.0.0.1 to target, stopped at the end of t.
func NewProxy(t TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address, for the client to dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

// forward connects c to the target, unless the proxy is frozen: then c
// stays open, unanswered, until the proxy is closed.
func (p *Proxy) forward(c net.Conn) {
	if !p.track(c) {
		return
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s, err := d.DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(s) {
		return
	}
	p.wg.Go(func() { p.pipe(s, c) })
	p.pipe(c, s)
}

// track registers c to be closed by Close (and by Freeze with drop). It
// reports whether c may be used for forwarding; if not, c is closed
// already or left hanging until Close.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return !p.frozen
}

// pipe copies src to dst until either fails or, once the proxy is
// frozen, reads src and drops what it reads; then it closes both.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.isFrozen() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) isFrozen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozen
}

// Freeze stops forwarding until Thaw. With drop the connections are closed
// too, so that the client reconnects (into the void); without, they stay up
// and go quiet.
func (p *Proxy) Freeze(drop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
	if drop {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}

// Thaw ends a Freeze: every connection is closed, so that clients
// reconnect, and new connections are forwarded again.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = false
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Close stops the proxy and closes every connection; it is idempotent and
// also runs at the end of the test.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}
