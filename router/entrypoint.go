package router

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// ServersConfig configures Listen.
type ServersConfig struct {
	// Config is the configuration the listeners are built from; entry
	// point changes need a restart.
	Config *config.Config
	// Router routes the requests of every entry point.
	Router *Router
	// Certs supplies certificates after the provided ones (the
	// configuration's ProvidedCertificates, as Router applies them) and
	// before the configuration's certificate files and the default
	// certificate. Nil means none.
	Certs CertSource
	// Challenges, when set, answers ACME challenges on every entry point:
	// HTTP-01 requests before routing and TLS-ALPN-01 handshakes.
	Challenges Challenges
	// Extra handlers served on one entry point before routing, such as
	// the API on its entry point; keyed by entry point name.
	Extra map[string]http.Handler
	// Logger receives server errors. Nil discards them.
	Logger *slog.Logger
	// Metrics, when set, counts connections and TLS handshakes.
	Metrics *Metrics
}

// Servers are the listening entry points.
//
// Each entry point accepts its connections itself and decides, for each,
// who serves it (see dispatch): a TCP router of the generation in force,
// or the entry point's HTTP server, which receives its connections
// through an in-memory listener.
type Servers struct {
	log     *slog.Logger
	servers map[string]*http.Server
	lns     map[string]net.Listener
	h3      map[string]*h3Server // entry points serving HTTP/3 too
	eps     map[string]*entryPoint
	wg      sync.WaitGroup // Serve's HTTP servers
	loops   sync.WaitGroup // Serve's accept loops
	conns   connSet        // connections being routed or proxied over TCP
	// closing is set once Shutdown has begun: the listeners' errors are
	// expected.
	closing atomic.Bool
	// start orders Serve's start of its goroutines before Shutdown's wait
	// for them; stopped, set by Shutdown, makes a later Serve start none.
	start   sync.Mutex
	stopped bool
}

// Listen binds every entry point's address, so that a port in use fails
// at once, and returns the servers ready to Serve.
func Listen(cfg ServersConfig) (*Servers, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	files, err := loadFileCerts(cfg.Config.TLS)
	if err != nil {
		return nil, err
	}
	def, err := defaultCertificate(cfg.Config.TLS)
	if err != nil {
		return nil, err
	}
	s := &Servers{log: log, servers: map[string]*http.Server{}, lns: map[string]net.Listener{}, eps: map[string]*entryPoint{}}
	s.conns.init()
	for name, ep := range cfg.Config.EntryPoints {
		ln, err := net.Listen("tcp", ep.Address)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("entry point %s: %w", name, err)
		}
		if ln, err = withProxyProtocol(ln, name, ep, cfg.Metrics, log); err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("entry point %s: %w", name, err)
		}
		s.lns[name] = ln
		h := cfg.Router.Handler(name)
		if extra := cfg.Extra[name]; extra != nil {
			h = withExtra(extra, h)
		}
		if cfg.Challenges != nil {
			h = withChallenges(cfg.Challenges, h)
		}
		srv := newServer(ep, h, log)
		srv.ConnState = connState(name, cfg.Metrics)
		if ep.HTTP != nil && ep.HTTP.TLS != nil {
			tc, err := entryPointTLS(cfg, name, ep.HTTP.TLS.Options, files, def)
			if err != nil {
				s.closeListeners()
				return nil, fmt.Errorf("entry point %s: %w", name, err)
			}
			srv.TLSConfig = tc
		}
		if err := s.listenHTTP3(cfg, name, ep, srv, h); err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("entry point %s: %w", name, err)
		}
		s.servers[name] = srv
		e, err := newEntryPoint(cfg, log, name, srv, ln, files, def, &s.conns)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("entry point %s: %w", name, err)
		}
		s.eps[name] = e
	}
	return s, nil
}

// withExtra serves what extra handles (it answers 404 for the rest by
// setting no status: it returns false) before routing.
func withExtra(extra, next http.Handler) http.Handler {
	type claimer interface {
		Claims(*http.Request) bool
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := extra.(claimer); ok && !c.Claims(r) {
			next.ServeHTTP(w, r)
			return
		}
		extra.ServeHTTP(w, r)
	})
}

