package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// serversTransports checks [http.serversTransports.NAME]. Files are read
// only by files(), with LoadOptions.ReadFiles.
func (v *validator) serversTransports() {
	h := v.cfg.HTTP
	if h == nil {
		return
	}
	v.names(p("http", "serversTransports"), v.transportNames)
	for _, name := range v.transportNames {
		v.serversTransport(p("http", "serversTransports", name), h.ServersTransports[name])
	}
}

func (v *validator) serversTransport(path []string, st *ServersTransport) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	v.clientTLS(path, st.ServerName, st.InsecureSkipVerify, st.RootCAs, st.Certificates)
	if st.MaxIdleConnsPerHost < -1 {
		v.add(at("maxIdleConnsPerHost"), "maxIdleConnsPerHost %d is out of range: use 0 (meaning 256), -1 (keep no idle connection) or a positive number", st.MaxIdleConnsPerHost)
	}
	if ft := st.ForwardingTimeouts; ft != nil {
		v.nonNegative(at("forwardingTimeouts", "dialTimeout"), ft.DialTimeout)
		v.nonNegative(at("forwardingTimeouts", "responseHeaderTimeout"), ft.ResponseHeaderTimeout)
		v.nonNegative(at("forwardingTimeouts", "idleConnTimeout"), ft.IdleConnTimeout)
		v.nonNegative(at("forwardingTimeouts", "readIdleTimeout"), ft.ReadIdleTimeout)
		v.nonNegative(at("forwardingTimeouts", "pingTimeout"), ft.PingTimeout)
	}
}

// clientTLS checks the TLS settings of connections to servers, in HTTP
// and TCP serversTransports alike, whose keys are under path.
func (v *validator) clientTLS(path []string, serverName string, insecure bool, rootCAs []string, certs []Certificate) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if serverName != "" {
		v.check(at("serverName"), checkServerName(serverName))
	}
	if insecure && len(rootCAs) > 0 {
		v.add(at("rootCAs"), "rootCAs are not used with insecureSkipVerify; keep one")
	}
	for i, f := range rootCAs {
		if f == "" {
			v.add(at("rootCAs", fmt.Sprint(i)), "empty file name; name a PEM file of CA certificates")
		}
	}
	for i := range certs {
		v.certificateFiles(at("certificates", fmt.Sprint(i)), &certs[i])
	}
}

// certificateFiles checks that a key pair names both of its files.
func (v *validator) certificateFiles(path []string, c *Certificate) {
	if c.CertFile == "" {
		v.add(append(slices.Clip(path), "certFile"), "certFile is required: a PEM certificate chain")
	}
	if c.KeyFile == "" {
		v.add(append(slices.Clip(path), "keyFile"), "keyFile is required: the PEM private key of certFile")
	}
}

// checkServerName accepts an IP address or a host name: labels of
// letters, digits and "-", one label allowed (a name a resolver search
// list completes, such as a Kubernetes Service's).
func checkServerName(name string) error {
	if _, err := netip.ParseAddr(name); err == nil {
		return nil
	}
	if len(name) > 253 || strings.HasPrefix(name, "*") {
		return fmt.Errorf("serverName %q is not a host name: write the name the servers' certificates carry, such as backend.internal", truncate(name, 80))
	}
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if err := checkLabel(name, l); err != nil {
			return fmt.Errorf("serverName: %w", err)
		}
	}
	return nil
}

// tlsStores checks [tls.stores]: only the default store exists.
func (v *validator) tlsStores() {
	t := v.cfg.TLS
	if t == nil {
		return
	}
	for _, name := range sorted(t.Stores) {
		path := p("tls", "stores", name)
		if name != "default" {
			v.add(path, "only the store \"default\" exists; write [tls.stores.default]")
			continue
		}
		if c := t.Stores[name].DefaultCertificate; c != nil {
			v.certificateFiles(append(path, "defaultCertificate"), c)
		}
	}
}
