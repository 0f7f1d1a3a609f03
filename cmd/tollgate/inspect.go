package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
	"github.com/tollgate-proxy/tollgate/router"
)

// inspector is what certs list, certs show and cluster status read: the
// views the API serves, from the store or from a replica's API.
type inspector interface {
	router.Inspector
	// Certificate is one certificate by its main domain; errNoSuchCert
	// when nothing is stored for it.
	Certificate(ctx context.Context, name string) (router.CertificateInfo, error)
}

// errNoSuchCert: nothing is stored for a name.
var errNoSuchCert = errors.New("nothing stored")

// storeInspector is the inspector over the store itself.
type storeInspector struct {
	st     kvstore.Store
	prefix string
	// kr opens the private keys to check that each record can be served;
	// nil leaves them unchecked.
	kr *acme.Keyring
	// configuration says where the configuration in force comes from.
	configuration string
	now           func() time.Time

	// checked holds the outcome of opening each certificate record, by
	// key, for the revision read: a replica's API reads every record at
	// each dashboard refresh, and opening a private key is the costly
	// part. Replaced by each listing, so deleted records leave it.
	mu      sync.Mutex
	checked map[string]checkedCert
}

// checkedCert is a certificate record's check at one revision.
type checkedCert struct {
	rev int64
	rec *acme.CertRecord
	err error
}

// load reads the certificates, checking each record as replicas check it
// before serving it (its private key opened with kr; nil leaves the keys
// unchecked), once per revision.
func (s *storeInspector) load(ctx context.Context) ([]*certInfo, *kvstore.KV, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]checkedCert{}
	certs, account, err := loadCerts(ctx, s.st, acme.NewKeys(s.prefix), func(kv kvstore.KV) (*acme.CertRecord, error) {
		c, ok := s.checked[kv.Key]
		if !ok || c.rev != kv.Revision {
			c.rev = kv.Revision
			c.rec, c.err = acme.CheckCert(s.kr, kv.Key, kv.Value)
		}
		next[kv.Key] = c
		return c.rec, c.err
	})
	if err == nil {
		s.checked = next
	}
	return certs, account, err
}

var _ inspector = (*storeInspector)(nil)

func (s *storeInspector) Certificates(ctx context.Context) ([]router.CertificateInfo, error) {
	certs, _, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]router.CertificateInfo, 0, len(certs))
	for _, c := range certs {
		out = append(out, certView(c, now))
	}
	return out, nil
}

func (s *storeInspector) Certificate(ctx context.Context, name string) (router.CertificateInfo, error) {
	all, err := s.Certificates(ctx)
	if err != nil {
		return router.CertificateInfo{}, err
	}
	for _, c := range all {
		if c.Name == name {
			return c, nil
		}
	}
	return router.CertificateInfo{}, fmt.Errorf("%s: %w", name, errNoSuchCert)
}

func (s *storeInspector) Cluster(ctx context.Context) (router.ClusterInfo, error) {
	now := s.now()
	out := router.ClusterInfo{Configuration: s.configuration, Nodes: []router.NodeInfo{}}
	info, err := leader.Leader(ctx, s.st, s.prefix+"/"+leader.DefaultKey)
	switch {
	case err == nil:
		out.Leader = &router.LeaderInfo{Node: info.ID, Term: info.Token, Since: info.Since}
	case !errors.Is(err, leader.ErrNoLeader):
		return out, err
	}
	nodes, err := leader.Nodes(ctx, s.st, s.prefix+"/"+leader.DefaultRegistryPrefix)
	if err != nil {
		return out, err
	}
	keys := acme.NewKeys(s.prefix)
	challenges, err := s.st.List(ctx, keys.Prefix()+"challenges/")
	if err != nil {
		return out, err
	}
	for _, kv := range challenges.KVs {
		out.LatestRevision = max(out.LatestRevision, kv.Revision)
	}
	slices.SortFunc(nodes, func(a, b leader.NodeRecord) int { return strings.Compare(a.ID, b.ID) })
	for _, n := range nodes {
		role := "follower"
		if out.Leader != nil && n.ID == out.Leader.Node {
			role = "leader"
		}
		out.Nodes = append(out.Nodes, router.NodeInfo{
			ID: n.ID, Role: role, Version: n.Version, Started: n.Started,
			AppliedRevision: n.Applied, Lag: max(0, out.LatestRevision-n.Applied), InSync: n.Applied >= out.LatestRevision,
			ChallengesAnswered: n.Answered, LastChallengeAnswered: n.LastAnswered, LastChallengeName: n.LastAnsweredName,
		})
	}
	certs, account, err := s.load(ctx)
	if err != nil {
		return out, err
	}
	out.Certificates = countCerts(certs, now)
	out.Account = accountLine(account, now)
	return out, nil
}

// countCerts counts the certificates by state for cluster status.
func countCerts(certs []*certInfo, now time.Time) router.CertificateCounts {
	n := router.CertificateCounts{Total: countRecords(certs)}
	for _, c := range certs {
		switch {
		case c.rec != nil && now.After(c.rec.NotAfter):
			n.Expired++
		case c.rec != nil && c.rec.NotAfter.Sub(now) < 7*24*time.Hour:
			n.Expiring++
		}
		bad := c.err != nil && c.misplaced == ""
		if bad {
			n.Unusable++
		}
		if bad || c.state != nil && c.state.Failures > 0 {
			n.Failing++
		}
		if c.order != nil {
			n.Ordering++
		}
	}
	return n
}

// certView is the shared view of what the store holds about one name.
func certView(c *certInfo, now time.Time) router.CertificateInfo {
	v := router.CertificateInfo{
		Name: c.domain, SANs: []string{c.domain}, Source: "acme",
		Status: statusOf(c, now), StatusText: stateOf(c, now),
	}
	if c.kv != nil {
		v.Key, v.Revision = c.kv.Key, c.kv.Revision
	}
	if c.err != nil {
		v.Error = c.err.Error()
	}
	var r router.RenewalInfo
	if rec := c.rec; rec != nil {
		if len(rec.Domains) > 0 {
			v.SANs = slices.Clone(rec.Domains)
		}
		v.Issuer, v.Serial, v.KeyType, v.CA = rec.Issuer, rec.Serial, rec.KeyType, rec.CA
		v.NotBefore, v.NotAfter = rec.NotBefore, rec.NotAfter
		r.RenewAt = rec.RenewAt()
		if a := rec.ARI; a != nil {
			r.WindowStart, r.WindowEnd, r.Requested = a.WindowStart, a.WindowEnd, a.Requested
			r.ARIFailures, r.ARILastError = a.Failures, a.LastError
		}
	}
	if s := c.state; s != nil {
		r.Failures, r.LastError, r.LastAttempt, r.NextAttempt, r.GaveUp = s.Failures, s.LastError, s.LastAttempt, s.NextAttempt, s.GaveUp
	}
	if c.order != nil {
		r.OrderingSince = c.order.Started
	}
	if r != (router.RenewalInfo{}) {
		v.Renewal = &r
	}
	return v
}

// statusOf is a name's state in one word (router.CertificateInfo.Status).
func statusOf(c *certInfo, now time.Time) string {
	switch {
	case c.misplaced != "":
		return "misplaced"
	case c.err != nil:
		return "unusable"
	case c.state != nil && c.state.GaveUp:
		return "gaveUp"
	case c.state != nil && c.state.Failures > 0:
		return "failing"
	case c.order != nil:
		return "ordering"
	case c.kv == nil:
		return "missing"
	case c.rec != nil && c.rec.RenewAt().Before(now):
		return "renewalDue"
	}
	return "ok"
}
