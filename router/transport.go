package router

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"slices"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// Transports of [http.serversTransports.NAME]
//
// A loadBalancer that names a serversTransport reaches its servers, and
// its health checks reach them, through connection pools built from it:
// one for http and https servers, one for h2c servers. The pools live on
// the Router across reloads, keyed by a hash of the settings and of the
// content of the files they name (CAs, client certificates and keys), so
// that a reload that changes neither keeps every backend connection open;
// a change of either builds new pools, and those no Apply uses any more
// have their idle connections closed (a request in flight on them
// finishes; its connection is closed when it has been idle for
// idleConnTimeout). A serversTransport with proxyProtocol keeps, inside
// each of its two pools, one pool per client connection (proxyout.go).

// poolKey identifies a serversTransport by its settings and files.
type poolKey [sha256.Size]byte

// Defaults of a serversTransport, as config.ServersTransport documents
// them.
const (
	defaultDialTimeout     = 30 * time.Second
	defaultIdleConnTimeout = 90 * time.Second
	defaultMaxIdlePerHost  = 256
)

// transportKey hashes st and the content of the files it names. It reads
// the files; an error names the file and never quotes its content.
func transportKey(st *config.ServersTransport) (poolKey, error) {
	h := sha256.New()
	settings, err := json.Marshal(st)
	if err != nil {
		return poolKey{}, err
	}
	write := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	write(settings)
	files := slices.Clone(st.RootCAs)
	for _, c := range st.Certificates {
		files = append(files, c.CertFile, c.KeyFile)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return poolKey{}, err
		}
		write(b)
	}
	var k poolKey
	h.Sum(k[:0])
	return k, nil
}

// newTransportsFor builds the pools of st, reading its files.
func newTransportsFor(st *config.ServersTransport, buffers httputil.BufferPool) (transports, error) {
	tc := &tls.Config{ServerName: st.ServerName, InsecureSkipVerify: st.InsecureSkipVerify} // InsecureSkipVerify is the operator's explicit choice
	if len(st.RootCAs) > 0 {
		pool, err := config.ReadCertPool(st.RootCAs)
		if err != nil {
			return transports{}, err
		}
		tc.RootCAs = pool
	}
	for _, c := range st.Certificates {
		pair, err := config.ReadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return transports{}, err
		}
		tc.Certificates = append(tc.Certificates, pair)
	}
	var ft config.ForwardingTimeouts
	if st.ForwardingTimeouts != nil {
		ft = *st.ForwardingTimeouts
	}
	dialer := &net.Dialer{Timeout: cmp.Or(ft.DialTimeout.Std(), defaultDialTimeout), KeepAlive: 30 * time.Second}
	type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)
	base := func(dial dialFunc) *http.Transport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = dial
		t.MaxIdleConnsPerHost = cmp.Or(st.MaxIdleConnsPerHost, defaultMaxIdlePerHost)
		t.IdleConnTimeout = cmp.Or(ft.IdleConnTimeout.Std(), defaultIdleConnTimeout)
		t.ResponseHeaderTimeout = ft.ResponseHeaderTimeout.Std()
		t.HTTP2 = &http.HTTP2Config{SendPingTimeout: ft.ReadIdleTimeout.Std(), PingTimeout: ft.PingTimeout.Std()}
		t.Protocols = new(http.Protocols)
		return t
	}
	std := func(dial dialFunc) *http.Transport {
		t := base(dial)
		t.TLSClientConfig = tc
		t.Protocols.SetHTTP1(true)
		// A TLSClientConfig of its own turns HTTP/2 off unless it is
		// asked for: ask, unless disableHTTP2.
		t.Protocols.SetHTTP2(!st.DisableHTTP2)
		return t
	}
	h2c := func(dial dialFunc) *http.Transport {
		t := base(dial)
		t.Protocols.SetUnencryptedHTTP2(true)
		return t
	}
	if pp := st.ProxyProtocol; pp != nil {
		// One pool per client connection: see proxyout.go.
		version := cmp.Or(pp.Version, 2)
		return transports{
			std:     newClientPools(version, dialer.DialContext, std),
			h2c:     newClientPools(version, dialer.DialContext, h2c),
			buffers: buffers,
		}, nil
	}
	return transports{std: std(dialer.DialContext), h2c: h2c(dialer.DialContext), buffers: buffers}, nil
}

// closeIdle closes the idle connections of both pools.
func (t transports) closeIdle() {
	for _, rt := range []http.RoundTripper{t.std, t.h2c} {
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// namedTransports returns the pools of every serversTransport of h by
// name, and by key the pools the generation uses, which the Router keeps
// once the generation is swapped in. It reuses the Router's pools whose
// key is unchanged and builds the others; on error it closes those it
// built. The caller holds rt.mu.
func (rt *Router) namedTransports(h *config.HTTP) (map[string]transports, map[poolKey]transports, error) {
	byName := make(map[string]transports, len(h.ServersTransports))
	byKey := map[poolKey]transports{}
	var built []transports
	fail := func(err error) (map[string]transports, map[poolKey]transports, error) {
		for _, t := range built {
			t.closeIdle()
		}
		return nil, nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(h.ServersTransports)) {
		st := h.ServersTransports[name]
		if st == nil {
			return fail(fmt.Errorf("serversTransport %s is nil", name))
		}
		k, err := transportKey(st)
		if err != nil {
			return fail(fmt.Errorf("serversTransport %s: %w", name, err))
		}
		t, ok := byKey[k]
		if !ok {
			if t, ok = rt.pools[k]; !ok {
				if t, err = newTransportsFor(st, rt.tr.buffers); err != nil {
					return fail(fmt.Errorf("serversTransport %s: %w", name, err))
				}
				built = append(built, t)
			}
			byKey[k] = t
		}
		byName[name] = t
	}
	return byName, byKey, nil
}

// keepPools makes pools the Router's, and closes the idle connections of
// those it had that pools lacks. The caller holds rt.mu.
func (rt *Router) keepPools(pools map[poolKey]transports) {
	for k, t := range rt.pools {
		if _, ok := pools[k]; !ok {
			t.closeIdle()
		}
	}
	rt.pools = pools
}

// dropNewPools closes the idle connections of the pools of a failed
// Apply that the Router does not keep. The caller holds rt.mu.
func (rt *Router) dropNewPools(pools map[poolKey]transports) {
	for k, t := range pools {
		if _, ok := rt.pools[k]; !ok {
			t.closeIdle()
		}
	}
}
