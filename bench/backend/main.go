// Command backend is the origin server of the proxy benchmarks
// (bench/proxy.sh): it answers every request on one address with the same
// small body, so that what a benchmark measures is the proxy in front of
// it.
package main

import (
	"bytes"
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8001", "address to listen on")
	size := flag.Int("size", 1024, "bytes in every response body")
	flag.Parse()

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
