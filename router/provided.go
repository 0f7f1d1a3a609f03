package router

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tollgate-proxy/tollgate/config"
)

// ParseKeyPair parses a key pair a provider supplies as the router does
// before serving it, and is the one rule for which pairs it serves: the
// chain must be PEM with the leaf first, the key the leaf's PEM private
// key (PKCS #1, PKCS #8 or SEC 1), and the leaf must name at least one DNS
// name or IP address in its subject alternative names (the common name is
// not used). A provider calls it before handing a pair over, to report a
// bad one where its owner looks; Apply leaves out and logs a pair that
// fails it and serves the others. Expiry is not checked: a pair is served
// as given.
//
// The error names kp.Source and says what is wrong; it quotes nothing of
// the key.
func ParseKeyPair(kp config.KeyPair) (*tls.Certificate, error) {
	c, _, err := parseKeyPair(kp.Cert, kp.Key)
	if err != nil {
		return nil, fmt.Errorf("provided certificate %s: %w", sourceName(kp.Source), err)
	}
	return c, nil
}

// parseKeyPair is ParseKeyPair without the source in the error; it also
// returns the keys the pair is indexed under.
func parseKeyPair(certPEM, keyPEM []byte) (*tls.Certificate, certKeys, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's errors say which input is wrong and how, and
		// quote neither.
		return nil, certKeys{}, fmt.Errorf("%w; the certificate must be a PEM chain, leaf first, and the key the leaf's PEM private key", err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, certKeys{}, fmt.Errorf("leaf certificate: %w", err)
		}
	}
	k := keysOf(c.Leaf)
	if k.empty() {
		return nil, certKeys{}, errors.New("the leaf certificate names no DNS name or IP address in its subject alternative names, so it serves no handshake (its common name is not used): issue it with the host names as DNS SANs")
	}
	return &c, k, nil
}

// sourceName names a pair's source in errors and logs.
func sourceName(source string) string {
	if source == "" {
		return "(no source given)"
	}
	return source
}

// parsedPair is a provided key pair as parseKeyPair left it. It is never
// modified once made.
type parsedPair struct {
	cert *tls.Certificate
	keys certKeys
	err  error // why it is not served; it names no source
}

// pairSum identifies a pair by its content: the length of the chain, the
// chain and the key, so that no two different pairs hash the same bytes.
// The source is left out: it changes nothing of what is served.
func pairSum(kp config.KeyPair) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(kp.Cert)))
	h.Write(n[:])
	h.Write(kp.Cert)
	h.Write(kp.Key)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// warning is a pair that cannot be served, logged once for as long as it
// stays provided.
type warning struct {
	sum    [sha256.Size]byte
	source string
}

// indexProvided builds the index of the provided key pairs. It parses
// only the pairs the last Apply did not have: a rebuild follows every
// endpoint change, and parsing a thousand unchanged pairs each time would
// cost far more than the rest of it. A pair that fails ParseKeyPair is
// left out and logged, without its key, the first time it is provided
// (again the first time after it was gone); the others are served. The
// caller holds rt.mu.
func (rt *Router) indexProvided(pairs []config.KeyPair) *certIndex {
	ix := newCertIndex()
	parsed := make(map[[sha256.Size]byte]*parsedPair, len(pairs))
	warned := map[warning]bool{}
	for i, kp := range pairs {
		sum := pairSum(kp)
		p := parsed[sum]
		if p == nil {
			if p = rt.parsed[sum]; p == nil {
				p = &parsedPair{}
				p.cert, p.keys, p.err = parseKeyPair(kp.Cert, kp.Key)
			}
			parsed[sum] = p
		}
		if p.err != nil {
			w := warning{sum, kp.Source}
			if !rt.warned[w] && !warned[w] {
				rt.log.Warn("provided certificate not served; the others are", "source", sourceName(kp.Source), "index", i, "err", p.err)
			}
			warned[w] = true
			continue
		}
		keys := p.keys
		if len(kp.Names) > 0 {
			keys = keys.only(kp.Names)
		}
		ix.add(p.cert, keys)
	}
	rt.parsed, rt.warned = parsed, warned
	return ix
}

// providedCerts serves the provided certificates of the generation in
// force: a handshake sees those of the newest Apply.
type providedCerts struct{ rt *Router }

// GetCertificate implements CertSource.
func (p providedCerts) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	g := p.rt.current.Load()
	if g == nil || g.provided == nil {
		return nil, nil
	}
	return g.provided.GetCertificate(hello)
}
