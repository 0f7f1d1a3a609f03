package acme

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// solver is a lego challenge provider (Present and CleanUp) that writes
// the answer to the store, fenced by the leader's term, for every replica
// to serve, and waits until the live replicas have applied it before
// lego asks the CA to validate.
type solver struct {
	m    *Manager
	ctx  context.Context
	term *leader.Term
	kind string // kindHTTP01 or kindTLSALPN01
}

func (s *solver) key(domain, token string) (string, error) {
	if s.kind == kindHTTP01 {
		return s.m.cfg.Keys.HTTP01(token)
	}
	return s.m.cfg.Keys.TLSALPN01(normalize(domain))
}

// Present implements challenge.Provider.
func (s *solver) Present(domain, token, keyAuth string) error {
	key, err := s.key(domain, token)
	if err != nil {
		return err
	}
	rec := ChallengeRecord{Domain: normalize(domain), Token: token, KeyAuth: keyAuth,
		Node: s.m.cfg.Node, Fence: s.term.Token(), Written: time.Now().UTC()}
	b, _ := json.Marshal(rec)
	rev, err := s.term.Apply(s.ctx, kvstore.PutOp(key, b))
	if err != nil {
		return fmt.Errorf("write %s challenge for %s: %w", s.kind, domain, err)
	}
	s.m.awaitReplicas(s.ctx, rev)
	return nil
}

// CleanUp implements challenge.Provider.
func (s *solver) CleanUp(domain, token, _ string) error {
	key, err := s.key(domain, token)
	if err != nil {
		return err
	}
	if _, err := s.term.Apply(s.ctx, kvstore.DeleteOp(key)); err != nil {
		return fmt.Errorf("delete %s challenge for %s: %w", s.kind, domain, err)
	}
	return nil
}

// awaitReplicas waits until every live replica in the node registry
// reports having applied the store up to rev, at most
// PropagationTimeout; then it proceeds anyway, for a replica that lags
// only fails the validation requests that happen to reach it.
func (m *Manager) awaitReplicas(ctx context.Context, rev int64) {
	if m.cfg.RegistryPrefix == "" || rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PropagationTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for {
		nodes, err := leader.Nodes(ctx, m.cfg.Store, m.cfg.RegistryPrefix)
		if err == nil {
			behind := 0
			for _, n := range nodes {
				if n.Applied < rev {
					behind++
				}
			}
			if behind == 0 {
				m.log.Debug("replicas applied the challenge", "revision", rev, "replicas", len(nodes), "took", time.Since(start))
				return
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				m.log.Warn("not every replica applied the challenge in time; asking the CA to validate anyway",
					"revision", rev, "waited", m.cfg.PropagationTimeout)
			}
			return
		case <-tick.C:
		}
	}
}
