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

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

const clusterUsage = `Usage: tollgate cluster status [--config FILE] [--kv URL] [--prefix P]

Shows the cluster as the store sees it: the leader and its term, every
live replica with its version, start time and whether it has applied the
latest ACME challenge answers (SYNC), the published configuration version,
the certificates held, the names waiting to be ordered again after a
failure, and an ACME account the leader cannot load or register.

Examples:
  tollgate cluster status --kv consul://127.0.0.1:8500
  tollgate cluster status --config /etc/tollgate/tollgate.toml

Exit codes: 0 a leader is elected, 1 no leader, 2 bad command line, 4 store
unreachable or failing.
`

func clusterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, clusterUsage)
			return nil
		}
		fmt.Fprint(stderr, clusterUsage)
		return fail(exitUsage, errors.New("name a subcommand: status"))
	}
	var f commonFlags
	fs := newFlagSet("cluster status", "", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clusterUsage, "\nFlags:\n"); fs.PrintDefaults() }
	f.register(fs, true)
	if _, err := parseArgs(fs, args[1:], 0, 0); err != nil {
		return err
	}
	t, err := openTarget(ctx, f, false)
	if err != nil {
		return err
	}
	defer t.Close()
	now := time.Now()

	info, lerr := leader.Leader(ctx, t.st, t.prefix+"/"+leader.DefaultKey)
	switch {
	case lerr == nil:
		fmt.Fprintf(stdout, "leader:        %s (term %d, since %s, %s ago)\n", info.ID, info.Token, info.Since.Format(time.RFC3339), now.Sub(info.Since).Round(time.Second))
	case errors.Is(lerr, leader.ErrNoLeader):
		fmt.Fprintln(stdout, "leader:        none")
	default:
		return storeErr(lerr)
	}
	cfgLine := "none published (replicas started with --config use their file)"
	if t.cfg != nil && f.config == "" {
		cfgLine = t.source
	} else if f.config != "" {
		cfgLine = "from " + f.config + " (not read from the store)"
	}
	fmt.Fprintf(stdout, "configuration: %s\n", cfgLine)

	nodes, err := leader.Nodes(ctx, t.st, t.prefix+"/"+leader.DefaultRegistryPrefix)
	if err != nil {
		return storeErr(err)
	}
	keys := acme.NewKeys(t.prefix)
	challenges, err := t.st.List(ctx, keys.Prefix()+"challenges/")
	if err != nil {
		return storeErr(err)
	}
	var latest int64
	for _, kv := range challenges.KVs {
		latest = max(latest, kv.Revision)
	}
	slices.SortFunc(nodes, func(a, b leader.NodeRecord) int { return strings.Compare(a.ID, b.ID) })
	fmt.Fprintf(stdout, "replicas:      %d\n", len(nodes))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tROLE\tVERSION\tSTARTED\tAPPLIED\tSYNC")
	for _, n := range nodes {
		role := "follower"
		if lerr == nil && n.ID == info.ID {
			role = "leader"
		}
		sync := "yes"
		if n.Applied < latest {
			sync = fmt.Sprintf("behind (%d < %d)", n.Applied, latest)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s ago\t%d\t%s\n", n.ID, role, orDash(n.Version), now.Sub(n.Started).Round(time.Second), n.Applied, sync)
	}
	tw.Flush()

	kr, note := checkKeyring(t)
	certs, account, err := loadCerts(ctx, t.st, keys, kr)
	if err != nil {
		return storeErr(err)
	}
	var expiring, expired, failing, unusable, ordering int
	for _, c := range certs {
		switch {
		case c.rec != nil && now.After(c.rec.NotAfter):
			expired++
		case c.rec != nil && c.rec.NotAfter.Sub(now) < 7*24*time.Hour:
			expiring++
		}
		bad := c.err != nil && c.misplaced == ""
		if bad {
			unusable++
		}
		if bad || c.state != nil && c.state.Failures > 0 {
			failing++
		}
		if c.order != nil {
			ordering++
		}
	}
	fmt.Fprintf(stdout, "certificates:  %d (%d expire within 7 days, %d expired); %d order(s) in flight; %d name(s) failing (%d with an unusable record)\n",
		countRecords(certs), expiring, expired, ordering, failing, unusable)
	if note != "" {
		fmt.Fprintf(stdout, "               %s\n", note)
	}
	if line := pendingRetries(certs, now); line != "" {
		fmt.Fprintf(stdout, "retries:       %s\n", line)
	}
	if line := accountLine(account, now); line != "" {
		fmt.Fprintf(stdout, "account:       %s\n", line)
	}
	if lerr != nil {
		return fail(exitFailure, errors.New("no leader: no certificate is ordered or renewed until a replica is elected"))
	}
	return nil
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
// flight, by main domain, sorted. Each record is checked as replicas
// check it before serving it, its private key opened with kr (nil leaves
// the private keys unchecked). It returns apart the record of the leader's
// failure to load the ACME account, if there is one (see accountLine).
func loadCerts(ctx context.Context, st kvstore.Store, keys acme.Keys, kr *acme.Keyring) ([]*certInfo, *kvstore.KV, error) {
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
				c.rec, c.err = acme.CheckCert(kr, kv.Key, kv.Value)
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
func pendingRetries(certs []*certInfo, now time.Time) string {
	var waiting []*certInfo
	for _, c := range certs {
		if s := c.state; s != nil && s.Failures > 0 && !s.GaveUp {
			waiting = append(waiting, c)
		}
	}
	slices.SortFunc(waiting, func(a, b *certInfo) int { return a.state.NextAttempt.Compare(b.state.NextAttempt) })
	var parts []string
	for i, c := range waiting {
		if i == maxRetriesShown {
			parts = append(parts, fmt.Sprintf("and %d more (tollgate certs list)", len(waiting)-i))
			break
		}
		in := "now"
		if d := c.state.NextAttempt.Sub(now); d > 0 {
			in = "in " + d.Round(time.Second).String()
		}
		parts = append(parts, fmt.Sprintf("%s %s (%d failure(s))", c.domain, in, c.state.Failures))
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
