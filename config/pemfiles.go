package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
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
		return fmt.Errorf("CA file %w", readError(err))
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("CA file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return nil
}

// KeyPairError is a key pair ReadKeyPair cannot use; Key says whether the
// key file is at fault (it cannot be read) rather than the certificate
// file or the pair.
type KeyPairError struct {
	Key bool
	Err error
}

func (e *KeyPairError) Error() string { return e.Err.Error() }
func (e *KeyPairError) Unwrap() error { return e.Err }

// ReadKeyPair reads a PEM certificate chain and its private key. Its
// errors, of type *KeyPairError, never include the content of either
// file.
func ReadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if _, err := os.Stat(certFile); err != nil {
		return tls.Certificate{}, &KeyPairError{Err: fmt.Errorf("certificate file %w", readError(err))}
	}
	if _, err := os.Stat(keyFile); err != nil {
		return tls.Certificate{}, &KeyPairError{Key: true, Err: fmt.Errorf("key file %w", readError(err))}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, &KeyPairError{Err: fmt.Errorf("certificate file %s with key file %s: %w", certFile, keyFile, err)}
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
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
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
	pair := func(path []string, cert, key, certName, keyName string) {
		if cert == "" || key == "" {
			return // reported by the other checks
		}
		if _, err := ReadKeyPair(cert, key); err != nil {
			at := certName
			if kp := (*KeyPairError)(nil); errors.As(err, &kp) && kp.Key {
				at = keyName
			}
			v.add(append(slices.Clip(path), at), "%v", err)
		}
	}
	keyPair := func(path []string, c *Certificate) {
		if c != nil {
			pair(path, c.CertFile, c.KeyFile, "certFile", "keyFile")
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
	clientTLS := func(path []string, rootCAs []string, certs []Certificate) {
		caFiles(append(slices.Clip(path), "rootCAs"), rootCAs)
		for i := range certs {
			keyPair(append(slices.Clip(path), "certificates", strconv.Itoa(i)), &certs[i])
		}
	}
	if t := v.cfg.TCP; t != nil {
		for _, name := range sorted(t.ServersTransports) {
			if st := t.ServersTransports[name]; st != nil && st.TLS != nil {
				clientTLS(p("tcp", "serversTransports", name, "tls"), st.TLS.RootCAs, st.TLS.Certificates)
			}
		}
	}
	h := v.cfg.HTTP
	if h == nil {
		return
	}
	for _, name := range sorted(h.ServersTransports) {
		if st := h.ServersTransports[name]; st != nil {
			clientTLS(p("http", "serversTransports", name), st.RootCAs, st.Certificates)
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
		pair(at, t.Cert, t.Key, "cert", "key")
	}
}

// fileNames reports values of file-name settings (the fields tagged
// `file:"true"`) that hold something other than a file name: PEM content
// pasted in, as Traefik accepts for some of them, would otherwise be
// stored and shown as a name. The value is never quoted: it may be a
// private key.
func (v *validator) fileNames() {
	var walk func(path []string, rv reflect.Value)
	walk = func(path []string, rv reflect.Value) {
		switch rv.Kind() {
		case reflect.Pointer:
			if !rv.IsNil() {
				walk(path, rv.Elem())
			}
		case reflect.Map:
			for _, k := range rv.MapKeys() {
				if k.Kind() == reflect.String {
					walk(append(slices.Clip(path), k.String()), rv.MapIndex(k))
				}
			}
		case reflect.Slice:
			for i := range rv.Len() {
				walk(append(slices.Clip(path), strconv.Itoa(i)), rv.Index(i))
			}
		case reflect.Struct:
			if rv.Type() == durationType {
				return
			}
			for _, f := range fieldsOf(rv.Type()) {
				fv := rv.Field(f.index)
				at := append(slices.Clip(path), f.name)
				if rv.Type().Field(f.index).Tag.Get("file") != "true" {
					walk(at, fv)
					continue
				}
				switch fv.Kind() {
				case reflect.String:
					v.check(at, checkFileName(fv.String()))
				case reflect.Slice:
					for i := range fv.Len() {
						v.check(append(slices.Clip(at), strconv.Itoa(i)), checkFileName(fv.Index(i).String()))
					}
				}
			}
		}
	}
	walk(nil, reflect.ValueOf(v.cfg).Elem())
}

// checkFileName accepts a file name: no PEM content, no line breaks, no
// NUL.
func checkFileName(name string) error {
	switch {
	case strings.Contains(name, "-----BEGIN"):
		return errors.New("this holds PEM content, not a file name (the content is not shown): write it to a file and give the file's path here")
	case strings.ContainsAny(name, "\r\n\x00"):
		return errors.New("this is not a file name: it contains a line break or NUL (the value is not shown); give the file's path")
	}
	return nil
}
