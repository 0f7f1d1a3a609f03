package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
)

// ReadCertPool reads PEM CA certificates from files into one pool. Each
// file must hold at least one certificate.
func ReadCertPool(files []string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, f := range files {
		if err := appendCAFile(pool, f); err != nil {
			return nil, err
		}
	}
	return pool, nil
}

func appendCAFile(pool *x509.CertPool, file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("CA file: %w", readError(err))
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("CA file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return nil
}

// ReadKeyPair reads a PEM certificate chain and its private key. Its
// errors never include the content of either file.
func ReadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); err != nil {
			return tls.Certificate{}, fmt.Errorf("certificate: %w", readError(err))
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return pair, nil
}

// readError shortens an error of reading a named file: the path is part
// of *fs.PathError.
func readError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist", pe.Path)
	}
	return err
}

// files reads the files the configuration names, as the replica that
// applies it will, and reports those that cannot be used at the key that
// names them.
func (v *validator) files() {
	caFiles := func(path []string, files []string) {
		for i, f := range files {
			if f == "" {
				continue // reported by the other checks
			}
			if err := appendCAFile(x509.NewCertPool(), f); err != nil {
				v.add(append(slices.Clip(path), strconv.Itoa(i)), "%v", err)
			}
		}
	}
	keyPair := func(path []string, c *Certificate) {
		if c == nil || c.CertFile == "" || c.KeyFile == "" {
			return
		}
		if _, err := ReadKeyPair(c.CertFile, c.KeyFile); err != nil {
			v.add(append(slices.Clip(path), "certFile"), "%v", err)
		}
	}
	if t := v.cfg.TLS; t != nil {
		for i := range t.Certificates {
			keyPair(p("tls", "certificates", strconv.Itoa(i)), &t.Certificates[i])
		}
		for _, name := range sorted(t.Options) {
			if o := t.Options[name]; o != nil && o.ClientAuth != nil {
				caFiles(p("tls", "options", name, "clientAuth", "caFiles"), o.ClientAuth.CAFiles)
			}
		}
		for _, name := range sorted(t.Stores) {
			if s := t.Stores[name]; s != nil {
				keyPair(p("tls", "stores", name, "defaultCertificate"), s.DefaultCertificate)
			}
		}
	}
	h := v.cfg.HTTP
	if h == nil {
		return
	}
	for _, name := range sorted(h.ServersTransports) {
		st := h.ServersTransports[name]
		if st == nil {
			continue
		}
		caFiles(p("http", "serversTransports", name, "rootCAs"), st.RootCAs)
		for i := range st.Certificates {
			keyPair(p("http", "serversTransports", name, "certificates", strconv.Itoa(i)), &st.Certificates[i])
		}
	}
	for _, name := range sorted(h.Middlewares) {
		m := h.Middlewares[name]
		if m == nil || m.ForwardAuth == nil || m.ForwardAuth.TLS == nil {
			continue
		}
		t := m.ForwardAuth.TLS
		at := p("http", "middlewares", name, "forwardAuth", "tls")
		if t.CA != "" {
			if err := appendCAFile(x509.NewCertPool(), t.CA); err != nil {
				v.add(append(slices.Clip(at), "ca"), "%v", err)
			}
		}
		if t.Cert != "" && t.Key != "" {
			if _, err := ReadKeyPair(t.Cert, t.Key); err != nil {
				v.add(append(slices.Clip(at), "cert"), "%v", err)
			}
		}
	}
}
