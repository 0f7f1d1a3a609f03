package router

import (
	"crypto/tls"
	"encoding/hex"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// certsNotAfterHelp is tollgate_tls_certs_not_after's help. The acme
// package reports the same metric with source="acme": a registry takes
// the two collectors only with the same help and label names, and
// different constant labels.
const certsNotAfterHelp = "Expiry (NotAfter, Unix seconds) of each certificate served, by source (acme: held from the ACME store; provided: from a provider, such as a Kubernetes TLS Secret), one series per certificate: a renewal replaces its series."

// providedCollector reports the provided certificates of the generation
// in force at scrape time: those that serve at least one name.
type providedCollector struct {
	desc *prometheus.Desc
	rt   atomic.Pointer[Router]
}

func newProvidedCollector() *providedCollector {
	return &providedCollector{desc: prometheus.NewDesc("tollgate_tls_certs_not_after", certsNotAfterHelp,
		[]string{"cn", "sans", "serial"}, prometheus.Labels{"source": "provided"})}
}

func (p *providedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p *providedCollector) Collect(ch chan<- prometheus.Metric) {
	rt := p.rt.Load()
	if rt == nil {
		return
	}
	g := rt.current.Load()
	if g == nil || g.provided == nil {
		return
	}
	// The same leaf in two pairs (another chain) is one series: a
	// duplicate would fail the whole scrape.
	type series struct{ cn, sans, serial string }
	seen := map[series]bool{}
	for _, c := range g.provided.certs() {
		leaf := c.Leaf
		if leaf == nil {
			continue
		}
		sans := slices.Clone(leaf.DNSNames)
		slices.Sort(sans)
		k := series{leaf.Subject.CommonName, strings.Join(sans, ","), hex.EncodeToString(leaf.SerialNumber.Bytes())}
		if seen[k] {
			continue
		}
		seen[k] = true
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), k.cn, k.sans, k.serial)
	}
}

// certs lists the certificates of the index, each once.
func (ix *certIndex) certs() []*tls.Certificate {
	var out []*tls.Certificate
	seen := map[*tls.Certificate]bool{}
	add := func(c *tls.Certificate) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, c := range ix.exact {
		add(c)
	}
	for _, c := range ix.wildcard {
		add(c)
	}
	for _, c := range ix.ip {
		add(c)
	}
	return out
}
