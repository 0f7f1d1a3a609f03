// Command backend is the origin server of the proxy benchmarks
// (bench/proxy.sh): it answers every request on one address with the same
// small body, so that what a benchmark measures is the proxy in front of
// it.
//
// With -cert and -key it serves TLS instead, for the TLS passthrough
// scenario: it completes the handshake itself (the proxy in front only
// relays bytes) and sends every byte it reads back on the same connection
// until the client closes it.
package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8001", "address to listen on")
	size := flag.Int("size", 1024, "bytes in every response body")
	certFile := flag.String("cert", "", "PEM certificate: with -key, serve TLS and echo every byte instead of HTTP")
	keyFile := flag.String("key", "", "PEM key of -cert")
	flag.Parse()

	if *certFile != "" || *keyFile != "" {
		log.Fatal(serveEcho(*addr, *certFile, *keyFile))
	}

	body := bytes.Repeat([]byte("x"), *size)
	length := []string{strconv.Itoa(len(body))}
	contentType := []string{"text/plain; charset=utf-8"}
	srv := &http.Server{
		Addr: *addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = contentType
			h["Content-Length"] = length
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Fatal(srv.ListenAndServe())
}

// serveEcho accepts TLS connections on addr and echoes what each sends.
// Session tickets are off, so that a client's connection is a full
// handshake and its few bytes, nothing more.
func serveEcho(addr, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	cfg := &tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: true,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go echo(tls.Server(c, cfg))
	}
}

// echo copies what the client sends back to it until the client closes
// its side (close_notify or EOF) or the connection fails, then closes.
func echo(c *tls.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = c.CloseWrite()
			}
			return
		}
	}
}
