package migrate

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// transportName is the servers transport made of Traefik 1.x's global
// settings for the connections to servers.
const transportName = "default-v1"

// transportState is Traefik 1.x's one pool of connections to servers, as
// its global settings configured it: insecureSkipVerify, rootCAs,
// maxIdleConnsPerHost and [forwardingTimeouts].
type transportState struct {
	st  config.ServersTransport
	src []string // the first key read, for the report and errors
	// all is set when a setting concerns plain-HTTP servers too (timeouts,
	// idle connections): every loadBalancer then names the transport,
	// else only those with an https server.
	all bool
	// used is set once a loadBalancer names it.
	used bool
}

// serversTransport reads the global settings of the connections to
// servers. Traefik 1.x had one pool for every backend; tollgate's
// loadBalancers name a servers transport, so the services made of
// backends name the one made here (see useTransport).
func (c *converter) serversTransport(root *node) {
	t := &transportState{}
	set := false
	mark := func(key string) {
		if !set {
			t.src = root.where(key)
		}
		set = true
	}
	cas, casSet := c.rootCAs(root)
	if casSet {
		mark("rootCAs")
		t.st.RootCAs = cas
	}
	if b, ok := c.flag(root, "insecureSkipVerify"); ok {
		at := root.where("insecureSkipVerify")
		switch {
		case !b:
			c.add(at, Converted, "false: servers' certificates are verified, as by default in tollgate", "")
		case casSet:
			c.add(at, Changed, "ignored, as by Traefik 1.x, since rootCAs is set: servers' certificates are verified against rootCAs", "remove it")
		default:
			mark("insecureSkipVerify")
			t.st.InsecureSkipVerify = true
			c.add(at, Converted, fmt.Sprintf("servers transport %q: insecureSkipVerify = true, servers' certificates are not verified, as in Traefik 1.x", transportName),
				"give the servers certificates tollgate can verify (rootCAs) and remove it")
		}
	}
	if n, ok := c.number(root, "maxIdleConnsPerHost"); ok {
		mark("maxIdleConnsPerHost")
		t.all = true
		at := root.where("maxIdleConnsPerHost")
		switch {
		case n < 0:
			t.st.MaxIdleConnsPerHost = -1
			c.add(at, Converted, fmt.Sprintf("servers transport %q: maxIdleConnsPerHost = -1, no idle connection is kept, as with %d in Traefik 1.x", transportName, n), "")
		case n == 0:
			// Go's http.Transport reads 0 as its default of 2.
			t.st.MaxIdleConnsPerHost = 2
			c.add(at, Changed, fmt.Sprintf("servers transport %q: maxIdleConnsPerHost = 2, what 0 meant in Traefik 1.x (Go's default); tollgate reads 0 as 256", transportName), "")
		default:
			t.st.MaxIdleConnsPerHost = int(min(n, 1<<31-1))
			c.add(at, Converted, fmt.Sprintf("servers transport %q: maxIdleConnsPerHost = %d", transportName, t.st.MaxIdleConnsPerHost), "")
		}
	}
	if fn, ok := root.table("forwardingTimeouts"); ok {
		if ft := c.forwardingTimeouts(fn); ft != nil {
			mark("forwardingTimeouts")
			t.all = true
			t.st.ForwardingTimeouts = ft
		}
	}
	if set {
		c.transport = t
	}
}

// rootCAs reads rootCAs: an array, or a comma-separated string as its
// flag gave it. Traefik 1.x also took a CA's PEM content in place of a
// file name; such an entry is reported, not copied.
func (c *converter) rootCAs(root *node) ([]string, bool) {
	v, path, ok := root.get("rootCAs")
	if !ok {
		return nil, false
	}
	var vals []string
	switch x := v.(type) {
	case string:
		for s := range strings.SplitSeq(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				vals = append(vals, s)
			}
		}
	case []any:
		for i, e := range x {
			s, isStr := e.(string)
			if !isStr {
				c.wrongType(append(slices.Clip(path), indexSeg(i)), "a string", e)
				return nil, false
			}
			vals = append(vals, s)
		}
	default:
		c.wrongType(path, "an array of file names", v)
		return nil, false
	}
	var files []string
	inline := 0
	for _, s := range vals {
		if strings.Contains(s, "-----BEGIN") {
			inline++
			continue
		}
		files = append(files, s)
	}
	if inline > 0 {
		c.add(path, Action, fmt.Sprintf("%d of rootCAs hold PEM content rather than a file name: they are not copied into the configuration", inline),
			fmt.Sprintf("write each to a file and add its name to rootCAs of [http.serversTransports.%s]", transportName))
	}
	if len(files) == 0 {
		if inline == 0 {
			c.add(path, Converted, "empty: servers' certificates are verified against the system's roots, as by default in tollgate", "")
		}
		return nil, false
	}
	c.add(path, Converted, fmt.Sprintf("servers transport %q: servers' certificates are verified against %s alone, as in Traefik 1.x", transportName, strings.Join(files, ", ")), "")
	return files, true
}

