package router

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tollgate-proxy/tollgate/config"
)

// altSvcMaxAge is how long, in seconds, a client may remember that an
// entry point serves HTTP/3 (the ma parameter of Alt-Svc).
const altSvcMaxAge = 86400

// h3Server serves HTTP/3 for one entry point on the UDP socket bound at
// Listen.
//
// When quic-go cannot raise the socket's buffers to the size it wants, it
// says so once through the standard log package, which the command routes
// to its logger (see docs/configuration.md on the sysctls to raise).
type h3Server struct {
	srv  *http3.Server
	conn *net.UDPConn
}

// listenHTTP3 binds the UDP socket of an entry point serving HTTP/3, on
// the address and port its TCP listener got (the port the system chose
// for ":0" included), and makes its TCP server advertise it in Alt-Svc.
// It does nothing for an entry point without http3. h is the entry
// point's handler chain, which serves HTTP/3 requests too.
func (s *Servers) listenHTTP3(cfg ServersConfig, name string, ep *config.EntryPoint, srv *http.Server, h http.Handler) error {
	if ep.HTTP3 == nil {
		return nil
	}
	if srv.TLSConfig == nil {
		return errors.New("http3 needs TLS on the entry point: add http.tls to it")
	}
	tcp, ok := s.lns[name].Addr().(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("http3: the entry point listens on %s, not on a TCP address", s.lns[name].Addr())
	}
	udp := &net.UDPAddr{IP: tcp.IP, Port: tcp.Port, Zone: tcp.Zone}
	conn, err := net.ListenUDP("udp", udp)
	if err != nil {
		return fmt.Errorf("http3: UDP port %d, which HTTP/3 shares with the TCP port of the entry point: %w; free the UDP port or remove http3", tcp.Port, err)
	}
	h3 := &http3.Server{
		Handler:        h,
		TLSConfig:      quicTLS(srv.TLSConfig),
		QUICConfig:     &quic.Config{}, // no 0-RTT: early data could be replayed to the services
		MaxHeaderBytes: srv.MaxHeaderBytes,
		IdleTimeout:    srv.IdleTimeout,
		Logger:         s.log,
		ConnContext:    quicConnState(name, cfg.Metrics),
	}
	if s.h3 == nil {
		s.h3 = map[string]*h3Server{}
	}
	s.h3[name] = &h3Server{srv: h3, conn: conn}
	srv.Handler = withAltSvc(cmp.Or(ep.HTTP3.AdvertisedPort, tcp.Port), srv.Handler)
	s.log.Info("HTTP/3 listening", "entry_point", name, "address", conn.LocalAddr().String())
	return nil
}

// quicTLS derives the TLS settings of HTTP/3 from the entry point's: the
// same certificates, TLS 1.3 (QUIC needs it) and the h3 protocol, also in
// the settings a router's TLS options choose. TLS-ALPN-01 validation
// handshakes are refused: the challenge is answered over TCP only.
func quicTLS(tc *tls.Config) *tls.Config {
	c := tc.Clone()
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{http3.NextProtoH3}
	if next := tc.GetConfigForClient; next != nil {
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if slices.Contains(hello.SupportedProtos, ACMETLSProto) {
				return nil, errors.New("TLS-ALPN-01 is answered over TCP only")
			}
			rc, err := next(hello)
			if rc == nil || err != nil {
				return rc, err
			}
			return quicTLS(rc), nil
		}
	}
	return c
}

// withAltSvc advertises HTTP/3 on port in the responses to HTTPS
// requests.
func withAltSvc(port int, next http.Handler) http.Handler {
	v := fmt.Sprintf(`%s=":%d"; ma=%d`, http3.NextProtoH3, port, altSvcMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Alt-Svc", v)
		}
		next.ServeHTTP(w, r)
	})
}

// quicConnState counts the open QUIC connections of an entry point with
// its TCP connections.
func quicConnState(entryPoint string, m *Metrics) func(context.Context, *quic.Conn) context.Context {
	if m == nil {
		return nil
	}
	open := m.connections.WithLabelValues(entryPoint)
	return func(ctx context.Context, c *quic.Conn) context.Context {
		open.Inc()
		context.AfterFunc(c.Context(), open.Dec)
		return ctx
	}
}

// serveHTTP3 serves every HTTP/3 entry point until Shutdown, each
// reporting how it stopped on errs, as Serve's TCP servers do.
func (s *Servers) serveHTTP3(errs chan<- error) {
	for name, h := range s.h3 {
		s.wg.Go(func() {
			if err := h.srv.Serve(h.conn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("entry point %s: HTTP/3: %w", name, err)
				return
			}
			errs <- nil
		})
	}
}

// shutdownHTTP3 stops the HTTP/3 servers as Shutdown stops the TCP ones:
// each tells its clients to stop (GOAWAY), waits for the requests in
// flight until ctx ends and then closes its connections; the UDP sockets
// are closed once their servers have stopped.
func (s *Servers) shutdownHTTP3(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 0, len(s.h3))
	var mu sync.Mutex
	for name, h := range s.h3 {
		wg.Go(func() {
			err := h.srv.Shutdown(ctx)
			if err != nil {
				h.srv.Close()
				mu.Lock()
				errs = append(errs, fmt.Errorf("entry point %s: HTTP/3: %w", name, err))
				mu.Unlock()
			}
			h.conn.Close()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closeHTTP3 closes the UDP sockets when Listen fails.
func (s *Servers) closeHTTP3() {
	for _, h := range s.h3 {
		h.conn.Close()
	}
}
