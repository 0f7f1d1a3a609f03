package migrate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// kubeState is what the Ingress checks need from [kubernetes].
type kubeState struct {
	path []string // of [kubernetes]
	// class is tollgate's ingressClass; v1Class Traefik's ("" for its
	// default, which served Ingresses without a class as well as those
	// of class "traefik").
	class, v1Class string
	// eps are the entry points Ingress routes listen on when an Ingress
	// names none: Traefik 1.x's defaultEntryPoints.
	eps []*entryPoint
	// mws are the middlewares Traefik 1.x applied to every Ingress
	// frontend, from its entry points; tollgate applies only those an
	// Ingress names.
	mws []string
	// passTLSCert is enablePassTLSCert: every Ingress passed the client
	// certificate unless it said otherwise.
	passTLSCert bool
}

// defaultV1IngressClass is the class Traefik 1.x served besides
// Ingresses without one when its ingressClass was empty.
const defaultV1IngressClass = "traefik"

// kubernetes converts [kubernetes], Traefik 1.x's Ingress provider, into
// [providers.kubernetesIngress].
func (c *converter) kubernetes(root *node) {
	kn, ok := root.table("kubernetes")
	if !ok {
		return
	}
	k := &config.KubernetesIngress{}
	c.cfg.Providers = &config.Providers{KubernetesIngress: k}
	c.kube = &kubeState{path: kn.path}
	base := "providers.kubernetesIngress"
	c.origin(base, kn.path)
	c.add(kn.path, Converted, "[providers.kubernetesIngress]: tollgate serves the Ingresses Traefik 1.x served",
		"tollgate reads networking.k8s.io/v1 Ingresses (Kubernetes 1.19 and later); Traefik 1.x read extensions/v1beta1 ones, which the API server converts")
	c.kubeClient(kn, k, base)
	c.kubeSelection(kn, k, base)
	c.kubeIngressClass(kn, k, base)
	if b, ok := kn.boolean("disablePassHostHeaders"); ok {
		if b {
			c.add(kn.where("disablePassHostHeaders"), Unsupported, "tollgate passes the client's Host header to every Ingress backend; it has no setting to send the backend's own",
				"if a backend needs its own Host, set it there (or with a headers middleware's customRequestHeaders named in tollgate.io/router.middlewares)")
		} else {
			c.add(kn.where("disablePassHostHeaders"), Converted, "false: the client's Host header is passed to Ingress backends, as tollgate does", "")
		}
	}
	if b, ok := kn.boolean("enablePassTLSCert"); ok {
		c.kube.passTLSCert = b
		if b {
			c.add(kn.where("enablePassTLSCert"), Unsupported, "tollgate passes client certificates only on the Ingresses that name a passTLSClientCert middleware",
				"the Ingress check (--ingresses) adds one to every Ingress it lists; name it in tollgate.io/router.middlewares of the others")
		} else {
			c.add(kn.where("enablePassTLSCert"), Converted, "false: client certificates are not passed, as by default in tollgate", "")
		}
	}
	if d, ok := kn.duration("throttleDuration"); ok {
		if d > 0 {
			k.ThrottleDuration = config.Duration(d)
			c.origin(base+".throttleDuration", kn.where("throttleDuration"))
			c.add(kn.where("throttleDuration"), Converted, "throttleDuration = "+d.String(), "")
		} else {
			c.add(kn.where("throttleDuration"), Changed, "0 (no throttling) cannot be written: tollgate gathers changes for its default of 50ms", "")
		}
	}
	if b, ok := kn.boolean("watch"); ok {
		c.add(kn.where("watch"), Converted, fmt.Sprintf("watch = %v: tollgate always follows the Ingresses", b), "")
	}
	for _, key := range []string{"filename", "templateVersion", "debugLogGeneratedTemplate", "constraints", "trace"} {
		if kn.has(key) {
			c.add(kn.where(key), Unsupported, fmt.Sprintf("kubernetes.%s has no equivalent; not converted", key),
				"tollgate builds Ingress routes itself, without templates")
			kn.skip(key)
		}
	}
	c.kubeEntryPoints(kn, k, base)
	c.add(kn.path, Changed, "Ingresses routing to Services of type ExternalName are not served: tollgate's allowExternalNameServices is off, where Traefik 1.x served them",
		"set allowExternalNameServices = true if you use them: whoever may create a Service in a served namespace can then send traffic to any host")
	c.kubeEndpoint(kn, k, base)
}

