package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// serveFlags are serve's flags.
type serveFlags struct {
	commonFlags
	nodeID string
}

// cluster is this replica's membership: the leader election and the node
// registry, both under the prefix.
type cluster struct {
	node     string
	elector  *leader.Elector
	registry *leader.Registry
}

// nodeID is the replica's id in the cluster: the one given, else the
// Pod's name, else the host name.
func nodeID(given string) string {
	host, _ := os.Hostname()
	return cmp.Or(given, os.Getenv("POD_NAME"), host, "tollgate")
}

func joinCluster(st kvstore.Store, prefix, given string, log *slog.Logger) (*cluster, error) {
	id := nodeID(given)
	if _, err := kvstore.Join(id); err != nil {
		return nil, fmt.Errorf("node id %q: %w; give --node-id", id, err)
	}
	node := leader.Node{ID: id}
	e, err := leader.New(leader.Config{Store: st, Key: prefix + "/" + leader.DefaultKey, Node: node, Logger: log})
	if err != nil {
		return nil, err
	}
	r, err := leader.NewRegistry(leader.RegistryConfig{
		Store: st, Prefix: prefix + "/" + leader.DefaultRegistryPrefix, Logger: log,
		Record: leader.NodeRecord{Node: node, Version: versionString(), Started: time.Now()},
		// The leader waits for every replica to report the revision of
		// each challenge answer before the CA validates it.
		MinInterval: 100 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	return &cluster{node: id, elector: e, registry: r}, nil
}

// collector exports whether this replica leads, and its term's fencing
// token.
func (c *cluster) collector() prometheus.Collector {
	return collectorFuncs{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_leader",
			Help: "1 while this replica is the elected leader, else 0.",
		}, func() float64 {
			if c.elector.Stats().IsLeader {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_leader_term",
			Help: "The fencing token of the term this replica leads, 0 while it does not lead; it grows with each new term.",
		}, func() float64 { return float64(c.elector.Stats().Token) }),
	}
}