// forwardingTimeouts converts [forwardingTimeouts] dialTimeout and
// responseHeaderTimeout; nil when neither changes tollgate's defaults.
func (c *converter) forwardingTimeouts(fn *node) *config.ForwardingTimeouts {
	ft := &config.ForwardingTimeouts{}
	set := false
	if d, ok := fn.duration("dialTimeout"); ok {
		at := fn.where("dialTimeout")
		switch {
		case d == 0:
			c.add(at, Changed, "0 (no limit) cannot be written: tollgate's default dialTimeout of 30s applies", "")
		case d == 30*time.Second:
			c.add(at, Converted, "30s, Traefik's and tollgate's default", "")
		default:
			ft.DialTimeout, set = config.Duration(d), true
			c.add(at, Converted, fmt.Sprintf("servers transport %q: forwardingTimeouts.dialTimeout = %s", transportName, d), "")
		}
	}
	if d, ok := fn.duration("responseHeaderTimeout"); ok {
		at := fn.where("responseHeaderTimeout")
		if d == 0 {
			c.add(at, Converted, "0: no limit, as by default in tollgate", "")
		} else {
			ft.ResponseHeaderTimeout, set = config.Duration(d), true
			c.add(at, Converted, fmt.Sprintf("servers transport %q: forwardingTimeouts.responseHeaderTimeout = %s", transportName, d), "")
		}
	}
	if !set {
		return nil
	}
	return ft
}

// flag reads a boolean that the command line may have given as a string.
func (c *converter) flag(n *node, name string) (bool, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return false, false
	}
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b, true
		}
	}
	c.wrongType(path, "true or false", v)
	return false, false
}

// number reads an integer that the command line may have given as a
// string.
func (c *converter) number(n *node, name string) (int64, bool) {
	v, path, ok := n.get(name)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case int64:
		return x, true
	case string:
		if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return i, true
		}
	}
	c.wrongType(path, "an integer", v)
	return 0, false
}

// useTransport makes lb name the servers transport of Traefik 1.x's
// global settings when they concern its servers.
func (c *converter) useTransport(lb *config.LoadBalancer) {
	t := c.transport
	if t == nil || !t.all && !slices.ContainsFunc(lb.Servers, isHTTPS) {
		return
	}
	lb.ServersTransport = transportName
	if t.used {
		return
	}
	t.used = true
	if c.cfg.HTTP == nil {
		c.cfg.HTTP = &config.HTTP{}
	}
	if c.cfg.HTTP.ServersTransports == nil {
		c.cfg.HTTP.ServersTransports = map[string]*config.ServersTransport{}
	}
	st := t.st
	c.cfg.HTTP.ServersTransports[transportName] = &st
	key := "http.serversTransports." + dn(transportName)
	c.origin(key, t.src)
	c.comment(key, "Traefik 1.x's global settings of the connections to servers")
}

func isHTTPS(s config.Server) bool {
	u, err := url.Parse(s.URL)
	return err == nil && strings.EqualFold(u.Scheme, "https")
}

// transportReport says, once the backends are converted, where the
// settings of the connections to servers do not apply.
func (c *converter) transportReport() {
	t := c.transport
	if t == nil {
		return
	}
	if !t.used {
		which := "backend"
		if !t.all {
			which = "backend with an https server"
		}
		c.add(t.src, Converted, fmt.Sprintf("servers transport %q is not written: no converted %s needs it", transportName, which), "")
	}
	if c.kube != nil {
		c.add(t.src, Changed, "the services of Kubernetes Ingresses use tollgate's default connections to servers: these settings applied to them in Traefik 1.x", "")
	}
}

// dropTransport removes the servers transport and its uses, for a problem
// tollgate's validation found in it: the services are kept, with
// tollgate's default connections to servers.
func (c *converter) dropTransport(why string) {
	h := c.cfg.HTTP
	key := "http.serversTransports." + dn(transportName)
	c.add(c.origins[key], Unsupported, fmt.Sprintf("servers transport %q was left out: %s; the services use tollgate's default connections to servers", transportName, why),
		"fix the source and convert again")
	delete(h.ServersTransports, transportName)
	if len(h.ServersTransports) == 0 {
		h.ServersTransports = nil
	}
	for _, s := range h.Services {
		if s.LoadBalancer != nil && s.LoadBalancer.ServersTransport == transportName {
			s.LoadBalancer.ServersTransport = ""
		}
	}
}
