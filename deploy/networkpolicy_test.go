package deploy_test

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// source is where a connection comes from, for evaluating the
// NetworkPolicies of a build as a CNI that enforces them would.
type source struct {
	desc string
	// external is an address outside the cluster (the load balancer, the
	// internet): only rules without peers, or with an ipBlock, admit it.
	external bool
	// pod holds the labels of the pod the connection comes from.
	pod labels.Set
	// namespace holds the labels of the pod's namespace; ownNamespace
	// says whether it is the build's namespace.
	namespace    labels.Set
	ownNamespace bool
}

func (s source) String() string { return s.desc }

// namespaceLabels are the labels of the build's namespace: Kubernetes
// sets kubernetes.io/metadata.name on every namespace.
func (b *bundle) namespaceLabels() labels.Set {
	return labels.Set{"kubernetes.io/metadata.name": cmp.Or(b.namespace, "default")}
}

// from is a connection from the pods of a workload of the build.
func (b *bundle) from(w workload) source {
	return source{desc: "the pods of " + w.String(), pod: labels.Set(w.pod.Labels), namespace: b.namespaceLabels(), ownNamespace: true}
}

// intruders are sources that no policy of the store may admit: any pod
// of the namespace, any pod of another namespace, and the internet.
func (b *bundle) intruders() []source {
	stranger := labels.Set{"app.kubernetes.io/name": "intruder"}
	return []source{
		{desc: "an unrelated pod of the namespace", pod: stranger, namespace: b.namespaceLabels(), ownNamespace: true},
		{desc: "a pod of another namespace", pod: stranger, namespace: labels.Set{"kubernetes.io/metadata.name": "elsewhere"}},
		{desc: "an address outside the cluster", external: true},
	}
}

// podSelector converts a policy's label selector; an empty one selects
// every pod.
func podSelector(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(ls)
}

// ingressPolicy reports whether a NetworkPolicy restricts ingress: with no
// policyTypes, Kubernetes takes Ingress (and Egress only with egress
// rules).
func ingressPolicy(np *networkingv1.NetworkPolicy) bool {
	return len(np.Spec.PolicyTypes) == 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
}

// policiesFor returns the names of the policies that restrict ingress to
// the pods of w.
func (b *bundle) policiesFor(w workload) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(b.policies)) {
		np := b.policies[name]
		sel, err := podSelector(&np.Spec.PodSelector)
		if err == nil && ingressPolicy(np) && sel.Matches(labels.Set(w.pod.Labels)) {
			out = append(out, name)
		}
	}
	return out
}

// allows reports whether the policies of the build let src connect to
// port of w's pods. Pods no policy selects accept everything.
func (b *bundle) allows(w workload, port corev1.ContainerPort, src source) bool {
	names := b.policiesFor(w)
	if len(names) == 0 {
		return true
	}
	for _, name := range names {
		for _, rule := range b.policies[name].Spec.Ingress {
			if portMatches(rule.Ports, port) && peersMatch(rule.From, src) {
				return true
			}
		}
	}
	return false
}

// portMatches reports whether a rule's ports admit a container port; a
// named port is resolved on the pod the connection goes to.
func portMatches(ports []networkingv1.NetworkPolicyPort, cp corev1.ContainerPort) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if protocolOf(ptrOr(p.Protocol)) != protocolOf(cp.Protocol) {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.StrVal != "":
			if p.Port.StrVal == cp.Name {
				return true
			}
		case p.EndPort != nil:
			if cp.ContainerPort >= p.Port.IntVal && cp.ContainerPort <= *p.EndPort {
				return true
			}
		case p.Port.IntVal == cp.ContainerPort:
			return true
		}
	}
	return false
}

func ptrOr(p *corev1.Protocol) corev1.Protocol {
	if p == nil {
		return ""
	}
	return *p
}

// peersMatch reports whether a rule's from admits src. An ipBlock is
// taken to admit addresses outside the cluster only (whether it admits
// pod addresses depends on the CNI).
func peersMatch(peers []networkingv1.NetworkPolicyPeer, src source) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			if src.external {
				return true
			}
			continue
		}
		if src.external {
			continue
		}
		nsOK := src.ownNamespace
		if p.NamespaceSelector != nil {
			sel, err := podSelector(p.NamespaceSelector)
			nsOK = err == nil && sel.Matches(src.namespace)
		}
		podOK := true
		if p.PodSelector != nil {
			sel, err := podSelector(p.PodSelector)
			podOK = err == nil && sel.Matches(src.pod)
		}
		if nsOK && podOK {
			return true
		}
	}
	return false
}