// kubeClient converts endpoint, token and certAuthFilePath. Traefik 1.x
// in a pod used the pod's service account, with endpoint (if set) as the
// address; outside a cluster it used endpoint with token and
// certAuthFilePath. tollgate uses the service account when endpoint is
// empty, else tokenFile and caFile.
func (c *converter) kubeClient(kn *node, k *config.KubernetesIngress, base string) {
	endpoint, _ := kn.str("endpoint")
	_, hasToken := kn.str("token") // read only to know it is there: never copied
	if endpoint != "" {
		k.Endpoint = endpoint
		msg, kind := "endpoint = "+endpoint, Converted
		if !strings.Contains(endpoint, "://") {
			k.Endpoint = "https://" + endpoint
			msg, kind = "endpoint = "+k.Endpoint+": tollgate needs the scheme, which the Kubernetes client defaulted to https", Changed
		}
		c.origin(base+".endpoint", kn.where("endpoint"))
		advice := ""
		if !hasToken {
			kind = Changed
			msg += "; with an endpoint tollgate authenticates with tokenFile and caFile only, where Traefik 1.x in a pod used the service account's token and CA"
			advice = "in a pod, remove endpoint (tollgate then uses the service account), or set tokenFile = \"/var/run/secrets/kubernetes.io/serviceaccount/token\" and caFile = \"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt\""
		}
		c.add(kn.where("endpoint"), kind, msg, advice)
	}
	if hasToken {
		if endpoint != "" {
			c.add(kn.where("token"), Action, "tollgate reads the token from a file; the token is not written into the configuration",
				fmt.Sprintf("write it to a file only tollgate can read (chmod 600) and set tokenFile = PATH in [providers.kubernetesIngress] of %s; tollgate check --config %s reads it; then remove the token from Traefik's file", c.out, c.out))
		} else {
			c.add(kn.where("token"), Converted, "not needed: without endpoint tollgate uses the pod's service account, as Traefik 1.x did in a pod; the token is not written into the configuration", "")
		}
	}
	if s, ok := kn.str("certAuthFilePath"); ok && s != "" {
		if endpoint != "" {
			k.CAFile = s
			c.origin(base+".caFile", kn.where("certAuthFilePath"))
			c.add(kn.where("certAuthFilePath"), Converted, "caFile = "+s, "")
		} else {
			c.add(kn.where("certAuthFilePath"), Converted, "not needed: without endpoint tollgate uses the pod's service account CA, as Traefik 1.x did in a pod", "")
		}
	}
}

// kubeSelection converts namespaces and labelselector.
func (c *converter) kubeSelection(kn *node, k *config.KubernetesIngress, base string) {
	if ns, ok := kn.strs("namespaces"); ok {
		if len(ns) == 0 {
			c.add(kn.where("namespaces"), Converted, "every namespace, as with an empty list in Traefik 1.x", "")
		} else {
			k.Namespaces = ns
			c.origin(base+".namespaces", kn.where("namespaces"))
			c.add(kn.where("namespaces"), Converted, "namespaces = "+strings.Join(ns, ", "), "")
		}
	}
	if s, ok := kn.str("labelSelector"); ok {
		if s == "" {
			c.add(kn.where("labelSelector"), Converted, "every Ingress, as with an empty selector in Traefik 1.x", "")
		} else {
			k.LabelSelector = s
			c.origin(base+".labelSelector", kn.where("labelSelector"))
			c.add(kn.where("labelSelector"), Converted, fmt.Sprintf("labelSelector = %q: it selects Ingresses, as in Traefik 1.x", s), "")
		}
	}
}

