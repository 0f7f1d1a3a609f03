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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/tollgate-proxy/tollgate/config"
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
		sts := b.storeSet(t)
		repo, _, _ := splitImage(sts.Spec.Template.Spec.Containers[0].Image)
		if !strings.HasSuffix(repo, "/"+st.scheme) {
			t.Errorf("--kv %q is a %s store, but StatefulSet %s runs %s", st.kv, st.scheme, sts.Name, repo)
		}
		serve := b.running(t, "Deployment", "serve")
		job := b.running(t, "Job", "storeconfig")
		switch st.scheme {
		case "consul":
			b.checkConsulEndpoint(t, st, sts)
			for _, tc := range []tollgateContainer{serve, job} {
				b.checkCredential(t, tc, "ACL token", st.consul.TokenFile, "CONSUL_HTTP_TOKEN")
			}
			if st.consul.TokenFile == "" && !consulReadsToken(t, "CONSUL_HTTP_TOKEN") {
				t.Errorf("the consul backend no longer takes its ACL token from CONSUL_HTTP_TOKEN; update the manifests and README.md")
			}
		case "etcd":
			b.checkEtcdEndpoints(t, st, sts)
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
		}
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
		want := aclRule{Name: st.prefix + "/", Policy: "write"}
		if !slices.Equal(policy.KeyPrefix, []aclRule{want}) {
			t.Errorf("%s: key_prefix rules %+v, want exactly %+v: all of tollgate's keys, and nothing else", policyFile, policy.KeyPrefix, want)
		}
		// Sessions belong to the node of the agent tollgate talks to: the
		// Consul servers, named after their pods.
		sts := b.storeSet(t)
		c := &sts.Spec.Template.Spec.Containers[0]
		if !slices.Contains(c.Args, "-node=$(POD_NAME)") {
			t.Errorf("StatefulSet %s: the Consul servers are not named after their pods (-node=$(POD_NAME)); session_prefix relies on it", sts.Name)
		}
		for i := range replicas(sts.Spec.Replicas) {
			node := fmt.Sprintf("%s-%d", sts.Name, i)
			if !slices.ContainsFunc(policy.SessionPrefix, func(r aclRule) bool { return strings.HasPrefix(node, r.Name) && r.Policy == "write" }) {
				t.Errorf("%s: no session_prefix rule lets tollgate write sessions on node %s: it could not take locks there", policyFile, node)
			}
		}
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

func TestEtcdMembers(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		if b.store(t).scheme != "etcd" {
			t.Skip("not an etcd store")
		}
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
				if repo == b.image && b.shipped {
					continue // the placeholder README.md tells to replace
				}
				t.Errorf("%s: container %s: image %q is not pinned to a version", w, c.Name, c.Image)
			}
		}
	})
}
