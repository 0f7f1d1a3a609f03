package testserver

import (
	"fmt"
	nethttp "net/http"
	"strconv"
)

// Consul starts a single-node Consul server agent (not -dev: its state is
// on disk, so it survives Restart) and waits until it has elected itself
// leader. Addr is its HTTP address, which also serves the web UI at /ui/.
func Consul(t TB) *Server {
	t.Helper()
	bin := Binary(t, "consul")
	dir := dataDir(t, "consul")
	ports := FreePorts(t, 4)
	http, serfLAN, serfWAN, rpc := ports[0], ports[1], ports[2], ports[3]
	addr := fmt.Sprintf("127.0.0.1:%d", http)
	s := &Server{
		name:    "consul",
		bin:     bin,
		dataDir: dir,
		Addr:    addr,
		args: []string{
			"agent", "-server", "-bootstrap-expect=1", "-node=tollgate-test",
			"-data-dir=" + dir,
			"-bind=127.0.0.1", "-advertise=127.0.0.1", "-client=127.0.0.1",
			"-http-port=" + strconv.Itoa(http),
			"-serf-lan-port=" + strconv.Itoa(serfLAN),
			"-serf-wan-port=" + strconv.Itoa(serfWAN),
			"-server-port=" + strconv.Itoa(rpc),
			"-dns-port=-1", "-grpc-port=-1", "-grpc-tls-port=-1",
			"-log-level=warn", "-ui",
			"-hcl=disable_update_check = true",
			"-hcl=performance { raft_multiplier = 1 }",
		},
		// A leader alone is not enough: KV writes fail until the leader has
		// established itself, which the members endpoint does not show. A
		// consistent KV read only succeeds then.
		ready: httpReady("http://"+addr+"/v1/kv/tollgate-testserver-ready?consistent", nethttp.StatusNotFound, ""),
	}
	return launch(t, s)
}

// Etcd starts a single-member etcd server and waits until it is healthy.
// Addr is its client address. Auto-compaction is off so tests decide when
// history is compacted.
func Etcd(t TB) *Server {
	t.Helper()
	bin := Binary(t, "etcd")
	dir := dataDir(t, "etcd")
	ports := FreePorts(t, 2)
	client, peer := ports[0], ports[1]
	addr := fmt.Sprintf("127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	s := &Server{
		name:    "etcd",
		bin:     bin,
		dataDir: dir,
		Addr:    addr,
		args: []string{
			"--name=tollgate-test", "--data-dir=" + dir,
			"--listen-client-urls=http://" + addr, "--advertise-client-urls=http://" + addr,
			"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=tollgate-test=" + peerURL,
			"--log-level=error",
		},
		ready: httpReady("http://"+addr+"/health", nethttp.StatusOK, `"health":"true"`),
	}
	return launch(t, s)
}
