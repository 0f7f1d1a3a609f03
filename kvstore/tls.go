package kvstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ClientTLS configures TLS from a client to a store's servers; the network
// backends share it, and with it their endpoint URL parameters (TLSParams).
// The zero value is plain TCP.
type ClientTLS struct {
	// Enabled talks TLS. The other fields require it.
	Enabled bool
	// CAFile is a PEM bundle of the CAs that sign the servers'
	// certificates. Empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that verify clients. Both or neither.
	CertFile, KeyFile string
	// ServerName is the name the servers' certificates are checked
	// against. Empty: the endpoint's host.
	ServerName string
	// InsecureSkipVerify disables the check of the servers' certificates.
	// For tests only: anyone on the path can then read credentials and
	// change the store.
	InsecureSkipVerify bool
}

// TLSParams are the endpoint URL parameters SetParam understands.
var TLSParams = []string{"tls", "ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}

// SetParam sets the field an endpoint URL parameter names, reporting
// whether name is one of TLSParams.
func (c *ClientTLS) SetParam(name, value string) (bool, error) {
	var field *string
	switch name {
	case "tls", "insecure_skip_verify":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return true, fmt.Errorf("parameter %s=%q: want true or false", name, value)
		}
		if name == "tls" {
			c.Enabled = b
		} else {
			c.InsecureSkipVerify = b
		}
		return true, nil
	case "ca_file":
		field = &c.CAFile
	case "cert_file":
		field = &c.CertFile
	case "key_file":
		field = &c.KeyFile
	case "server_name":
		field = &c.ServerName
	default:
		return false, nil
	}
	if value == "" {
		return true, fmt.Errorf("parameter %s is empty", name)
	}
	*field = value
	return true, nil
}

// Check reports settings that contradict each other.
func (c ClientTLS) Check() error {
	if !c.Enabled && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" || c.InsecureSkipVerify) {
		return errors.New("ca_file, cert_file, key_file, server_name and insecure_skip_verify need TLS: add tls=true")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("a client certificate needs both cert_file and key_file")
	}
	return nil
}

// Config builds the crypto/tls configuration, reading the files; nil when
// TLS is not enabled.
func (c ClientTLS) Config() (*tls.Config, error) {
	if err := c.Check(); err != nil || !c.Enabled {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify,
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s: %w", c.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