// containerPorts lists every port the containers of w declare.
func containerPorts(w workload) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, c := range w.pod.Spec.Containers {
		out = append(out, c.Ports...)
	}
	return out
}

func TestNetworkPolicies(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		if len(b.policies) == 0 {
			t.Fatal("the build has no NetworkPolicy: every pod of the cluster could reach the store")
		}
		for _, name := range slices.Sorted(maps.Keys(b.policies)) {
			np := b.policies[name]
			where := "NetworkPolicy " + name
			sel, err := podSelector(&np.Spec.PodSelector)
			if err != nil {
				t.Errorf("%s: spec.podSelector: %v", where, err)
				continue
			}
			var selected []workload
			for _, w := range b.workloads() {
				if sel.Matches(labels.Set(w.pod.Labels)) {
					selected = append(selected, w)
				}
			}
			// A policy left behind when an overlay removed its workload
			// (Consul in the etcd overlay) selects nothing.
			if len(selected) == 0 {
				t.Errorf("%s: spec.podSelector %s selects the pods of no workload of the build (left over from a removed workload?)", where, sel)
			}
			if !ingressPolicy(np) {
				t.Errorf("%s: policyTypes %v lacks Ingress", where, np.Spec.PolicyTypes)
			}
			// tollgate reaches the ACME CA, DNS providers and backends
			// anywhere; the manifests leave egress open (a commented hint
			// shows how to close it).
			if slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(np.Spec.Egress) > 0 {
				t.Errorf("%s: restricts egress; the shipped policies restrict ingress only", where)
			}
			for i, rule := range np.Spec.Ingress {
				for j, p := range rule.Ports {
					if p.Port == nil {
						continue
					}
					for _, w := range selected {
						if !slices.ContainsFunc(containerPorts(w), func(cp corev1.ContainerPort) bool {
							return portMatches([]networkingv1.NetworkPolicyPort{p}, cp)
						}) {
							t.Errorf("%s: ingress[%d].ports[%d] %s/%s: no container of %s declares that port", where, i, j, protocolOf(ptrOr(p.Protocol)), p.Port.String(), w)
						}
					}
				}
				for j, peer := range rule.From {
					if peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil {
						continue // pods elsewhere, outside the build
					}
					psel, err := podSelector(peer.PodSelector)
					if err != nil {
						t.Errorf("%s: ingress[%d].from[%d].podSelector: %v", where, i, j, err)
						continue
					}
					if psel.Empty() {
						continue // every pod of the namespace, on purpose
					}
					if len(b.selecting(psel)) == 0 {
						t.Errorf("%s: ingress[%d].from[%d].podSelector %s selects the pods of no workload of the build", where, i, j, psel)
					}
				}
			}
		}
		// Pods no policy selects accept connections from anywhere.
		for _, w := range b.workloads() {
			if len(containerPorts(w)) > 0 && len(b.policiesFor(w)) == 0 {
				t.Errorf("%s: listens on ports, but no NetworkPolicy selects its pods", w)
			}
		}
	})
}

