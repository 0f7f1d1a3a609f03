package deploy_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/hcl"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore/consul"
	"github.com/tollgate-proxy/tollgate/kvstore/etcd"
)

// storeRef is the store the replicas and the storeconfig Job share.
type storeRef struct {
	kv, prefix string
	scheme     string
	consul     consul.Config
	etcd       etcd.Config
}

// store parses the --kv and --prefix of the replicas, which must be the
// storeconfig Job's: the replicas follow what the Job publishes.
func (b *bundle) store(t *testing.T) storeRef {
	t.Helper()
	serve := b.running(t, "Deployment", "serve")
	job := b.running(t, "Job", "storeconfig")
	st := storeRef{kv: serve.flags["kv"], prefix: cmp.Or(serve.flags["prefix"], config.DefaultPrefix)}
	if st.kv == "" {
		t.Fatalf("%s: serve has no --kv: every replica would keep its own embedded store", serve)
	}
	if job.flags["kv"] != st.kv || cmp.Or(job.flags["prefix"], config.DefaultPrefix) != st.prefix {
		t.Errorf("storeconfig publishes to --kv %q --prefix %q, the replicas follow --kv %q --prefix %q",
			job.flags["kv"], job.flags["prefix"], st.kv, serve.flags["prefix"])
	}
	if err := config.CheckPrefix(st.prefix); err != nil {
		t.Errorf("--prefix %q: %v", st.prefix, err)
	}
	u, err := url.Parse(st.kv)
	if err != nil {
		t.Fatalf("--kv %q: %v", st.kv, err)
	}
	st.scheme = u.Scheme
	switch u.Scheme {
	case "consul":
		st.consul, err = consul.ParseURL(u)
	case "etcd":
		st.etcd, err = etcd.ParseURL(u)
	default:
		err = fmt.Errorf("scheme %q: replicas can share only a consul:// or etcd:// store", u.Scheme)
	}
	if err != nil {
		t.Fatalf("--kv %q: %v", st.kv, err)
	}
	return st
}

// readsEnv reports whether the store's backend takes its credentials from
// the environment variable name, as --kv configures it.
func (st storeRef) readsEnv(t *testing.T, name string) bool {
	t.Helper()
	switch st.scheme {
	case "consul":
		return st.consul.TokenFile == "" && consulReadsToken(t, name)
	case "etcd":
		return st.etcd.Username != "" && st.etcd.PasswordFile == "" && name == etcd.EnvPassword
	}
	return false
}

// consulReadsToken reports whether the Consul backend sends the value of
// the environment variable name as its ACL token, asking an HTTP server
// that plays a Consul agent.
func consulReadsToken(t *testing.T, name string) bool {
	t.Helper()
	const token = "6f0c3e52-7a51-4c1e-9d4e-deadbeef0001"
	seen := make(chan string, 16)
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status/leader" {
			seen <- r.Header.Get("X-Consul-Token")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `"127.0.0.1:8300"`)
	}))
	defer agent.Close()
	t.Setenv(name, token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := consul.New(ctx, consul.Config{Address: strings.TrimPrefix(agent.URL, "http://")})
	if err != nil {
		t.Errorf("consul backend against a stand-in agent: %v", err)
		return false
	}
	st.Close()
	select {
	case got := <-seen:
		return got == token
	default:
		return false
	}
}

// skipExternalStore skips a test of the store's own objects when the
// store is outside the build.
func skipExternalStore(t *testing.T, b *bundle) {
	t.Helper()
	if b.externalStore {
		t.Skip("the store is outside the build (an external store of the chart)")
	}
}

// storeSet returns the StatefulSet of the store.
func (b *bundle) storeSet(t *testing.T) *appsv1.StatefulSet {
	t.Helper()
	for _, s := range b.statefulSets {
		if s.Labels["app.kubernetes.io/component"] == "store" {
			return s
		}
	}
	t.Fatal("no StatefulSet labelled app.kubernetes.io/component=store")
	return nil
}

