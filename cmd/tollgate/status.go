package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/router"
)

func clusterCmd(a *app) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "cluster",
		Short: "status: the leader, the replicas and their sync state",
		Long: `Shows the cluster as the store sees it ("tollgate cluster status -h").

Exit codes: 0 a leader is elected, 1 no leader, 2 bad command line, 4 store
unreachable or failing.`,
		Example: `  tollgate cluster status --kv consul://127.0.0.1:8500`,
	})
	c.AddCommand(clusterStatusCmd(a))
	return c
}

func clusterStatusCmd(a *app) *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "status [--config FILE] [--kv URL] [--prefix P] [--api URL] [-o table|json|yaml]",
		Short: "the leader, the replicas and their sync state",
		Long: `Shows the cluster as the store sees it: the leader and its term, every
live replica with its version, start time and whether it has applied the
latest ACME challenge answers (SYNC), the published configuration version,
the certificates held, the names waiting to be ordered again after a
failure, and an ACME account the leader cannot load or register. With --api
URL it reads a running replica's API instead of the store; with -o json or
yaml it prints the fields of GET /api/cluster (docs/cli.md).

Exit codes: 0 a leader is elected, 1 no leader, 2 bad command line, 4 store
unreachable or failing (or in use by a running replica: give --api).`,
		Example: `  tollgate cluster status --kv consul://127.0.0.1:8500
  tollgate cluster status --config /etc/tollgate/tollgate.toml
  tollgate cluster status --api http://127.0.0.1:8080 -o json`,
		Args: argsRange(0, 0),
		RunE: runE(func(ctx context.Context, _ []string) error {
			return clusterStatus(ctx, f, a.stdout, a.stderr)
		}),
	}
	f.register(c.Flags())
	return c
}