// storeClientPorts returns the container ports of the store that --kv
// names.
func (b *bundle) storeClientPorts(t *testing.T, st storeRef, sts *appsv1.StatefulSet) []corev1.ContainerPort {
	t.Helper()
	spec := &sts.Spec.Template.Spec
	var out []corev1.ContainerPort
	switch st.scheme {
	case "consul":
		host, port, err := net.SplitHostPort(st.consul.Address)
		if err != nil {
			t.Fatal(err)
		}
		svc, ok := b.services[host]
		if !ok {
			t.Fatalf("--kv names %q, which is not a Service of the build", host)
		}
		for _, p := range svc.Spec.Ports {
			if strconv.Itoa(int(p.Port)) == port {
				if cp, ok := containerPort(spec, p.TargetPort.StrVal, p.TargetPort.IntVal); ok {
					out = append(out, *cp)
				}
			}
		}
	case "etcd":
		for _, ep := range st.etcd.Endpoints {
			_, port, err := net.SplitHostPort(ep)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(port)
			if cp, ok := containerPort(spec, "", int32(n)); ok && !slices.Contains(out, *cp) {
				out = append(out, *cp)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("--kv %q names no port of StatefulSet %s", st.kv, sts.Name)
	}
	return out
}

// TestStoreIsolation checks that the store accepts connections from
// tollgate's replicas and storeconfig Job on the port --kv names, from its
// own members on the ports of its governing Service, and from nothing
// else.
func TestStoreIsolation(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		st := b.store(t)
		skipExternalStore(t, b)
		sts := b.storeSet(t)
		var store workload
		for _, w := range b.workloads() {
			if w.kind == "StatefulSet" && w.name == sts.Name {
				store = w
			}
		}
		names := b.policiesFor(store)
		if len(names) == 0 {
			t.Fatalf("%s: no NetworkPolicy selects the store's pods: any pod of the cluster could read and write it", store)
		}
		for _, name := range names {
			for i, rule := range b.policies[name].Spec.Ingress {
				if len(rule.From) == 0 {
					t.Errorf("NetworkPolicy %s: ingress[%d] has no from: it admits any pod, and any address, to the store", name, i)
				}
				for j, peer := range rule.From {
					if peer.IPBlock != nil || peer.NamespaceSelector != nil {
						t.Errorf("NetworkPolicy %s: ingress[%d].from[%d] admits addresses or other namespaces to the store", name, i, j)
					}
				}
			}
		}
		clients := b.storeClientPorts(t, st, sts)
		serve := b.running(t, "Deployment", "serve")
		job := b.running(t, "Job", "storeconfig")
		for _, w := range []workload{serve.w, job.w} {
			for _, cp := range clients {
				if !b.allows(store, cp, b.from(w)) {
					t.Errorf("%s: the store refuses %s on port %s (%d), which --kv names", store, b.from(w), cp.Name, cp.ContainerPort)
				}
			}
		}
		// The members reach each other on every port of the governing
		// Service but the client's (Raft, gossip, etcd's peer port).
		if svc, ok := b.services[sts.Spec.ServiceName]; ok {
			for _, p := range svc.Spec.Ports {
				cp, ok := containerPort(&sts.Spec.Template.Spec, p.TargetPort.StrVal, p.TargetPort.IntVal)
				if !ok || slices.Contains(clients, *cp) {
					continue // TestServices reports a missing port
				}
				if !b.allows(store, *cp, b.from(store)) {
					t.Errorf("%s: the members cannot reach each other on port %s (%d)", store, cp.Name, cp.ContainerPort)
				}
			}
		}
		others := b.intruders()
		for _, w := range b.workloads() {
			if w.String() != serve.w.String() && w.String() != job.w.String() && w.String() != store.String() {
				others = append(others, b.from(w))
			}
		}
		for _, cp := range containerPorts(store) {
			for _, src := range others {
				if b.allows(store, cp, src) {
					t.Errorf("%s: %s reaches port %s (%d/%s) of the store", store, src, cp.Name, cp.ContainerPort, protocolOf(cp.Protocol))
				}
			}
		}
	})
}

// TestTollgateNetworkPolicy checks that the public ports are open to
// everyone, and the API port only to the namespace and the monitoring
// pods README.md documents.
func TestTollgateNetworkPolicy(t *testing.T) {
	md, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	eachBundle(t, func(t *testing.T, b *bundle) {
		serve := b.running(t, "Deployment", "serve").w
		outside := source{desc: "an address outside the cluster", external: true}
		stranger := b.intruders()[1]
		inside := b.intruders()[0]
		public, internal := 0, 0
		for _, name := range slices.Sorted(maps.Keys(b.services)) {
			svc := b.services[name]
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(serve.pod.Labels)) {
				continue
			}
			for _, p := range svc.Spec.Ports {
				cp, ok := containerPort(&serve.pod.Spec, p.TargetPort.StrVal, p.TargetPort.IntVal)
				if !ok {
					continue // TestServices reports it
				}
				where := fmt.Sprintf("%s: port %s (%d) of Service %s", serve, cp.Name, cp.ContainerPort, name)
				if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
					public++
					for _, src := range []source{outside, stranger, inside} {
						if !b.allows(serve, *cp, src) {
							t.Errorf("%s: a public port, but %s cannot reach it", where, src)
						}
					}
					continue
				}
				internal++
				if !b.allows(serve, *cp, inside) {
					t.Errorf("%s: pods of the namespace cannot reach it", where)
				}
				for _, src := range []source{outside, stranger} {
					if b.allows(serve, *cp, src) {
						t.Errorf("%s: inside the cluster only, but %s reaches it", where, src)
					}
				}
				// The monitoring system's peer: a pod of another namespace,
				// named by labels README.md tells operators to adjust.
				monitored := false
				for _, np := range b.policiesFor(serve) {
					for _, rule := range b.policies[np].Spec.Ingress {
						if !portMatches(rule.Ports, *cp) {
							continue
						}
						for _, peer := range rule.From {
							if peer.NamespaceSelector == nil || peer.PodSelector == nil || len(peer.NamespaceSelector.MatchLabels) == 0 {
								continue
							}
							monitored = true
							for _, m := range []map[string]string{peer.NamespaceSelector.MatchLabels, peer.PodSelector.MatchLabels} {
								for k, v := range m {
									if !strings.Contains(string(md), k+": "+v) {
										t.Errorf("NetworkPolicy %s: %s lets in pods labelled %s: %s, which %s does not mention", np, where, k, v, readmeFile)
									}
								}
							}
						}
					}
				}
				if !monitored {
					t.Errorf("%s: no NetworkPolicy lets in a monitoring namespace's pods (namespaceSelector and podSelector by labels)", where)
				}
			}
		}
		if public == 0 || internal == 0 {
			t.Errorf("%s: %d public and %d internal Service ports; want both", serve, public, internal)
		}
	})
}