// named finds a container port by name.
func namedPort(c *corev1.Container, name string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func TestStoreEndpoint(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		st := b.store(t)
		// An external store's address is the user's: only the
		// credentials are the build's to check.
		var sts *appsv1.StatefulSet
		if !b.externalStore {
			sts = b.storeSet(t)
			repo, _, _ := splitImage(sts.Spec.Template.Spec.Containers[0].Image)
			if !strings.HasSuffix(repo, "/"+st.scheme) {
				t.Errorf("--kv %q is a %s store, but StatefulSet %s runs %s", st.kv, st.scheme, sts.Name, repo)
			}
		}
		serve := b.running(t, "Deployment", "serve")
		job := b.running(t, "Job", "storeconfig")
		switch st.scheme {
		case "consul":
			if sts != nil {
				b.checkConsulEndpoint(t, st, sts)
			}
			for _, tc := range []tollgateContainer{serve, job} {
				b.checkCredential(t, tc, "ACL token", st.consul.TokenFile, "CONSUL_HTTP_TOKEN")
			}
			if st.consul.TokenFile == "" && !consulReadsToken(t, "CONSUL_HTTP_TOKEN") {
				t.Errorf("the consul backend no longer takes its ACL token from CONSUL_HTTP_TOKEN; update the manifests and README.md")
			}
		case "etcd":
			if sts != nil {
				b.checkEtcdEndpoints(t, st, sts)
			}
			if st.etcd.Username == "" {
				break
			}
			for _, tc := range []tollgateContainer{serve, job} {
				b.checkCredential(t, tc, "password", st.etcd.PasswordFile, etcd.EnvPassword)
			}
		}
	})
}

// checkCredential checks that a container gets a store credential from a
// Secret: the file --kv names, or else the environment variable env.
func (b *bundle) checkCredential(t *testing.T, tc tollgateContainer, what, file, env string) {
	t.Helper()
	if file != "" {
		if kind, _, err := b.mountedFile(&tc.w.pod.Spec, tc.c, file); err != nil || kind != "Secret" {
			t.Errorf("%s: the store's %s file %s is not a mounted Secret key: %v", tc, what, file, err)
			return
		}
		checkSecretFile(t, fmt.Sprintf("%s: the store's %s", tc, what), &tc.w.pod.Spec, tc.c, file)
		return
	}
	if _, ok := b.secretEnv(tc.c, env); !ok {
		t.Errorf("%s: the store's %s is not set: want env %s from a Secret", tc, what, env)
	}
}

// checkConsulEndpoint checks that --kv names a Service of the Consul
// servers, on their HTTP port.
func (b *bundle) checkConsulEndpoint(t *testing.T, st storeRef, sts *appsv1.StatefulSet) {
	t.Helper()
	host, port, err := net.SplitHostPort(st.consul.Address)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(host, ".") {
		t.Errorf("--kv names %q; name the Service by its short name so that the manifests work in any namespace", host)
	}
	svc, ok := b.services[host]
	if !ok {
		t.Fatalf("--kv names %q, which is not a Service of the build", host)
	}
	if !selects(svc, sts) {
		t.Errorf("Service %s does not select the pods of StatefulSet %s", svc.Name, sts.Name)
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port })
	if i < 0 {
		t.Fatalf("--kv names port %s, which Service %s does not have", port, svc.Name)
	}
	target := svc.Spec.Ports[i].TargetPort
	cp, ok := containerPort(&sts.Spec.Template.Spec, target.StrVal, target.IntVal)
	if !ok || cp.ContainerPort != 8500 {
		t.Errorf("--kv reaches port %s of StatefulSet %s, not Consul's HTTP API (8500)", target.String(), sts.Name)
	}
}