// kubeIngressClass converts ingressClass. Traefik 1.x read the
// kubernetes.io/ingress.class annotation only: with ingressClass set it
// served the Ingresses whose annotation equals it; without, those whose
// annotation is "traefik", empty or absent. tollgate serves the
// Ingresses whose annotation equals its ingressClass, those whose
// spec.ingressClassName names an IngressClass of its controller, and,
// with neither, those a default IngressClass of its controller covers.
func (c *converter) kubeIngressClass(kn *node, k *config.KubernetesIngress, base string) {
	v1, _ := kn.str("ingressClass")
	c.kube.v1Class = v1
	at := kn.where("ingressClass")
	if v1 != "" {
		k.IngressClass, c.kube.class = v1, v1
		c.origin(base+".ingressClass", at)
		c.add(at, Converted, fmt.Sprintf("ingressClass = %q: Ingresses annotated kubernetes.io/ingress.class: %s are served, as by Traefik 1.x", v1, v1),
			fmt.Sprintf("to move to spec.ingressClassName, create an IngressClass named %s with spec.controller %s", v1, config.IngressController))
		return
	}
	k.IngressClass, c.kube.class = defaultV1IngressClass, defaultV1IngressClass
	c.origin(base+".ingressClass", kn.path)
	c.add(at, Changed, fmt.Sprintf("ingressClass = %q: Ingresses annotated kubernetes.io/ingress.class: traefik keep being served; those without the annotation or with an empty one, which Traefik 1.x served too, are served only through an IngressClass", defaultV1IngressClass),
		"tollgate's own default class would be \"tollgate\", which no Ingress of Traefik's has")
	c.add(at, Action, "Ingresses without kubernetes.io/ingress.class need an IngressClass of tollgate's controller, or the annotation",
		fmt.Sprintf("create an IngressClass named %s with spec.controller %s and the annotation ingressclass.kubernetes.io/is-default-class: \"true\" (then every Ingress without a class is tollgate's), or annotate those Ingresses kubernetes.io/ingress.class: %s, which Traefik 1.x serves too; --ingresses lists them",
			defaultV1IngressClass, config.IngressController, defaultV1IngressClass))
}