func newServer(ep *config.EntryPoint, h http.Handler, log *slog.Logger) *http.Server {
	var rt config.RespondingTimeouts
	maxHeader := 1 << 20
	if tr := ep.Transport; tr != nil {
		if tr.RespondingTimeouts != nil {
			rt = *tr.RespondingTimeouts
		}
		maxHeader = cmp.Or(tr.MaxHeaderBytes, maxHeader)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(rt.ReadHeaderTimeout.Std(), 10*time.Second),
		ReadTimeout:       cmp.Or(rt.ReadTimeout.Std(), 60*time.Second),
		WriteTimeout:      rt.WriteTimeout.Std(),
		IdleTimeout:       cmp.Or(rt.IdleTimeout.Std(), 180*time.Second),
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// entryPointTLS builds the TLS settings of an entry point, and switches
// to the TLS options a router names for the handshake's server name. The
// option sets are built at start; which router names which follows
// reloads, and so do the provided certificates, asked first (see the
// package documentation for the order).
func entryPointTLS(cfg ServersConfig, entryPoint, epOptions string, files *certIndex, def *tls.Certificate) (*tls.Config, error) {
	var count func(tls.ConnectionState) error
	if m := cfg.Metrics; m != nil {
		done := m.handshakes.WithLabelValues(entryPoint)
		count = func(tls.ConnectionState) error { done.Inc(); return nil }
	}
	certs := certsOf(cfg, files)
	base, err := tlsConfig(cfg.Config.TLS, epOptions, certs, def)
	if err != nil {
		return nil, err
	}
	base.VerifyConnection = count
	byName := map[string]*tls.Config{}
	if t := cfg.Config.TLS; t != nil {
		for name := range t.Options {
			c, err := tlsConfig(t, name, certs, def)
			if err != nil {
				return nil, fmt.Errorf("TLS options %s: %w", name, err)
			}
			c.VerifyConnection = count
			byName[name] = c
		}
	}
	rt := cfg.Router
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if cfg.Challenges != nil && slices.Contains(hello.SupportedProtos, ACMETLSProto) {
			return challengeTLS(cfg.Challenges, hello)
		}
		if name := rt.tlsOptionsFor(entryPoint, hello.ServerName); name != "" && name != epOptions {
			if c := byName[name]; c != nil {
				return c, nil
			}
		}
		return nil, nil
	}
	return base, nil
}

// certsOf returns the certificate sources of the entry points, in the
// order the package documentation gives.
func certsOf(cfg ServersConfig, files *certIndex) certChain {
	certs := certChain{providedCerts{cfg.Router}}
	if cfg.Certs != nil {
		certs = append(certs, cfg.Certs)
	}
	return append(certs, files)
}

// certChain asks its sources in order; the first that answers with a
// certificate or an error decides the handshake.
type certChain []CertSource

// tlsConfig builds the TLS settings of an entry point: TLS 1.2 at least,
// certificates from certs, then the default one. With sniStrict a
// handshake without a server name, or for a name no certificate covers,
// is refused instead of getting the default certificate.
func tlsConfig(t *config.TLS, optionsName string, certs certChain, def *tls.Certificate) (*tls.Config, error) {
	var o *config.TLSOptions
	if t != nil && t.Options != nil {
		o = t.Options[cmp.Or(optionsName, "default")]
	}
	strict := o != nil && o.SNIStrict
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if strict && hello.ServerName == "" {
				return nil, errors.New("sniStrict: the client sent no server name")
			}
			for _, src := range certs {
				if c, err := src.GetCertificate(hello); c != nil || err != nil {
					return c, err
				}
			}
			if strict {
				return nil, errors.New("sniStrict: no certificate for the server name")
			}
			return def, nil
		},
	}
	if o == nil {
		return tc, nil
	}
	return tc, applyTLSOptions(tc, o)
}

// defaultCertificate is the certificate of [tls.stores.default]'s
// defaultCertificate, read once at start, or else a self-signed one made
// now.
func defaultCertificate(t *config.TLS) (*tls.Certificate, error) {
	if t != nil && t.Stores["default"] != nil && t.Stores["default"].DefaultCertificate != nil {
		c := t.Stores["default"].DefaultCertificate
		pair, err := config.ReadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.stores.default.defaultCertificate: %w", err)
		}
		return &pair, nil
	}
	return selfSigned()
}