// checkEtcdEndpoints checks that --kv names every member of the etcd
// StatefulSet by its stable name, on its client port.
func (b *bundle) checkEtcdEndpoints(t *testing.T, st storeRef, sts *appsv1.StatefulSet) {
	t.Helper()
	c := &sts.Spec.Template.Spec.Containers[0]
	members := map[int]bool{}
	for _, ep := range st.etcd.Endpoints {
		host, port, err := net.SplitHostPort(ep)
		if err != nil {
			t.Errorf("--kv endpoint %q: %v", ep, err)
			continue
		}
		pod, svc, _ := strings.Cut(host, ".")
		ordinal, err := strconv.Atoi(strings.TrimPrefix(pod, sts.Name+"-"))
		switch {
		case svc != sts.Spec.ServiceName:
			t.Errorf("--kv endpoint %q: want POD.%s, the member's name under the StatefulSet's governing Service", ep, sts.Spec.ServiceName)
		case !strings.HasPrefix(pod, sts.Name+"-") || err != nil || ordinal < 0 || ordinal >= int(replicas(sts.Spec.Replicas)):
			t.Errorf("--kv endpoint %q names no pod of StatefulSet %s (%d replicas)", ep, sts.Name, replicas(sts.Spec.Replicas))
		default:
			members[ordinal] = true
		}
		if client, ok := namedPort(c, "client"); !ok || strconv.Itoa(int(client)) != port {
			t.Errorf("--kv endpoint %q: port %s is not the client port of StatefulSet %s", ep, port, sts.Name)
		}
	}
	if len(members) != int(replicas(sts.Spec.Replicas)) {
		t.Errorf("--kv names %d of the %d etcd members; name them all, so that losing one does not matter", len(members), replicas(sts.Spec.Replicas))
	}
}

func selects(svc *corev1.Service, sts *appsv1.StatefulSet) bool {
	if len(svc.Spec.Selector) == 0 {
		return false
	}
	for k, v := range svc.Spec.Selector {
		if sts.Spec.Template.Labels[k] != v {
			return false
		}
	}
	return true
}

// aclRule is one rule of a Consul ACL policy, such as
// key_prefix "tollgate/" { policy = "write" }.
type aclRule struct {
	Name   string `hcl:",key"`
	Policy string `hcl:"policy"`
}

type aclPolicy struct {
	KeyPrefix     []aclRule `hcl:"key_prefix"`
	SessionPrefix []aclRule `hcl:"session_prefix"`
}

// policyFile is the Consul ACL policy for tollgate's token.
var policyFile = filepath.Join("kubernetes", "base", "consul", "tollgate-policy.hcl")

func TestConsulACLPolicy(t *testing.T) {
	text, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := hcl.Decode(&top, string(text)); err != nil {
		t.Fatalf("%s: %v", policyFile, err)
	}
	if extra := slices.DeleteFunc(slices.Sorted(maps.Keys(top)), func(k string) bool { return k == "key_prefix" || k == "session_prefix" }); len(extra) > 0 {
		t.Errorf("%s: grants %v; tollgate needs only key_prefix and session_prefix", policyFile, extra)
	}
	var policy aclPolicy
	if err := hcl.Decode(&policy, string(text)); err != nil {
		t.Fatalf("%s: %v", policyFile, err)
	}
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	eachBundle(t, func(t *testing.T, b *bundle) {
		st := b.store(t)
		if st.scheme != "consul" {
			t.Skipf("the store is %s", st.scheme)
		}
		skipExternalStore(t, b)
		// Sessions belong to the node of the agent tollgate talks to: the
		// Consul servers behind the Service --kv names.
		sts := b.storeSet(t)
		policyFile, text, policy := policyFile, text, policy
		if b.chart {
			// The chart makes the policy from store.prefix.
			policyFile, text, policy = b.chartConsulPolicy(t, sts)
		}
		want := aclRule{Name: st.prefix + "/", Policy: "write"}
		if !slices.Equal(policy.KeyPrefix, []aclRule{want}) {
			t.Errorf("%s: key_prefix rules %+v, want exactly %+v: all of tollgate's keys, and nothing else", policyFile, policy.KeyPrefix, want)
		}
		checkSessionNodes(t, policy, sts)
		for _, r := range policy.SessionPrefix {
			if r.Name == "" {
				t.Errorf("%s: session_prefix \"\" covers every node; name the Consul servers' nodes", policyFile)
			}
		}
		// The policy is mounted into the Consul servers for the ACL set-up
		// README.md describes.
		mounted := b.mountPathOf(sts, string(text))
		if mounted == "" {
			t.Errorf("StatefulSet %s does not mount %s", sts.Name, policyFile)
		} else if !strings.Contains(string(readme), mounted) {
			t.Errorf("%s does not mention %s, where the Consul servers find the policy", readmeFile, mounted)
		}
	})
}