// kubeEntryPoints sets the entry points of Ingress routes: Traefik 1.x
// put an Ingress without the frontend-entry-points annotation on
// defaultEntryPoints, and ran the entry points' own middlewares
// (authentication, compression, allow list) for it.
func (c *converter) kubeEntryPoints(kn *node, k *config.KubernetesIngress, base string) {
	var names, left []string
	for _, v1 := range c.defaultEPs {
		ep, ok := c.eps[v1]
		switch {
		case !ok:
			left = append(left, fmt.Sprintf("%q is not defined", v1))
		case ep.blocked != "":
			left = append(left, fmt.Sprintf("%q: %s", ep.name, ep.blocked))
		case ep.internal:
			left = append(left, fmt.Sprintf("%q serves the API", ep.name))
		case !slices.Contains(c.kube.eps, ep):
			c.kube.eps = append(c.kube.eps, ep)
			names = append(names, ep.name)
			if ep.redirect == "" {
				for _, mw := range ep.mws {
					if !slices.Contains(c.kube.mws, mw) {
						c.kube.mws = append(c.kube.mws, mw)
					}
				}
			}
		}
	}
	if len(left) > 0 {
		c.add(kn.path, Changed, "Ingress routes do not listen on these of defaultEntryPoints: "+strings.Join(left, "; "), "")
	}
	if len(names) == 0 {
		c.add(kn.path, Changed, "no entry point of defaultEntryPoints can take Ingress routes: they listen on every entry point, tollgate's default",
			"set entryPoints in [providers.kubernetesIngress], or tollgate.io/router.entrypoints on the Ingresses")
		return
	}
	k.EntryPoints = names
	c.origin(base+".entryPoints", kn.path)
	c.add(kn.path, Converted, "Ingress routes listen on "+strings.Join(names, ", ")+" (Traefik 1.x's defaultEntryPoints) unless an Ingress names its own", "")
	if len(c.kube.mws) > 0 {
		c.keepAll(c.kube.mws)
		c.add(kn.path, Action, fmt.Sprintf("Traefik 1.x ran the entry points' middlewares (%s) for Ingresses too; tollgate runs for an Ingress only the middlewares it names", quoteList(c.kube.mws)),
			"name them first in tollgate.io/router.middlewares of every Ingress (the --ingresses check writes the annotation); until then those Ingresses are served without them")
	}
	if c.retry {
		c.add(kn.path, Action, "[retry] applied to Ingresses too in Traefik 1.x; tollgate retries for an Ingress only with a retry middleware it names",
			"add a retry middleware to the file and name it in tollgate.io/router.middlewares")
	}
	if c.acme != nil && c.acme.onHostRule {
		c.add(kn.path, Changed, "onHostRule ordered certificates for every Ingress host on TLS entry points; tollgate orders them for the Ingresses with spec.tls or the annotation tollgate.io/router.tls: \"true\"",
			"the --ingresses check adds the annotation where it is needed")
	}
}

// kubeEndpoint converts [kubernetes.ingressEndpoint]: the address the
// Ingresses' status shows. Traefik 1.x took publishedService over ip and
// hostname, and wrote nothing with none of them.
func (c *converter) kubeEndpoint(kn *node, k *config.KubernetesIngress, base string) {
	en, ok := kn.table("ingressEndpoint")
	if !ok {
		return
	}
	keys := []string{"publishedService", "ip", "hostname"}
	vals := map[string]string{}
	for _, key := range keys {
		if s, ok := en.str(key); ok {
			vals[key] = s
		}
	}
	e := &config.IngressEndpoint{PublishedService: vals["publishedService"], IP: vals["ip"], Hostname: vals["hostname"]}
	status := "while Traefik 1.x still runs, both write the Ingresses' status, each its own address: switch Traefik's ingressEndpoint off when the load balancer sends to tollgate"
	if e.PublishedService == "" && e.IP == "" && e.Hostname == "" {
		c.add(en.path, Converted, "no publishedService, ip or hostname: Traefik 1.x wrote no status, nor does tollgate", "")
		return
	}
	for _, key := range keys {
		s, set := vals[key]
		switch {
		case !set:
		case s == "":
			c.add(en.where(key), Converted, "empty, as if not set", "")
		case key != "publishedService" && e.PublishedService != "":
			c.add(en.where(key), Converted, "ignored, as by Traefik 1.x, since publishedService is set; not written, as tollgate takes one or the other", "")
		case key == "publishedService":
			c.add(en.where(key), Converted, "publishedService = "+s+": the address of its load balancer is written to the Ingresses' status", status)
		default:
			c.add(en.where(key), Converted, fmt.Sprintf("%s = %s is written to the Ingresses' status", key, s), status)
		}
	}
	if e.PublishedService != "" {
		e.IP, e.Hostname = "", ""
	}
	k.IngressEndpoint = e
	c.origin(base+".ingressEndpoint", en.path)
	for _, key := range keys {
		c.origin(base+".ingressEndpoint."+key, en.where(key))
	}
}

// keepAll keeps middlewares that no router of the file uses: Ingresses
// name them.
func (c *converter) keepAll(names []string) {
	if c.keep == nil {
		c.keep = map[string]bool{}
	}
	for _, n := range names {
		c.keep[n] = true
	}
}