func applyTLSOptions(tc *tls.Config, o *config.TLSOptions) error {
	if err := applyTLSNames(tc, o); err != nil {
		return err
	}
	if ca := o.ClientAuth; ca != nil && len(ca.CAFiles) > 0 {
		pool := x509.NewCertPool()
		for _, f := range ca.CAFiles {
			pem, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("client CA: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("client CA %s: no PEM certificate in it", f)
			}
		}
		tc.ClientCAs = pool
	}
	return nil
}

// applyTLSNames sets what the names of o choose. An unknown name is an
// error: a zero value would silently mean something else (no client
// authentication, an invalid cipher suite).
func applyTLSNames(tc *tls.Config, o *config.TLSOptions) error {
	for _, v := range []struct {
		key, name string
		out       *uint16
	}{{"minVersion", o.MinVersion, &tc.MinVersion}, {"maxVersion", o.MaxVersion, &tc.MaxVersion}} {
		if v.name == "" {
			continue
		}
		n, err := config.TLSVersion(v.name)
		if err != nil {
			return fmt.Errorf("%s: %w", v.key, err)
		}
		*v.out = n
	}
	for _, name := range o.CipherSuites {
		id, err := config.CipherSuite(name)
		if err != nil {
			return err
		}
		tc.CipherSuites = append(tc.CipherSuites, id)
	}
	for _, name := range o.CurvePreferences {
		id, err := config.Curve(name)
		if err != nil {
			return err
		}
		tc.CurvePreferences = append(tc.CurvePreferences, id)
	}
	if ca := o.ClientAuth; ca != nil {
		t, err := config.ClientAuthType(ca.ClientAuthType)
		if err != nil {
			return err
		}
		tc.ClientAuth = t
	}
	return nil
}

// Addr returns the address an entry point listens on, with the port the
// system chose for ":0".
func (s *Servers) Addr(entryPoint string) net.Addr {
	if ln := s.lns[entryPoint]; ln != nil {
		return ln.Addr()
	}
	return nil
}

// Serve serves every entry point until Shutdown, and then returns nil.
// When an entry point stops for another reason (its listener failed),
// Serve returns that error at once, without waiting for the others: they
// serve on until Shutdown, and the caller decides.
func (s *Servers) Serve() error {
	s.start.Lock()
	if s.stopped {
		s.start.Unlock()
		return nil
	}
	errs := make(chan error, 2*len(s.servers)+len(s.h3))
	s.serveHTTP3(errs)
	for name, srv := range s.servers {
		ep := s.eps[name]
		s.wg.Go(func() {
			var err error
			if srv.TLSConfig != nil {
				err = srv.ServeTLS(ep.http, "", "")
			} else {
				err = srv.Serve(ep.http)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("entry point %s: %w", name, err)
				return
			}
			errs <- nil
		})
		s.loops.Go(func() {
			if err := s.accept(ep); err != nil {
				errs <- fmt.Errorf("entry point %s: %w", name, err)
				return
			}
			errs <- nil
		})
	}
	s.start.Unlock()
	for range cap(errs) {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// Shutdown stops accepting connections and waits for requests in flight
// and TCP connections until ctx ends, then closes what is left; it
// returns once every entry point has stopped serving and every
// connection it routed over TCP is closed.
func (s *Servers) Shutdown(ctx context.Context) error {
	s.start.Lock()
	s.stopped = true
	s.start.Unlock()
	s.closing.Store(true)
	for _, ln := range s.lns { // HTTP/3's sockets close in shutdownHTTP3
		ln.Close()
	}
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, srv := range s.servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			// A connection handed to HTTP from now on is closed.
			s.eps[name].http.Close()
		})
	}
	wg.Go(func() {
		if err := s.shutdownHTTP3(ctx); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	wg.Go(func() {
		s.loops.Wait() // nothing new is dispatched
		s.conns.drain(ctx)
	})
	wg.Wait()
	s.wg.Wait() // every entry point's Serve has returned
	return errors.Join(errs...)
}

func (s *Servers) closeListeners() {
	for _, ln := range s.lns {
		ln.Close()
	}
	s.closeHTTP3()
}
