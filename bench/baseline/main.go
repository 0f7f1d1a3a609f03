// Command baseline is the simplest correct Go reverse proxy to one
// backend, the yardstick bench/proxy.sh compares tollgate with: one
// httputil.ReverseProxy behind an HTTP and an HTTPS listener, with
// tollgate's default timeouts, header limit and backend keep-alive pool,
// and nothing else (no routing, request ids, metrics or logs).
package main

import (
	"crypto/tls"
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	backend := flag.String("backend", "http://127.0.0.1:8001", "URL of the one backend")
	plain := flag.String("http", "127.0.0.1:8080", "HTTP listen address; empty for none")
	secure := flag.String("https", "", "HTTPS listen address; empty for none")
	certFile := flag.String("cert", "", "PEM certificate of the HTTPS listener")
	keyFile := flag.String("key", "", "PEM key of the HTTPS listener")
	flag.Parse()

	target, err := url.Parse(*backend)
	if err != nil {
		log.Fatalf("backend: %v", err)
	}
	// tollgate's backend transport: the default one with a keep-alive
	// pool large enough for every client connection.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport: tr,
	}
	// tollgate's entry point defaults.
	newServer := func(addr string) *http.Server {
		return &http.Server{
			Addr:              addr,
			Handler:           proxy,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			IdleTimeout:       180 * time.Second,
			MaxHeaderBytes:    1 << 20,
		}
	}
	errs := make(chan error, 2)
	if *plain != "" {
		srv := newServer(*plain)
		go func() { errs <- srv.ListenAndServe() }()
	}
	if *secure != "" {
		srv := newServer(*secure)
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		go func() { errs <- srv.ListenAndServeTLS(*certFile, *keyFile) }()
	}
	if *plain == "" && *secure == "" {
		log.Fatal("give -http, -https or both")
	}
	log.Fatal(<-errs)
}