// egressTemplate returns the egress rules the comment of the replicas'
// NetworkPolicy suggests for restricting egress, uncommented.
func egressTemplate(t *testing.T) []networkingv1.NetworkPolicyEgressRule {
	t.Helper()
	file := filepath.Join("kubernetes", "base", "networkpolicy.yaml")
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc []string
	prefix := ""
	for line := range strings.Lines(string(text)) {
		line = strings.TrimRight(line, "\n")
		if prefix == "" {
			if before, ok := strings.CutSuffix(line, "egress:"); ok && strings.TrimSpace(before) == "#" {
				prefix = before
				doc = append(doc, "egress:")
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			break
		}
		doc = append(doc, rest)
	}
	if len(doc) < 2 {
		t.Fatalf("%s: no commented \"egress:\" block", file)
	}
	var spec struct {
		Egress []networkingv1.NetworkPolicyEgressRule `json:"egress"`
	}
	if err := decodeStrict([]byte(strings.Join(doc, "\n")), &spec); err != nil {
		t.Fatalf("%s: the commented egress rules: %v", file, err)
	}
	return spec.Egress
}

// TestEgressTemplate checks the egress rules the replicas' NetworkPolicy
// suggests in a comment: an operator who restricts egress with them must
// still reach the Kubernetes API server (the Ingress provider), cluster
// DNS and the store.
func TestEgressTemplate(t *testing.T) {
	rules := egressTemplate(t)
	allows := func(want func(networkingv1.NetworkPolicyPeer) bool, proto corev1.Protocol, port int32) bool {
		cp := corev1.ContainerPort{ContainerPort: port, Protocol: proto}
		for _, r := range rules {
			if portMatches(r.Ports, cp) && (len(r.To) == 0 || slices.ContainsFunc(r.To, want)) {
				return true
			}
		}
		return false
	}
	// The API server is outside the pod network, and CNIs judge egress to
	// it after the Service "kubernetes" is translated to its endpoints:
	// their address and port, 443 or 6443 by distribution.
	outside := func(p networkingv1.NetworkPolicyPeer) bool { return p.IPBlock != nil }
	for _, port := range []int32{443, 6443} {
		if !allows(outside, corev1.ProtocolTCP, port) {
			t.Errorf("the commented egress rules do not let the replicas reach the Kubernetes API server on port %d (an ipBlock rule)", port)
		}
	}
	dns := func(p networkingv1.NetworkPolicyPeer) bool {
		sel, err := podSelector(p.PodSelector)
		return p.NamespaceSelector != nil && err == nil && sel.Matches(labels.Set{"k8s-app": "kube-dns"})
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		if !allows(dns, proto, 53) {
			t.Errorf("the commented egress rules do not let the replicas reach cluster DNS on %s port 53", proto)
		}
	}
	for _, b := range bundles(t) {
		if b.name != "base" {
			continue
		}
		sts := b.storeSet(t)
		store := func(p networkingv1.NetworkPolicyPeer) bool {
			sel, err := podSelector(p.PodSelector)
			return p.PodSelector != nil && p.IPBlock == nil && err == nil && sel.Matches(labels.Set(sts.Spec.Template.Labels))
		}
		for _, cp := range b.storeClientPorts(t, b.store(t), sts) {
			if !allows(store, protocolOf(cp.Protocol), cp.ContainerPort) {
				t.Errorf("the commented egress rules do not let the replicas reach the store on port %d", cp.ContainerPort)
			}
		}
	}
}
