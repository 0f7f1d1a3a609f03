package router

import (
	"context"
	"time"
)

// Inspector supplies the API's views of what the router does not own:
// the certificates in the store and the cluster. The same views are what
// the CLI prints with -o json, so a script reads one shape from either.
type Inspector interface {
	// Certificates lists every certificate the store holds or is
	// ordering, sorted by name.
	Certificates(ctx context.Context) ([]CertificateInfo, error)
	// Cluster reports the leader, the replicas and their sync state.
	Cluster(ctx context.Context) (ClusterInfo, error)
}

// CertificateInfo is one certificate (or a name waiting for one) as
// /api/certificates and "tollgate certs list -o json" show it. It never
// holds key material.
type CertificateInfo struct {
	// Name is the main domain, which names the certificate.
	Name string `json:"name"`
	// SANs are all the certificate's names, the main one first.
	SANs []string `json:"sans"`
	// Source is where it comes from: "acme".
	Source string `json:"source"`
	// Key and Revision locate the record in the store; empty when no
	// certificate is stored yet.
	Key      string `json:"key,omitempty"`
	Revision int64  `json:"revision,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
	// Serial is the serial number in hex.
	Serial    string    `json:"serial,omitempty"`
	KeyType   string    `json:"keyType,omitempty"`
	CA        string    `json:"ca,omitempty"`
	NotBefore time.Time `json:"notBefore,omitzero"`
	NotAfter  time.Time `json:"notAfter,omitzero"`
	// Status is one word: "ok", "renewalDue", "ordering", "failing",
	// "gaveUp", "unusable" (the stored record cannot be served),
	// "misplaced" or "missing" (no certificate stored yet).
	Status string `json:"status"`
	// StatusText says the same in a sentence, with what to do.
	StatusText string `json:"statusText"`
	// Error is why a stored record cannot be served.
	Error   string       `json:"error,omitempty"`
	Renewal *RenewalInfo `json:"renewal,omitempty"`
}

// RenewalInfo is a certificate's renewal schedule and failure state.
type RenewalInfo struct {
	// RenewAt is when the leader renews it.
	RenewAt time.Time `json:"renewAt,omitzero"`
	// WindowStart and WindowEnd are the window the CA suggested (ARI).
	WindowStart time.Time `json:"windowStart,omitzero"`
	WindowEnd   time.Time `json:"windowEnd,omitzero"`
	// Requested is set while an operator's "certs renew" is pending.
	Requested bool `json:"requested,omitempty"`
	// ARIFailures counts failed renewal-information queries in a row.
	ARIFailures  int    `json:"ariFailures,omitempty"`
	ARILastError string `json:"ariLastError,omitempty"`
	// Failures counts failed orders in a row; NextAttempt is when the
	// leader tries again (the backoff).
	Failures    int       `json:"failures,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	GaveUp      bool      `json:"gaveUp,omitempty"`
	// OrderingSince is when the order in flight started.
	OrderingSince time.Time `json:"orderingSince,omitzero"`
}

// ClusterInfo is the cluster as /api/cluster and "tollgate cluster status
// -o json" show it.
type ClusterInfo struct {
	// Leader is nil while no replica leads.
	Leader *LeaderInfo `json:"leader"`
	// Configuration says where the configuration in force comes from.
	Configuration string `json:"configuration"`
	// LatestRevision is the store revision of the newest ACME challenge
	// answer; a replica that applied less lags behind.
	LatestRevision int64      `json:"latestRevision"`
	Nodes          []NodeInfo `json:"nodes"`
	// Certificates counts the certificates by state.
	Certificates CertificateCounts `json:"certificates"`
	// Account is the ACME account problem the leader reported, if any.
	Account string `json:"account,omitempty"`
}

// LeaderInfo is the elected leader.
type LeaderInfo struct {
	Node string `json:"node"`
	// Term is the fencing token of its term.
	Term  int64     `json:"term"`
	Since time.Time `json:"since"`
}

// NodeInfo is one live replica.
type NodeInfo struct {
	ID string `json:"id"`
	// Role is "leader" or "follower".
	Role    string    `json:"role"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// AppliedRevision is the newest challenge revision it applied; Lag
	// is LatestRevision minus it (0 when in sync).
	AppliedRevision int64 `json:"appliedRevision"`
	Lag             int64 `json:"lag"`
	InSync          bool  `json:"inSync"`
	// ChallengesAnswered counts the ACME validation requests (HTTP-01 and
	// TLS-ALPN-01) the replica answered since it started, as it last
	// reported them: a replica that never answers while certificates are
	// issued may not be reached by the CA. LastChallengeAnswered is when
	// it answered the latest, for the domain LastChallengeName.
	ChallengesAnswered    int64     `json:"challengesAnswered,omitzero"`
	LastChallengeAnswered time.Time `json:"lastChallengeAnswered,omitzero"`
	LastChallengeName     string    `json:"lastChallengeName,omitzero"`
}

// CertificateCounts summarises the certificates.
type CertificateCounts struct {
	Total    int `json:"total"`
	Expiring int `json:"expiringWithin7Days"`
	Expired  int `json:"expired"`
	Ordering int `json:"ordering"`
	Failing  int `json:"failing"`
	Unusable int `json:"unusable"`
}
