// Command handshake measures full TLS handshakes per second against one
// address for bench/proxy.sh: -c connections at a time, each a new TCP
// connection with a full handshake (no session resumption) for -name,
// closed as soon as the handshake is done. A handshake counts only when the
// server presented a certificate for -name, so that a server falling back
// to another certificate is an error, not a result. It prints
//
//	handshakes N errors E seconds S
//
// and the first error, if any, on standard error.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port of the TLS server")
	name := flag.String("name", "bench.test", "server name sent (SNI) and expected in the certificate")
	conns := flag.Int("c", 16, "handshakes in flight at once")
	duration := flag.Duration("d", 10*time.Second, "how long to run")
	flag.Parse()

	cfg := &tls.Config{
		ServerName: *name,
		// The certificates are self-signed: the chain is not verified,
		// but the name is (below), and the handshake signature is.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no certificate")
			}
			return cs.PeerCertificates[0].VerifyHostname(*name)
		},
	}
	var ok, failed atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	end := start.Add(*duration)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	dialer := &net.Dialer{}
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for time.Now().Before(end) {
				err := handshake(ctx, dialer, *addr, cfg)
				switch {
				case err == nil:
					ok.Add(1)
				case !time.Now().Before(end):
					// cut by the end of the run (the deadline of a
					// connection may fire before ctx is done): not counted
				default:
					failed.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("handshakes %d errors %d seconds %.3f\n", ok.Load(), failed.Load(), elapsed.Seconds())
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "first error:", firstErr)
	}
	if ok.Load() == 0 {
		log.Fatal("no handshake succeeded")
	}
}

func handshake(ctx context.Context, d *net.Dialer, addr string, cfg *tls.Config) error {
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	return tls.Client(raw, cfg).HandshakeContext(ctx)
}