func clusterStatus(ctx context.Context, f inspectFlags, stdout, stderr io.Writer) error {
	src, err := openInspector(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := src.Cluster(ctx)
	if err != nil {
		return storeErr(err)
	}
	var certs []router.CertificateInfo
	if !f.output.structured() {
		if certs, err = src.Certificates(ctx); err != nil {
			return storeErr(err)
		}
	}
	err = f.output.print(stdout, info, func(w io.Writer) error {
		clusterTable(w, info, certs, time.Now())
		return nil
	})
	if err != nil {
		return err
	}
	if info.Leader == nil {
		return fail(exitFailure, errors.New("no leader: no certificate is ordered or renewed until a replica is elected"))
	}
	return nil
}

// clusterTable prints cluster status's table from the views.
func clusterTable(w io.Writer, info router.ClusterInfo, certs []router.CertificateInfo, now time.Time) {
	if l := info.Leader; l != nil {
		fmt.Fprintf(w, "leader:        %s (term %d, since %s, %s ago)\n", l.Node, l.Term, l.Since.Format(time.RFC3339), now.Sub(l.Since).Round(time.Second))
	} else {
		fmt.Fprintln(w, "leader:        none")
	}
	fmt.Fprintf(w, "configuration: %s\n", info.Configuration)
	fmt.Fprintf(w, "replicas:      %d\n", len(info.Nodes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tROLE\tVERSION\tSTARTED\tAPPLIED\tSYNC\tANSWERED")
	for _, n := range info.Nodes {
		sync := "yes"
		if !n.InSync {
			sync = fmt.Sprintf("behind (%d < %d)", n.AppliedRevision, info.LatestRevision)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s ago\t%d\t%s\t%s\n", n.ID, n.Role, orDash(n.Version), now.Sub(n.Started).Round(time.Second), n.AppliedRevision, sync, answeredCell(n, now))
	}
	tw.Flush()
	c := info.Certificates
	fmt.Fprintf(w, "certificates:  %d (%d expire within 7 days, %d expired); %d order(s) in flight; %d name(s) failing (%d with an unusable record)\n",
		c.Total, c.Expiring, c.Expired, c.Ordering, c.Failing, c.Unusable)
	if line := pendingRetries(certs, now); line != "" {
		fmt.Fprintf(w, "retries:       %s\n", line)
	}
	if info.Account != "" {
		fmt.Fprintf(w, "account:       %s\n", info.Account)
	}
}

// answeredCell is the ANSWERED column: how many validation requests the
// replica answered and how long ago the latest, e.g. "3 (12s ago)".
func answeredCell(n router.NodeInfo, now time.Time) string {
	if n.ChallengesAnswered == 0 {
		return "0"
	}
	if n.LastChallengeAnswered.IsZero() {
		return fmt.Sprint(n.ChallengesAnswered)
	}
	return fmt.Sprintf("%d (%s ago)", n.ChallengesAnswered, max(0, now.Sub(n.LastChallengeAnswered)).Round(time.Second))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// certInfo is what the store holds about one main domain.
type certInfo struct {
	domain string
	kv     *kvstore.KV
	rec    *acme.CertRecord
	err    error // the record's, when it cannot be served (see acme.CheckCert)
	// misplaced holds the key a record outside its shard belongs at.
	misplaced string
	state     *acme.DomainState
	order     *acme.OrderRecord
}

func countRecords(cs []*certInfo) int {
	n := 0
	for _, c := range cs {
		if c.kv != nil && c.misplaced == "" {
			n++
		}
	}
	return n
}

// loadCerts reads every certificate record, failure state and order in
// flight, by main domain, sorted. Each record is checked with check (see
// storeInspector.checker). It returns apart the record of the leader's
// failure to load the ACME account, if there is one (see accountLine).
func loadCerts(ctx context.Context, st kvstore.Store, keys acme.Keys, check func(kv kvstore.KV) (*acme.CertRecord, error)) ([]*certInfo, *kvstore.KV, error) {
	var account *kvstore.KV
	by := map[string]*certInfo{}
	get := func(d string) *certInfo {
		if by[d] == nil {
			by[d] = &certInfo{domain: d}
		}
		return by[d]
	}
	for _, dir := range []string{"certs/", "state/", "orders/"} {
		l, err := st.List(ctx, keys.Prefix()+dir)
		if err != nil {
			return nil, nil, fmt.Errorf("list %s%s: %w", keys.Prefix(), dir, err)
		}
		for _, kv := range l.KVs {
			p, ok := keys.Parse(kv.Key)
			if !ok {
				if want, bad := keys.Misplaced(kv.Key); bad {
					c := get(kv.Key)
					c.kv, c.misplaced = &kv, want
				}
				continue
			}
			if p.Dir == "state" && p.Name == acme.AccountStateName {
				account = &kv // the account's, not a name's
				continue
			}
			c := get(p.Name)
			switch p.Dir {
			case "certs":
				c.kv = &kv
				c.rec, c.err = check(kv)
			case "state":
				var s acme.DomainState
				if decodeInto(kv.Value, &s) == nil {
					c.state = &s
				}
			case "orders":
				var o acme.OrderRecord
				if decodeInto(kv.Value, &o) == nil {
					c.order = &o
				}
			}
		}
	}
	out := make([]*certInfo, 0, len(by))
	for _, c := range by {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *certInfo) int { return strings.Compare(a.domain, b.domain) })
	return out, account, nil
}

// maxRetriesShown bounds the names cluster status lists as waiting for a
// retry.
const maxRetriesShown = 5

// pendingRetries lists the names waiting to be ordered again after a
// failure, soonest first: "a.example in 3m0s (2 failures), …"; "" when
// none is.
func pendingRetries(certs []router.CertificateInfo, now time.Time) string {
	var waiting []*router.RenewalInfo
	var names []string
	for _, c := range certs {
		if r := c.Renewal; r != nil && r.Failures > 0 && !r.GaveUp {
			waiting = append(waiting, r)
			names = append(names, c.Name)
		}
	}
	idx := make([]int, len(waiting))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return waiting[a].NextAttempt.Compare(waiting[b].NextAttempt) })
	var parts []string
	for n, i := range idx {
		if n == maxRetriesShown {
			parts = append(parts, fmt.Sprintf("and %d more (tollgate certs list)", len(idx)-n))
			break
		}
		in := "now"
		if d := waiting[i].NextAttempt.Sub(now); d > 0 {
			in = "in " + d.Round(time.Second).String()
		}
		parts = append(parts, fmt.Sprintf("%s %s (%d failure(s))", names[i], in, waiting[i].Failures))
	}
	return strings.Join(parts, ", ")
}

// accountLine describes a failure of the leader to load or register the
// ACME account, which holds every order back, from its state record (nil:
// none); "" when there is none.
func accountLine(kv *kvstore.KV, now time.Time) string {
	if kv == nil {
		return ""
	}
	var s acme.DomainState
	if decodeInto(kv.Value, &s) != nil {
		return "failing (the failure record does not decode)"
	}
	in := "now"
	if d := s.NextAttempt.Sub(now); d > 0 {
		in = "in " + d.Round(time.Second).String()
	}
	return fmt.Sprintf("failing: no order is placed until it loads (%d attempt(s), next %s): %s", s.Failures, in, s.LastError)
}
