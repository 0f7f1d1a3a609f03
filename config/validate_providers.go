package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// providers checks the providers section.
func (v *validator) providers() {
	pr := v.cfg.Providers
	if pr == nil {
		return
	}
	if pr.KubernetesIngress != nil {
		v.kubernetesIngress(pr.KubernetesIngress)
	}
	if pr.KubernetesGateway != nil {
		v.kubernetesGateway(pr.KubernetesGateway)
	}
}

func (v *validator) kubernetesIngress(k *KubernetesIngress) {
	base := p("providers", "kubernetesIngress")
	at := func(key string) []string { return append(slices.Clip(base), key) }
	v.kubernetesAPI(base, k.API())
	v.kubernetesNamespaces(at("namespaces"), k.Namespaces)
	if k.LabelSelector != "" {
		if _, err := labels.Parse(k.LabelSelector); err != nil {
			v.add(at("labelSelector"), "labelSelector: %v", err)
		}
	}
	if k.IngressClass != "" {
		if errs := validation.IsDNS1123Subdomain(k.IngressClass); len(errs) > 0 {
			v.add(at("ingressClass"), "ingressClass %q is not a Kubernetes object name: %s", truncate(k.IngressClass, 80), errs[0])
		}
	}
	switch k.NginxAnnotations {
	case "", NginxOff, NginxClasses, NginxAll:
	default:
		v.add(at("nginxAnnotations"), "nginxAnnotations %q must be %q (the default), %q (read the nginx annotations of the Ingresses of nginxIngressClasses) or %q (those and every Ingress of tollgate's class)", truncate(k.NginxAnnotations, 80), NginxOff, NginxClasses, NginxAll)
	}
	nginxSeen := map[string]bool{}
	for i, c := range k.NginxIngressClasses {
		at := append(at("nginxIngressClasses"), fmt.Sprint(i))
		switch {
		case len(validation.IsDNS1123Subdomain(c)) > 0:
			v.add(at, "nginxIngressClasses: %q is not a Kubernetes object name (such as \"nginx\"): %s", truncate(c, 80), validation.IsDNS1123Subdomain(c)[0])
		case nginxSeen[c]:
			v.add(at, "nginxIngressClasses: %q is listed twice", c)
		case c == k.IngressClass || (k.IngressClass == "" && c == "tollgate"):
			v.add(at, "nginxIngressClasses: %q is tollgate's own ingressClass; list ingress-nginx's classes only (use nginxAnnotations = \"all\" to read the nginx annotations of tollgate's Ingresses)", c)
		}
		nginxSeen[c] = true
	}
	if len(k.NginxIngressClasses) > 0 && k.NginxClasses() == nil {
		v.add(at("nginxIngressClasses"), "nginxIngressClasses is only used when nginxAnnotations is %q or %q; set nginxAnnotations, or remove nginxIngressClasses", NginxClasses, NginxAll)
	}
	for i, ep := range k.EntryPoints {
		v.ref(append(at("entryPoints"), fmt.Sprint(i)), "entry point", ep, v.entryPointNames)
	}
	v.nonNegative(at("throttleDuration"), k.ThrottleDuration)
	if e := k.IngressEndpoint; e != nil {
		v.publishedAddress(at("ingressEndpoint"), "ingressEndpoint", e)
	}
}

// gatewayControllerName is the Gateway API's pattern of a GatewayClass
// controllerName: a domain, a slash and a path.
var gatewayControllerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$`)

func (v *validator) kubernetesGateway(k *KubernetesGateway) {
	base := p("providers", "kubernetesGateway")
	at := func(key string) []string { return append(slices.Clip(base), key) }
	v.kubernetesAPI(base, k.API())
	v.kubernetesNamespaces(at("namespaces"), k.Namespaces)
	if c := k.ControllerName; c != "" && (len(c) > 253 || !gatewayControllerName.MatchString(c)) {
		v.add(at("controllerName"), "controllerName %q is not a Gateway API controller name: write a domain, a slash and a path, such as %s", truncate(c, 80), GatewayController)
	}
	ports := slices.Sorted(func(yield func(string) bool) {
		for port := range k.EntryPoints {
			if !yield(port) {
				return
			}
		}
	})
	for _, port := range ports {
		path := append(at("entryPoints"), port)
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			v.add(path, "%q is not a listener port: the keys of entryPoints are port numbers from 1 to 65535 written plainly (no sign or leading zero), such as \"443\" = \"websecure\"", truncate(port, 80))
			continue
		}
		v.ref(path, "entry point", k.EntryPoints[port], v.entryPointNames)
	}
	v.nonNegative(at("throttleDuration"), k.ThrottleDuration)
	if e := k.StatusAddress; e != nil {
		v.publishedAddress(at("statusAddress"), "statusAddress", e)
	}
}

// kubernetesAPI checks the connection settings of a Kubernetes provider.
func (v *validator) kubernetesAPI(base []string, k KubernetesAPI) {
	at := func(key string) []string { return append(slices.Clip(base), key) }
	if k.Endpoint != "" {
		u, err := url.Parse(k.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.add(at("endpoint"), "endpoint %q must be the API server's http:// or https:// URL, such as https://10.0.0.1:6443; leave it empty inside the cluster", truncate(k.Endpoint, 80))
		} else if u.Scheme == "http" && k.TokenFile != "" {
			v.add(at("tokenFile"), "the token would be sent in clear text to %s: use an https:// endpoint", u.Host)
		}
		return
	}
	if k.TokenFile != "" {
		v.add(at("tokenFile"), "tokenFile is only used with endpoint; inside the cluster the pod's service account token is used")
	}
	if k.CAFile != "" {
		v.add(at("caFile"), "caFile is only used with endpoint; inside the cluster the pod's service account CA is used")
	}
}

// kubernetesNamespaces checks a list of namespaces.
func (v *validator) kubernetesNamespaces(path []string, namespaces []string) {
	seen := map[string]bool{}
	for i, ns := range namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			v.add(append(slices.Clip(path), fmt.Sprint(i)), "namespace %q is not a Kubernetes namespace name: %s", truncate(ns, 80), errs[0])
		} else if seen[ns] {
			v.add(append(slices.Clip(path), fmt.Sprint(i)), "namespace %q is listed twice", ns)
		}
		seen[ns] = true
	}
}

// publishedAddress checks an address a provider writes to status.
func (v *validator) publishedAddress(ep []string, key string, e *IngressEndpoint) {
	fixed := e.IP != "" || e.Hostname != ""
	switch {
	case e.PublishedService != "" && fixed:
		v.add(ep, "set publishedService or ip/hostname, not both")
	case e.PublishedService == "" && !fixed:
		v.add(ep, "%s needs publishedService (\"namespace/name\" of the Service in front of the replicas), ip or hostname", key)
	}
	if e.PublishedService != "" {
		ns, name, ok := strings.Cut(e.PublishedService, "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1035Label(name)) > 0 {
			v.add(append(slices.Clip(ep), "publishedService"), "publishedService %q must be \"namespace/name\" of a Service", truncate(e.PublishedService, 80))
		}
	}
	if e.IP != "" {
		if _, err := netip.ParseAddr(e.IP); err != nil {
			v.add(append(slices.Clip(ep), "ip"), "ip %q is not an IP address", truncate(e.IP, 80))
		}
	}
	if e.Hostname != "" {
		if errs := validation.IsDNS1123Subdomain(e.Hostname); len(errs) > 0 {
			v.add(append(slices.Clip(ep), "hostname"), "hostname %q is not a DNS name: %s", truncate(e.Hostname, 80), errs[0])
		}
	}
}