// checkSessionNodes checks that the policy lets tollgate write sessions on
// the node of every Consul server of sts.
func checkSessionNodes(t *testing.T, policy aclPolicy, sts *appsv1.StatefulSet) {
	t.Helper()
	for i := range int(replicas(sts.Spec.Replicas)) {
		node, err := consulNodeName(sts, i)
		if err != nil {
			t.Errorf("StatefulSet %s: %v", sts.Name, err)
			return
		}
		if !slices.ContainsFunc(policy.SessionPrefix, func(r aclRule) bool { return strings.HasPrefix(node, r.Name) && r.Policy == "write" }) {
			t.Errorf("%s: no session_prefix rule lets tollgate write sessions on node %s (pod %s-%d): it could not take locks there", policyFile, node, sts.Name, i)
		}
	}
}

// consulNodeName returns the node name the Consul server of ordinal i of
// sts gives itself: its -node argument with the $(VAR)s of its
// environment expanded as the kubelet would for that pod.
func consulNodeName(sts *appsv1.StatefulSet, i int) (string, error) {
	c := &sts.Spec.Template.Spec.Containers[0]
	arg := ""
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "-node="); ok {
			arg = v
		}
	}
	if arg == "" {
		return "", fmt.Errorf("consul has no -node argument: its node name would be the pod's host name")
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef == nil:
		case e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = fmt.Sprintf("%s-%d", sts.Name, i)
		case e.ValueFrom.FieldRef.FieldPath == "metadata.labels['apps.kubernetes.io/pod-index']":
			env[e.Name] = strconv.Itoa(i)
		}
	}
	node := arg
	for _, ref := range expansions(arg) {
		v, ok := env[ref]
		if !ok {
			return "", fmt.Errorf("-node=%s: $(%s) is not a variable this test can resolve", arg, ref)
		}
		node = strings.ReplaceAll(node, "$("+ref+")", v)
	}
	return node, nil
}

// TestConsulACLPolicyNamePrefix builds the base under a namePrefix, as an
// operator may: the servers' pods get new names, and tollgate's sessions
// must still be allowed on their nodes.
func TestConsulACLPolicyNamePrefix(t *testing.T) {
	text, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	var policy aclPolicy
	if err := hcl.Decode(&policy, string(text)); err != nil {
		t.Fatalf("%s: %v", policyFile, err)
	}
	dir := t.TempDir()
	base, err := filepath.Abs(filepath.Join("kubernetes", "base"))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: edge-\nresources:\n  - %s\n", filepath.ToSlash(rel))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := build("name-prefix", dir)
	if err != nil {
		t.Fatal(err)
	}
	checkSessionNodes(t, policy, b.storeSet(t))
}

