package testserver

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// balancerDialTimeout bounds a dial to one backend. A stopped backend on
// 127.0.0.1 refuses at once; this only guards against one that hangs.
const balancerDialTimeout = 5 * time.Second

// Balancer accepts TCP connections on 127.0.0.1 and hands each to the next
// backend in turn, skipping backends that refuse (dial error) — so a killed
// replica is skipped. When every backend refuses, the connection is closed.
// Bytes are piped unchanged both ways; a half-close (EOF) on one side is
// passed on to the other.
type Balancer struct {
	ln     net.Listener
	ctx    context.Context // cancelled by Close: aborts dials in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	backends []string
	next     int
	closed   bool
	conns    map[net.Conn]struct{}
}

// NewBalancer starts a balancer on 127.0.0.1:port (port 0: a free port)
// over backends ("host:port"), closed at the end of t.
func NewBalancer(t TB, port int, backends ...string) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("balancer listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Balancer{
		ln:       ln,
		ctx:      ctx,
		cancel:   cancel,
		backends: append([]string(nil), backends...),
		conns:    make(map[net.Conn]struct{}),
	}
	b.wg.Go(b.accept)
	t.Cleanup(b.Close)
	return b
}

// Addr is the balancer's address, "127.0.0.1:port".
func (b *Balancer) Addr() string { return b.ln.Addr().String() }

// SetBackends replaces the backends for new connections; connections
// already forwarded stay where they are.
func (b *Balancer) SetBackends(backends ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append([]string(nil), backends...)
}

// Close stops accepting, closes every connection and waits for the
// balancer's goroutines. It is idempotent and also runs at the end of the
// test.
func (b *Balancer) Close() {
	_ = b.ln.Close()
	b.cancel()
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	clear(b.conns)
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Balancer) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Go(func() { b.forward(c) })
	}
}

// forward connects c to the first backend, in round-robin order, that
// accepts, and pipes between them until both sides are done.
func (b *Balancer) forward(c net.Conn) {
	if !b.track(c) {
		return
	}
	defer b.release(c)
	s := b.dial()
	if s == nil {
		return
	}
	if !b.track(s) {
		return
	}
	defer b.release(s)
	var wg sync.WaitGroup
	wg.Go(func() { halfPipe(s, c) })
	halfPipe(c, s)
	wg.Wait()
}

// dial returns a connection to the next backend that accepts one, starting
// with the one whose turn it is, or nil when none does.
func (b *Balancer) dial() net.Conn {
	b.mu.Lock()
	backends := b.backends
	first := b.next
	b.next++
	b.mu.Unlock()
	for i := range backends {
		addr := backends[(first+i)%len(backends)]
		ctx, cancel := context.WithTimeout(b.ctx, balancerDialTimeout)
		var d net.Dialer
		s, err := d.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			return s
		}
		if b.ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// halfPipe copies src to dst. At src's EOF it half-closes dst, so the peer
// sees the end of the stream while the other direction goes on; on an error
// it closes both, which ends the other direction too.
func halfPipe(src, dst net.Conn) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		if cw.CloseWrite() == nil {
			return
		}
	}
	_ = src.Close()
	_ = dst.Close()
}

// track registers c to be closed by Close. It reports false, with c closed,
// when the balancer is closed already.
func (b *Balancer) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		_ = c.Close()
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

// release closes c and forgets it.
func (b *Balancer) release(c net.Conn) {
	_ = c.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.conns, c)
}
