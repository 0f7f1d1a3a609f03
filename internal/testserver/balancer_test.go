package testserver

import (
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestBalancerRoundRobin checks that connections alternate between the
// backends, skip one that refuses, and follow SetBackends.
func TestBalancerRoundRobin(t *testing.T) {
	a := startBackend(t, greet("a"))
	b := startBackend(t, greet("b"))
	bal := NewBalancer(t, 0, a.addr(), b.addr())

	if got, want := greetings(t, bal, 4), []string{"a", "b", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("both up: got %q, want %q", got, want)
	}
	b.stop()
	if got, want := greetings(t, bal, 3), []string{"a", "a", "a"}; !slices.Equal(got, want) {
		t.Errorf("b down: got %q, want %q", got, want)
	}
	c := startBackend(t, greet("c"))
	bal.SetBackends(c.addr(), a.addr())
	got := greetings(t, bal, 4)
	if !slices.Equal(got, []string{"c", "a", "c", "a"}) && !slices.Equal(got, []string{"a", "c", "a", "c"}) {
		t.Errorf("after SetBackends(c, a): got %q, want c and a alternating", got)
	}
	a.stop()
	c.stop()
	if got, want := greetings(t, bal, 1), []string{""}; !slices.Equal(got, want) {
		t.Errorf("all down: got %q, want %q (connection closed)", got, want)
	}
}

// TestBalancerHalfClose checks that the client's half-close reaches the
// backend while the backend's answer still comes back, byte for byte.
func TestBalancerHalfClose(t *testing.T) {
	echo := startBackend(t, func(c net.Conn) {
		b, err := io.ReadAll(c) // until the client's half-close
		if err != nil {
			return
		}
		_, _ = c.Write(append(b, " (echoed)"...))
	})
	bal := NewBalancer(t, 0, echo.addr())
	conn, err := net.Dial("tcp", bal.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := []byte("hello\x00\xff")
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(msg) + " (echoed)"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestBalancerClose checks that Close ends connections in progress.
func TestBalancerClose(t *testing.T) {
	hold := startBackend(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	bal := NewBalancer(t, 0, hold.addr())
	conn, err := net.Dial("tcp", bal.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	bal.Close()
	// A guard against a hang, not a timing assertion.
	if err := conn.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// EOF or a reset (when "x" was still unread): either way it ended.
	if _, err := io.ReadAll(conn); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("connection still open after Close")
	}
	if _, err := net.Dial("tcp", bal.Addr()); err == nil {
		t.Error("balancer still accepts after Close")
	}
}

// greetings dials bal n times and returns what each connection said.
func greetings(t *testing.T, bal *Balancer, n int) []string {
	t.Helper()
	var got []string
	for range n {
		conn, err := net.Dial("tcp", bal.Addr())
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(conn)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	return got
}

// greet returns a backend handler that writes name and hangs up.
func greet(name string) func(net.Conn) {
	return func(c net.Conn) { _, _ = c.Write([]byte(name)) }
}

// backend is a TCP server on 127.0.0.1 that runs handle for each
// connection and then closes it.
type backend struct {
	ln   net.Listener
	wg   sync.WaitGroup
	once sync.Once
}

func startBackend(t *testing.T, handle func(net.Conn)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(b.stop)
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

// stop closes the listener, so that dials are refused, and waits for the
// connections being handled.
func (b *backend) stop() {
	b.once.Do(func() { _ = b.ln.Close() })
	b.wg.Wait()
}
