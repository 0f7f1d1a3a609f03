package tcp

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router/proxyproto"
	"github.com/tollgate-proxy/tollgate/router/wrr"
)

// Defaults of a serversTransport (see config.TCPServersTransport).
const (
	defaultDialTimeout      = 30 * time.Second
	defaultDialKeepAlive    = 15 * time.Second
	defaultTerminationDelay = 100 * time.Millisecond
)

// transport is a serversTransport built: how servers are reached and how
// long a connection may stay idle or half-closed.
type transport struct {
	dialer           net.Dialer
	idleTimeout      time.Duration // 0: no limit
	terminationDelay time.Duration // negative: no limit
	proxyVersion     int           // 0: no PROXY header
	tls              *tls.Config   // for servers marked tls; ServerName set per server when empty
}

func newTransport(st *config.TCPServersTransport, readFiles bool) (*transport, error) {
	if st == nil {
		st = &config.TCPServersTransport{}
	}
	keepAlive := cmp.Or(st.DialKeepAlive.Std(), defaultDialKeepAlive)
	if keepAlive < 0 {
		keepAlive = -1
	}
	t := &transport{
		dialer:           net.Dialer{Timeout: cmp.Or(st.DialTimeout.Std(), defaultDialTimeout), KeepAlive: keepAlive},
		idleTimeout:      max(st.IdleTimeout.Std(), 0),
		terminationDelay: cmp.Or(st.TerminationDelay.Std(), defaultTerminationDelay),
		tls:              &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if pp := st.ProxyProtocol; pp != nil {
		t.proxyVersion = cmp.Or(pp.Version, 2)
		if t.proxyVersion != 1 && t.proxyVersion != 2 {
			return nil, fmt.Errorf("proxyProtocol version %d: use 1 or 2", pp.Version)
		}
	}
	if c := st.TLS; c != nil {
		t.tls.ServerName = c.ServerName
		t.tls.InsecureSkipVerify = c.InsecureSkipVerify
		if !readFiles {
			return t, nil
		}
		if len(c.RootCAs) > 0 {
			pool, err := config.ReadCertPool(c.RootCAs)
			if err != nil {
				return nil, fmt.Errorf("tls.rootCAs: %w", err)
			}
			t.tls.RootCAs = pool
		}
		for _, cert := range c.Certificates {
			pair, err := config.ReadKeyPair(cert.CertFile, cert.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("tls.certificates: %w", err)
			}
			t.tls.Certificates = append(t.tls.Certificates, pair)
		}
	}
	return t, nil
}

// service opens a connection to a server for a client's connection.
type service interface {
	// dial connects to a server for client, whose addresses the PROXY
	// header names, and returns the connection and the transport it was
	// made with.
	dial(ctx context.Context, client net.Conn) (net.Conn, *transport, error)
}

var errNoServer = errors.New("no server available")

// server is one server of a loadBalancer.
type server struct {
	address string
	tls     bool
	weight  int
	healthy atomic.Bool
}

// loadBalancer spreads connections over its servers by smooth weighted
// round robin, skipping the servers its health check finds down.
type loadBalancer struct {
	name    string
	servers []*server
	tr      *transport
	metrics *Metrics
	log     *slog.Logger

	mu      sync.Mutex
	current []int
}

func newLoadBalancer(name string, lb *config.TCPLoadBalancer, tr *transport, m *Metrics, log *slog.Logger) (*loadBalancer, error) {
	if len(lb.Servers) == 0 {
		return nil, fmt.Errorf("service %s: a loadBalancer needs servers", name)
	}
	s := &loadBalancer{name: name, tr: tr, metrics: m, log: log, current: make([]int, len(lb.Servers))}
	for i, sc := range lb.Servers {
		if _, _, err := net.SplitHostPort(sc.Address); err != nil {
			return nil, fmt.Errorf("service %s: servers[%d]: address %q: want host:port", name, i, sc.Address)
		}
		w := 1
		if sc.Weight != nil {
			w = *sc.Weight
		}
		if w < 0 {
			return nil, fmt.Errorf("service %s: servers[%d]: weight %d: want 0 or more", name, i, w)
		}
		srv := &server{address: sc.Address, tls: sc.TLS, weight: w}
		srv.healthy.Store(true)
		s.servers = append(s.servers, srv)
	}
	return s, nil
}

// next picks the next server up that tried does not hold, or nil.
func (lb *loadBalancer) next(tried []*server) *server {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	i := wrr.Pick(lb.current, func(i int) int {
		s := lb.servers[i]
		for _, t := range tried {
			if t == s {
				return 0
			}
		}
		if !s.healthy.Load() {
			return 0
		}
		return s.weight
	})
	if i < 0 {
		return nil
	}
	return lb.servers[i]
}

// dial connects to the next server up; when that fails (nothing has been
// sent yet), to the next one, each server once.
func (lb *loadBalancer) dial(ctx context.Context, client net.Conn) (net.Conn, *transport, error) {
	var tried []*server
	var last error
	for {
		s := lb.next(tried)
		if s == nil {
			if last != nil {
				return nil, nil, last
			}
			return nil, nil, fmt.Errorf("service %s: %w", lb.name, errNoServer)
		}
		tried = append(tried, s)
		conn, err := lb.dialServer(ctx, s, client)
		if err == nil {
			return conn, lb.tr, nil
		}
		lb.metrics.dialFailed(lb.name)
		lb.log.Debug("TCP server unreachable", "service", lb.name, "address", s.address, "error", err)
		last = fmt.Errorf("service %s: server %s: %w", lb.name, s.address, err)
	}
}

func (lb *loadBalancer) dialServer(ctx context.Context, s *server, client net.Conn) (net.Conn, error) {
	conn, err := lb.tr.dialer.DialContext(ctx, "tcp", s.address)
	if err != nil {
		return nil, err
	}
	if lb.tr.proxyVersion != 0 {
		if err := proxyHeader(lb.tr.proxyVersion, client).Write(conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("PROXY protocol header: %w", err)
		}
	}
	if !s.tls {
		return conn, nil
	}
	cfg := lb.tr.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(s.address)
	}
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, lb.tr.dialer.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// proxyHeader is the PROXY header naming client's addresses: its remote
// address (which a PROXY header on the entry point may have given) and
// the address it connected to.
func proxyHeader(version int, client net.Conn) *proxyproto.Header {
	h := &proxyproto.Header{Version: version, Command: proxyproto.Proxy}
	src, dst := addrPort(client.RemoteAddr()), addrPort(client.LocalAddr())
	if !src.IsValid() {
		return h // UNKNOWN: the client's address is not an IP address
	}
	if !dst.IsValid() || dst.Addr().Is4() != src.Addr().Is4() {
		// Both must be of one family: name the port only.
		zero := netip.IPv4Unspecified()
		if src.Addr().Is6() {
			zero = netip.IPv6Unspecified()
		}
		dst = netip.AddrPortFrom(zero, dst.Port())
	}
	h.Transport, h.Source, h.Destination = proxyproto.TransportStream, src, dst
	return h
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// weighted spreads connections over child services by smooth weighted
// round robin; a child that has no server to take a connection is
// skipped for it.
type weighted struct {
	name     string
	children []service
	weights  []int

	mu      sync.Mutex
	current []int
}

func (w *weighted) dial(ctx context.Context, client net.Conn) (net.Conn, *transport, error) {
	tried := make([]bool, len(w.children))
	var last error
	for {
		w.mu.Lock()
		i := wrr.Pick(w.current, func(i int) int {
			if tried[i] {
				return 0
			}
			return w.weights[i]
		})
		w.mu.Unlock()
		if i < 0 {
			if last != nil {
				return nil, nil, last
			}
			return nil, nil, fmt.Errorf("service %s: %w", w.name, errNoServer)
		}
		tried[i] = true
		conn, tr, err := w.children[i].dial(ctx, client)
		if err == nil {
			return conn, tr, nil
		}
		last = err
	}
}

// healthCheck checks the servers of one loadBalancer: a connection, and
// optionally a payload sent and the start of the answer expected.
type healthCheck struct {
	lb       *loadBalancer
	cfg      *config.TCPHealthCheck
	interval time.Duration
	down     time.Duration // interval while a server is down
	timeout  time.Duration
}

func newHealthCheck(lb *loadBalancer, cfg *config.TCPHealthCheck) *healthCheck {
	interval := cmp.Or(cfg.Interval.Std(), 30*time.Second)
	return &healthCheck{lb: lb, cfg: cfg, interval: interval,
		down: cmp.Or(cfg.UnhealthyInterval.Std(), interval), timeout: cmp.Or(cfg.Timeout.Std(), 5*time.Second)}
}

// run checks every server at once, then each every interval (or
// unhealthyInterval while it is down), until ctx is done.
func (h *healthCheck) run(ctx context.Context, wg *sync.WaitGroup) {
	for _, s := range h.lb.servers {
		wg.Go(func() {
			for {
				h.set(s, h.check(ctx, s))
				wait := h.interval
				if !s.healthy.Load() {
					wait = h.down
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		})
	}
}

func (h *healthCheck) set(s *server, err error) {
	ok := err == nil
	if was := s.healthy.Swap(ok); was == ok {
		return
	}
	if ok {
		h.lb.log.Info("TCP server up", "service", h.lb.name, "address", s.address, "reason", "health check passed")
	} else {
		h.lb.log.Warn("TCP server down", "service", h.lb.name, "address", s.address, "reason", err.Error())
	}
}

// check connects to s (on the check's port, when set), sends the
// payload and reads the expected answer, within the timeout.
func (h *healthCheck) check(ctx context.Context, s *server) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	addr := s.address
	if h.cfg.Port != 0 {
		host, _, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort(host, strconv.Itoa(h.cfg.Port))
	}
	d := h.lb.tr.dialer
	d.Timeout = 0 // the context bounds the check
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no connection within the timeout of %s", h.timeout)
		}
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if h.cfg.Send != "" {
		if _, err := io.WriteString(conn, h.cfg.Send); err != nil {
			return fmt.Errorf("sending the payload: %w", err)
		}
	}
	if h.cfg.Expect == "" {
		return nil
	}
	got := make([]byte, len(h.cfg.Expect))
	n, err := io.ReadFull(conn, got)
	if err != nil && n == 0 {
		return fmt.Errorf("no answer: %w", err)
	}
	if !bytes.Equal(got[:n], []byte(h.cfg.Expect)) || n < len(got) {
		return fmt.Errorf("the answer does not start with the expected %d bytes", len(h.cfg.Expect))
	}
	return nil
}
