package etcd

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// freezeProxy forwards TCP connections to an etcd member until it is
// frozen: then it stops forwarding, and connections made after that are
// accepted but never answered, like a member behind a partition.
type freezeProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	frozen bool
	closed bool
	conns  map[net.Conn]struct{}
}

// newFreezeProxy starts a proxy to target, stopped at the end of t.
func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &freezeProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

// forward connects c to the target, unless the proxy is frozen: then c
// stays open, unanswered, until the proxy closes.
func (p *freezeProxy) forward(c net.Conn) {
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

// track registers c to be closed by close (and by freeze with drop). It
// reports whether c may be used for forwarding; if not, c is closed
// already or left hanging until close.
func (p *freezeProxy) track(c net.Conn) bool {
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
func (p *freezeProxy) pipe(dst, src net.Conn) {
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

func (p *freezeProxy) isFrozen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozen
}

// freeze stops forwarding. With drop the connections are closed too, so
// that the client reconnects (into the void); without, they stay up and
// go quiet.
func (p *freezeProxy) freeze(drop bool) {
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

func (p *freezeProxy) close() {
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

// TestLockLostBeforeTakeover cuts a lock holder off from etcd and lets a
// second client wait for the lock: by the time the server has expired
// the first holder's lease and the second client holds the lock, the
// first holder's Done must be closed already. It does not measure time:
// it checks the order of the two events.
func TestLockLostBeforeTakeover(t *testing.T) {
	srv := testserver.Etcd(t)
	b := newStore(t, srv.Addr)
	for _, tc := range []struct {
		name string
		drop bool
	}{
		{"stalled", false},
		{"dropped", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := newFreezeProxy(t, srv.Addr)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			a, err := New(ctx, Config{Endpoints: []string{proxy.addr()},
				DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = a.Close() })
			key := "loss/" + tc.name
			la, err := a.Lock(ctx, key, kvstore.LockOptions{TTL: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			proxy.freeze(tc.drop)
			lb, err := b.Lock(ctx, key, kvstore.LockOptions{TTL: 3 * time.Second})
			if err != nil {
				t.Fatalf("second holder: %v", err)
			}
			defer lb.Release(ctx)
			select {
			case <-la.Done():
			default:
				t.Fatal("second holder acquired the lock while the first holder's Done was still open")
			}
			if lb.Token() <= la.Token() {
				t.Fatalf("tokens: second holder %d, first %d; want strictly greater", lb.Token(), la.Token())
			}
		})
	}
}
