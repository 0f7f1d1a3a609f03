package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkNewConnection measures one HTTP/1.1 request per new
// connection on a plain entry point: the cost of accepting and
// dispatching a connection (the answer is a 404), without TCP routers
// (handed to HTTP at once) and with a TLS TCP router (peeked first).
func BenchmarkNewConnection(b *testing.B) {
	const ep = "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n"
	b.Run("http", func(b *testing.B) { benchNewConnection(b, ep) })
	b.Run("peeked", func(b *testing.B) {
		benchNewConnection(b, ep+"[tcp.routers.db]\nrule = \"HostSNI(`db.example.com`)\"\nservice = \"db\"\n[tcp.routers.db.tls]\npassthrough = true\n[[tcp.services.db.loadBalancer.servers]]\naddress = \"127.0.0.1:1\"\n")
	})
}

func benchNewConnection(b *testing.B, doc string) {
	cfg, err := parseConfigErr(doc)
	if err != nil {
		b.Fatal(err)
	}
	rt := New(Config{})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	servers, err := Listen(ServersConfig{Config: cfg, Router: rt})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- servers.Serve() }()
	defer func() {
		servers.Shutdown(b.Context())
		<-done
	}()
	addr := servers.Addr("web").String()
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.Close()
	}
}
