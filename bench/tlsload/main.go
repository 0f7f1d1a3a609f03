// Command tlsload is the load generator of the TLS passthrough scenario of
// bench/proxy.sh. It speaks TLS through a proxy to the echo server of
// bench/backend (-cert/-key), with the server name -name in the
// ClientHello (SNI), which is what the proxy routes on. A connection
// counts only when the server presented a certificate for -name.
//
// -mode bulk opens -c connections and, for -d, writes -chunk bytes at a
// time on each while reading the echo back; then it stops writing, reads
// until every byte written has come back and closes. It prints
//
//	bulk up U down D conns C errors E seconds S
//
// with U and D the bytes written and read back by all connections.
//
// -mode conns runs -c loops of: new TCP connection, full TLS handshake
// (no session resumption), -size bytes written, the same -size bytes read
// back, close. It prints
//
//	conns N errors E seconds S
//
// The first error, if any, goes to standard error.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// drainTimeout bounds the wait for the echo of the last bytes written.
const drainTimeout = 10 * time.Second

type load struct {
	addr     string
	cfg      *tls.Config
	end      time.Time
	chunk    int
	size     int
	dialer   net.Dialer
	ok       atomic.Int64
	failed   atomic.Int64
	up, down atomic.Int64
	once     sync.Once
	firstErr error
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port of the proxy")
	name := flag.String("name", "bench.test", "server name sent (SNI) and expected in the certificate")
	mode := flag.String("mode", "bulk", "bulk: long connections carrying data both ways; conns: a new connection and handshake per exchange")
	conns := flag.Int("c", 8, "connections at once")
	duration := flag.Duration("d", 10*time.Second, "how long to run")
	chunk := flag.Int("chunk", 16<<10, "bulk: bytes per write")
	size := flag.Int("size", 64, "conns: bytes written and read back per connection")
	flag.Parse()
	if *mode != "bulk" && *mode != "conns" {
		log.Fatalf("-mode %q: want bulk or conns", *mode)
	}
	if *conns < 1 || *chunk < 1 || *size < 1 {
		log.Fatal("-c, -chunk and -size must be positive")
	}

	l := &load{
		addr: *addr,
		cfg: &tls.Config{
			ServerName: *name,
			// The certificates are self-signed: the chain is not
			// verified, but the name is (below), and the handshake
			// signature is.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("no certificate")
				}
				return cs.PeerCertificates[0].VerifyHostname(*name)
			},
		},
		chunk: *chunk,
		size:  *size,
	}
	start := time.Now()
	l.end = start.Add(*duration)
	ctx, cancel := context.WithDeadline(context.Background(), l.end.Add(drainTimeout))
	defer cancel()
	var wg sync.WaitGroup
	for range *conns {
		if *mode == "bulk" {
			wg.Go(func() { l.count(l.bulk(ctx)) })
		} else {
			wg.Go(func() { l.loop(ctx) })
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if *mode == "bulk" {
		fmt.Printf("bulk up %d down %d conns %d errors %d seconds %.3f\n", l.up.Load(), l.down.Load(), l.ok.Load(), l.failed.Load(), elapsed)
	} else {
		fmt.Printf("conns %d errors %d seconds %.3f\n", l.ok.Load(), l.failed.Load(), elapsed)
	}
	if l.firstErr != nil {
		fmt.Fprintln(os.Stderr, "first error:", l.firstErr)
	}
	if l.ok.Load() == 0 {
		log.Fatal("no connection succeeded")
	}
}

func (l *load) count(err error) {
	if err == nil {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	l.once.Do(func() { l.firstErr = err })
}

func (l *load) dial(ctx context.Context) (*tls.Conn, error) {
	raw, err := l.dialer.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, l.cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

// loop makes new connections, one at a time, until the end of the run.
func (l *load) loop(ctx context.Context) {
	msg := bytes.Repeat([]byte("q"), l.size)
	got := make([]byte, l.size)
	for time.Now().Before(l.end) {
		err := l.exchange(ctx, msg, got)
		if err != nil && !time.Now().Before(l.end) {
			continue // cut by the end of the run: not counted
		}
		l.count(err)
	}
}

func (l *load) exchange(ctx context.Context, msg, got []byte) error {
	c, err := l.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(l.end.Add(drainTimeout))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return errors.New("the echo differs from what was sent")
	}
	return nil
}

// bulk writes on one connection until the end of the run while reading the
// echo, then reads until all of it has come back.
func (l *load) bulk(ctx context.Context) error {
	c, err := l.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetWriteDeadline(l.end.Add(drainTimeout))

	var read atomic.Int64
	var written atomic.Int64 // final once done is set
	var done atomic.Bool
	werr := make(chan error, 1)
	go func() {
		buf := bytes.Repeat([]byte("b"), l.chunk)
		var err error
		for time.Now().Before(l.end) {
			var n int
			n, err = c.Write(buf)
			written.Add(int64(n))
			l.up.Add(int64(n))
			if err != nil {
				break
			}
		}
		done.Store(true)
		// The reader stops once it has read all that was written; if
		// it already has, it may be waiting in Read for nothing: wake
		// it. Otherwise give the last bytes drainTimeout to come back.
		if err != nil || read.Load() >= written.Load() {
			_ = c.SetReadDeadline(time.Now())
		} else {
			_ = c.SetReadDeadline(time.Now().Add(drainTimeout))
		}
		werr <- err
	}()

	buf := make([]byte, 32<<10)
	var rerr error
	for {
		n, err := c.Read(buf)
		read.Add(int64(n))
		l.down.Add(int64(n))
		if done.Load() && read.Load() >= written.Load() {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if read.Load() < written.Load() {
		return fmt.Errorf("%d of %d bytes echoed: %w", read.Load(), written.Load(), rerr)
	}
	return nil
}
