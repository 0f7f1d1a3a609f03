package router

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// serversCollector reports tollgate_service_server_up for the servers of
// the generation in force at scrape time, so that a server a reload
// removes has no series left.
type serversCollector struct {
	desc *prometheus.Desc
	rt   atomic.Pointer[Router]
}

func newServersCollector() *serversCollector {
	return &serversCollector{desc: prometheus.NewDesc("tollgate_service_server_up",
		"1 while a server of a service is up: its active health check, if any, passes and passive health checking has not ejected it; 0 otherwise. One series per server of the configuration in force; the URL is shown without userinfo.",
		[]string{"service", "url"}, nil)}
}

func (c *serversCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *serversCollector) Collect(ch chan<- prometheus.Metric) {
	rt := c.rt.Load()
	if rt == nil {
		return
	}
	g := rt.current.Load()
	if g == nil {
		return
	}
	now := time.Now()
	// A URL listed twice in one service is one series, up only when both
	// are: a duplicate would fail the whole scrape.
	type series struct{ service, url string }
	up := map[series]bool{}
	for name, s := range g.services {
		for _, b := range s.lb.backends {
			k := series{name, b.target.shown}
			was, seen := up[k]
			up[k] = b.up(now) && (was || !seen)
		}
	}
	for k, ok := range up {
		v := 0.0
		if ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, k.service, k.url)
	}
}