// TestConsulACLPolicyDocumented checks that docs/security.md recommends
// the policy the manifests ship.
func TestConsulACLPolicyDocumented(t *testing.T) {
	var shipped, documented aclPolicy
	text, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := hcl.Decode(&shipped, string(text)); err != nil {
		t.Fatalf("%s: %v", policyFile, err)
	}
	const doc = "../docs/security.md"
	md, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(md), "### Least privilege in Consul\n")
	_, block, ok2 := strings.Cut(section, "```hcl\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatalf("%s: no ```hcl block under \"### Least privilege in Consul\"", doc)
	}
	if err := hcl.Decode(&documented, block); err != nil {
		t.Fatalf("%s: the policy: %v", doc, err)
	}
	if !slices.Equal(shipped.KeyPrefix, documented.KeyPrefix) || !slices.Equal(shipped.SessionPrefix, documented.SessionPrefix) {
		t.Errorf("%s recommends %+v, but %s grants %+v: make them agree", doc, documented, policyFile, shipped)
	}
}

// mountPathOf returns where a container of sts sees a ConfigMap key with
// the given content.
func (b *bundle) mountPathOf(sts *appsv1.StatefulSet, content string) string {
	spec := &sts.Spec.Template.Spec
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm := b.configMaps[v.ConfigMap.Name]
		if cm == nil {
			continue
		}
		for key, data := range cm.Data {
			if data != content {
				continue
			}
			for _, c := range spec.Containers {
				for _, m := range c.VolumeMounts {
					if m.Name == v.Name && m.SubPath == "" {
						return m.MountPath + "/" + key
					}
				}
			}
		}
	}
	return ""
}

// consulServer is what TestConsulServers reads of the servers'
// configuration.
type consulServer struct {
	Server          bool     `hcl:"server"`
	BootstrapExpect int      `hcl:"bootstrap_expect"`
	DataDir         string   `hcl:"data_dir"`
	RetryJoin       []string `hcl:"retry_join"`
	ACL             struct {
		Enabled       bool   `hcl:"enabled"`
		DefaultPolicy string `hcl:"default_policy"`
	} `hcl:"acl"`
	Limits struct {
		TxnMaxReqLen int `hcl:"txn_max_req_len"`
	} `hcl:"limits"`
}

func TestConsulServers(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		if b.store(t).scheme != "consul" {
			t.Skip("not a Consul store")
		}
		skipExternalStore(t, b)
		sts := b.storeSet(t)
		spec := &sts.Spec.Template.Spec
		c := &spec.Containers[0]
		dir := ""
		for _, a := range c.Args {
			if d, ok := strings.CutPrefix(a, "-config-dir="); ok {
				dir = d
			}
		}
		if dir == "" {
			t.Fatalf("StatefulSet %s: consul has no -config-dir", sts.Name)
		}
		var srv consulServer
		files := 0
		for _, v := range spec.Volumes {
			if v.ConfigMap == nil || !mountedAt(c, v.Name, dir) {
				continue
			}
			cm := b.configMaps[v.ConfigMap.Name]
			if cm == nil {
				continue // TestReferences reports it
			}
			for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
				if !strings.HasSuffix(key, ".hcl") {
					continue
				}
				files++
				if err := hcl.Decode(&srv, cm.Data[key]); err != nil {
					t.Fatalf("ConfigMap %s: %s: %v", cm.Name, key, err)
				}
			}
		}
		if files == 0 {
			t.Fatalf("StatefulSet %s: no .hcl configuration in -config-dir %s", sts.Name, dir)
		}
		n := int(replicas(sts.Spec.Replicas))
		var join []string
		for i := range n {
			join = append(join, fmt.Sprintf("%s-%d.%s", sts.Name, i, sts.Spec.ServiceName))
		}
		switch {
		case !srv.Server:
			t.Errorf("StatefulSet %s: server is not true", sts.Name)
		case srv.BootstrapExpect != n:
			t.Errorf("StatefulSet %s: bootstrap_expect %d, but %d replicas", sts.Name, srv.BootstrapExpect, n)
		case !slices.Equal(srv.RetryJoin, join):
			t.Errorf("StatefulSet %s: retry_join %q, want every server by its stable name %q", sts.Name, srv.RetryJoin, join)
		}
		if !srv.ACL.Enabled || srv.ACL.DefaultPolicy != "deny" {
			t.Errorf("StatefulSet %s: ACLs enabled %t, default policy %q; want enabled and deny, or the tollgate policy restricts nothing", sts.Name, srv.ACL.Enabled, srv.ACL.DefaultPolicy)
		}
		if !onClaim(sts, c, srv.DataDir) {
			t.Errorf("StatefulSet %s: data_dir %q is not on a volumeClaimTemplate: a restart would lose the data", sts.Name, srv.DataDir)
		}
		if l := srv.Limits.TxnMaxReqLen; l != 0 && l < consul.DefaultMaxTxnBytes {
			t.Errorf("StatefulSet %s: limits.txn_max_req_len %d is below the %d tollgate sends", sts.Name, l, consul.DefaultMaxTxnBytes)
		}
	})
}

// mountedAt reports whether volume is mounted at dir in c.
func mountedAt(c *corev1.Container, volume, dir string) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == volume && strings.TrimSuffix(m.MountPath, "/") == strings.TrimSuffix(dir, "/")
	})
}

// onClaim reports whether dir lies on a volumeClaimTemplate of sts.
func onClaim(sts *appsv1.StatefulSet, c *corev1.Container, dir string) bool {
	for _, m := range c.VolumeMounts {
		claim := slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == m.Name })
		if claim && dir != "" && (dir == m.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/")) {
			return true
		}
	}
	return false
}

// TestConsulProbes checks that a Consul server is ready only while the
// cluster has a leader, and that its liveness does not depend on one. The
// readiness command runs here against a stand-in wget that answers what
// /v1/status/leader answers: "" without a leader, "ip:8300" with one.
func TestConsulProbes(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		if b.store(t).scheme != "consul" {
			t.Skip("not a Consul store")
		}
		skipExternalStore(t, b)
		sts := b.storeSet(t)
		c := &sts.Spec.Template.Spec.Containers[0]
		httpPort, ok := namedPort(c, "http")
		if !ok {
			t.Fatalf("StatefulSet %s: no container port named http", sts.Name)
		}
		r := c.ReadinessProbe
		if r == nil || r.Exec == nil || len(r.Exec.Command) == 0 {
			t.Fatalf("StatefulSet %s: the readiness probe is not an exec probe: an httpGet of /v1/status/leader succeeds without a leader (200, \"\")", sts.Name)
		}
		if r.TimeoutSeconds < 2 {
			t.Errorf("StatefulSet %s: readinessProbe.timeoutSeconds %d; a shell and wget need more than the default 1s under load", sts.Name, r.TimeoutSeconds)
		}
		bin := t.TempDir()
		url := fmt.Sprintf("http://127.0.0.1:%d/v1/status/leader", httpPort)
		fake := "#!/bin/sh\n" +
			"for a in \"$@\"; do [ \"$a\" = " + url + " ] && { printf '%s' \"$LEADER\"; exit \"${WGET_EXIT:-0}\"; }; done\n" +
			"echo \"wget: not the leader endpoint: $*\" >&2; exit 1\n"
		if err := os.WriteFile(filepath.Join(bin, "wget"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			desc, leader, exit string
			ready              bool
		}{
			{"a leader", `"10.0.0.7:8300"`, "0", true},
			{"an IPv6 leader", `"[fd00::7]:8300"`, "0", true},
			{"no leader", `""`, "0", false},
			{"no answer", "", "1", false},
		}
		for _, tt := range tests {
			cmd := exec.Command(r.Exec.Command[0], r.Exec.Command[1:]...)
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "LEADER="+tt.leader, "WGET_EXIT="+tt.exit)
			out, err := cmd.CombinedOutput()
			if got := err == nil; got != tt.ready {
				t.Errorf("StatefulSet %s: readiness probe %q with %s: ready %t, want %t (%v: %s)", sts.Name, r.Exec.Command, tt.desc, got, tt.ready, err, out)
			}
		}
		l := c.LivenessProbe
		if l == nil {
			t.Fatalf("StatefulSet %s: no liveness probe: a hung agent would never be restarted", sts.Name)
		}
		if l.Exec != nil || l.HTTPGet != nil && strings.Contains(l.HTTPGet.Path, "leader") {
			t.Errorf("StatefulSet %s: the liveness probe must not need a leader: servers waiting for a quorum would be restarted in a loop", sts.Name)
		}
		// A slow Raft (a large snapshot to restore, a busy disk) must not
		// get a server killed.
		if patience := l.InitialDelaySeconds + cmp.Or(l.PeriodSeconds, 10)*cmp.Or(l.FailureThreshold, 3); patience < 120 {
			t.Errorf("StatefulSet %s: the liveness probe restarts a server after %ds without an answer; allow at least 120s", sts.Name, patience)
		}
	})
}

func TestEtcdMembers(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		if b.store(t).scheme != "etcd" {
			t.Skip("not an etcd store")
		}
		skipExternalStore(t, b)
		sts := b.storeSet(t)
		c := &sts.Spec.Template.Spec.Containers[0]
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		peer, okPeer := namedPort(c, "peer")
		client, okClient := namedPort(c, "client")
		if !okPeer || !okClient {
			t.Fatalf("StatefulSet %s: the etcd container must declare ports named peer and client", sts.Name)
		}
		svc := sts.Spec.ServiceName
		var cluster []string
		for i := range int(replicas(sts.Spec.Replicas)) {
			pod := fmt.Sprintf("%s-%d", sts.Name, i)
			cluster = append(cluster, fmt.Sprintf("%s=http://%s.%s:%d", pod, pod, svc, peer))
		}
		tests := []struct{ name, want string }{
			{"ETCD_NAME", "$(POD_NAME)"},
			{"ETCD_INITIAL_CLUSTER", strings.Join(cluster, ",")},
			{"ETCD_INITIAL_ADVERTISE_PEER_URLS", fmt.Sprintf("http://$(POD_NAME).%s:%d", svc, peer)},
			{"ETCD_ADVERTISE_CLIENT_URLS", fmt.Sprintf("http://$(POD_NAME).%s:%d", svc, client)},
			{"ETCD_LISTEN_PEER_URLS", fmt.Sprintf("http://0.0.0.0:%d", peer)},
			{"ETCD_LISTEN_CLIENT_URLS", fmt.Sprintf("http://0.0.0.0:%d", client)},
			{"ETCD_INITIAL_CLUSTER_STATE", "new"},
		}
		for _, tt := range tests {
			if got := env[tt.name]; got != tt.want {
				t.Errorf("StatefulSet %s: %s is %q, want %q", sts.Name, tt.name, got, tt.want)
			}
		}
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
		}) {
			t.Errorf("StatefulSet %s: POD_NAME is not the pod's metadata.name", sts.Name)
		}
		if !onClaim(sts, c, env["ETCD_DATA_DIR"]) {
			t.Errorf("StatefulSet %s: ETCD_DATA_DIR %q is not on a volumeClaimTemplate: a restart would lose the member", sts.Name, env["ETCD_DATA_DIR"])
		}
		// tollgate sizes its transactions to etcd's defaults.
		limits := []struct {
			name  string
			least int
		}{
			{"ETCD_MAX_TXN_OPS", etcd.DefaultMaxTxnOps},
			{"ETCD_MAX_REQUEST_BYTES", etcd.DefaultMaxRequestBytes},
		}
		for _, l := range limits {
			if v, ok := env[l.name]; ok {
				if n, err := strconv.Atoi(v); err != nil || n < l.least {
					t.Errorf("StatefulSet %s: %s is %q, below the %d tollgate relies on", sts.Name, l.name, v, l.least)
				}
			}
		}
	})
}

func TestImagesPinned(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, w := range b.workloads() {
			for _, c := range allContainers(&w.pod.Spec) {
				repo, tag, digest := splitImage(c.Image)
				if digest != "" || tag != "" && tag != "latest" {
					continue
				}
				if repo == b.image && (b.shipped || b.chart) {
					continue // the placeholder README.md and docs/helm.md tell to replace
				}
				t.Errorf("%s: container %s: image %q is not pinned to a version", w, c.Name, c.Image)
			}
		}
	})
}

// TestConsulACLPolicyLive runs a Consul server with ACLs enforced, named
// like the StatefulSet's first server, gives a token the shipped policy,
// and checks that tollgate storeconfig works with it (the lock it takes is
// a session on the agent's node) and that the token can end a session on
// another server's node, as a waiting replica does to a silent leader,
// but nothing beyond: no other node's sessions, no keys outside the
// prefix.
//
// testserver.Consul takes no configuration of its own, so the server is
// started here, from the binary `make testdeps` builds.
func TestConsulACLPolicyLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Consul server")
	}
	var b *bundle
	for _, x := range bundles(t) {
		if x.name == "base" {
			b = x
		}
	}
	if b == nil {
		t.Fatal("the base was not built")
	}
	sts := b.storeSet(t)
	own, err := consulNodeName(sts, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := consulNodeName(sts, 1)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	job := b.running(t, "Job", "storeconfig")
	_, conf, err := b.mountedFile(&job.w.pod.Spec, job.c, job.flags["config"])
	if err != nil {
		t.Fatal(err)
	}

	const management = "9a0e5f2c-4b1d-4e6a-8c3f-2d7b1e0a5c94"
	addr := startACLConsul(t, own, management)
	admin, closeAdmin := consulClient(t, addr, management)
	defer closeAdmin()
	if _, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: "tollgate", Rules: string(rules)}, nil); err != nil {
		t.Fatalf("create the policy of %s: %v", policyFile, err)
	}
	tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{Name: "tollgate"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{peer, "other-0"} {
		if _, err := admin.Catalog().Register(&api.CatalogRegistration{Node: node, Address: "127.0.0.2"}, nil); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	tokenFile, confFile := filepath.Join(dir, "token"), filepath.Join(dir, "tollgate.toml")
	if err := os.WriteFile(tokenFile, []byte(tok.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	kv := fmt.Sprintf("consul://%s?token_file=%s", addr, tokenFile)
	if code, out := runTollgate(t, nil, "storeconfig", "--config", confFile, "--kv", kv, "--prefix", job.flags["prefix"]); code != 0 {
		t.Fatalf("tollgate storeconfig with a token of the shipped policy exited %d:\n%s", code, out)
	}

	c, closeClient := consulClient(t, addr, tok.SecretID)
	defer closeClient()
	session := func(node string) error {
		id, _, err := c.Session().CreateNoChecks(&api.SessionEntry{Node: node, TTL: "10s"}, nil)
		if err != nil {
			return err
		}
		_, err = c.Session().Destroy(id, nil)
		return err
	}
	if err := session(peer); err != nil {
		t.Errorf("the token cannot create and end a session on node %s, another Consul server: %v", peer, err)
	}
	if err := session("other-0"); err == nil {
		t.Errorf("the token may create and end sessions on node other-0, which is none of the Consul servers")
	}
	if _, err := c.KV().Put(&api.KVPair{Key: "other/key", Value: []byte("x")}, nil); err == nil {
		t.Errorf("the token may write other/key, outside the prefix %s/", job.flags["prefix"])
	}
}

// startACLConsul starts a single Consul server named node with ACLs
// enforced and the given management token, and returns its HTTP address.
func startACLConsul(t *testing.T, node, management string) string {
	t.Helper()
	bin := testserver.Binary(t, "consul")
	dir := t.TempDir()
	ports := testserver.FreePorts(t, 4)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	conf := filepath.Join(dir, "acl.hcl")
	hclText := fmt.Sprintf("disable_update_check = true\nperformance {\n  raft_multiplier = 1\n}\nacl {\n  enabled = true\n  default_policy = \"deny\"\n  tokens {\n    initial_management = %q\n  }\n}\n", management)
	if err := os.WriteFile(conf, []byte(hclText), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "consul.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "agent", "-server", "-bootstrap-expect=1", "-node="+node,
		"-data-dir="+filepath.Join(dir, "data"), "-config-file="+conf,
		"-bind=127.0.0.1", "-advertise=127.0.0.1", "-client=127.0.0.1",
		"-http-port="+strconv.Itoa(ports[0]), "-serf-lan-port="+strconv.Itoa(ports[1]),
		"-serf-wan-port="+strconv.Itoa(ports[2]), "-server-port="+strconv.Itoa(ports[3]),
		"-dns-port=-1", "-grpc-port=-1", "-grpc-tls-port=-1", "-log-level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// The server is ready once a consistent read answers, which needs a
	// leader that has set up the ACL system.
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/kv/tollgate-test-ready?consistent", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Consul-Token", management)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return addr
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("consul did not become ready in 60s (last: %v):\n%s", err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// consulClient returns a Consul API client with a token, and a function
// that closes its connections.
func consulClient(t *testing.T, addr, token string) (*api.Client, func()) {
	t.Helper()
	tr := &http.Transport{}
	c, err := api.NewClient(&api.Config{Address: addr, Token: token, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return c, tr.CloseIdleConnections
}
