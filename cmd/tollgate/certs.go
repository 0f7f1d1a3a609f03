package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/router"
)

const certsLong = `Works on the certificates in the store. Private keys are never printed.

list and show read the store, or with --api URL a running replica's API
(its [api] entry point): the embedded store is held by the replica that
runs on it, and with --config FILE naming an [api] section they read that
API on their own. -o json or yaml prints the same fields as the API
(docs/cli.md).

Exit codes: 0 success, 1 failure (no such certificate, the CA refused), 2
bad command line, 3 invalid configuration, 4 store unreachable or failing.`

func certsCmd(a *app) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "certs",
		Short: "list|show|renew|revoke|delete|import certificates",
		Long:  certsLong,
		Example: `  tollgate certs list --kv consul://127.0.0.1:8500
  tollgate certs show --kv etcd://127.0.0.1:2379 example.com
  tollgate certs renew --kv consul://127.0.0.1:8500 example.com
  tollgate certs revoke --config tollgate.toml --reason keyCompromise example.com`,
	})
	c.AddCommand(certsListCmd(a), certsShowCmd(a), certsOneCmd(a, "renew"), certsOneCmd(a, "revoke"), certsOneCmd(a, "delete"), certsImportCmd(a))
	return c
}

func certsListCmd(a *app) *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "list [--config FILE] [--kv URL] [--prefix P] [--api URL] [-o table|json|yaml]",
		Short: "every certificate: names, expiry, issuer, and the name's state",
		Long: `Lists every certificate in the store: its names, expiry, issuer, and the
name's state (ordering, failing, gave up), and the names that wait for a
certificate. With -o json or yaml: a list of certificates, the fields of
GET /api/certificates (docs/cli.md).

Exit codes: 0 success, 2 bad command line, 3 invalid configuration, 4
store unreachable or failing (or in use by a running replica: give --api).`,
		Example: `  tollgate certs list --kv consul://127.0.0.1:8500
  tollgate certs list --config /etc/tollgate/tollgate.toml -o json
  tollgate certs list --api http://127.0.0.1:8080`,
		Args: argsRange(0, 0),
		RunE: runE(func(ctx context.Context, _ []string) error {
			return certsList(ctx, f, a.stdout, a.stderr)
		}),
	}
	f.register(c.Flags())
	return c
}

func certsShowCmd(a *app) *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "show NAME [--config FILE] [--kv URL] [--prefix P] [--api URL] [-o table|json|yaml]",
		Short: "one certificate, its failure state and its order in flight",
		Long: `Shows one certificate: where it is stored, its state, its names, issuer,
validity and renewal schedule, its failure state and its order in flight,
and (read from the store) the record with its private key hidden. NAME is
the main domain. With -o json or yaml: the fields of GET
/api/certificates/NAME (docs/cli.md).

Exit codes: 0 success, 1 nothing stored for NAME, 2 bad command line, 3
invalid configuration, 4 store unreachable or failing.`,
		Example: `  tollgate certs show --kv etcd://127.0.0.1:2379 example.com
  tollgate certs show --api http://127.0.0.1:8080 example.com -o yaml`,
		Args: argsRange(1, 1),
		RunE: runE(func(ctx context.Context, args []string) error {
			name, err := certName(args[0])
			if err != nil {
				return err
			}
			return certsShow(ctx, f, name, a.stdout, a.stderr)
		}),
	}
	f.register(c.Flags())
	return c
}

// certsOneHelp are renew's, revoke's and delete's short help, description
// and examples.
var certsOneHelp = map[string][3]string{
	"renew": {"make the leader renew NAME now (within seconds)",
		`Makes the leader renew NAME now (within seconds): the record is marked for
renewal and the leader orders a new certificate for it. NAME is the main
domain.`,
		`  tollgate certs renew --kv consul://127.0.0.1:8500 example.com`},
	"revoke": {"revoke NAME at the CA, then delete its record",
		`Revokes NAME at the CA with the stored account (needs the encryption key),
then, unless --keep, deletes the record so that the leader orders a new
certificate. NAME is the main domain.`,
		`  tollgate certs revoke --config tollgate.toml --reason keyCompromise example.com
  tollgate certs revoke --config tollgate.toml --keep example.com`},
	"delete": {"delete NAME's record and failure state",
		`Deletes NAME's record and failure state; the leader orders it again if the
configuration still wants it. NAME is the main domain.`,
		`  tollgate certs delete --kv consul://127.0.0.1:8500 example.com`},
}

func certsOneCmd(a *app, cmd string) *cobra.Command {
	var f commonFlags
	var reason string
	var keep bool
	h := certsOneHelp[cmd]
	c := &cobra.Command{
		Use:   cmd + " NAME [--config FILE] [--kv URL] [--prefix P]",
		Short: h[0],
		Long: h[1] + `

Exit codes: 0 success, 1 failure (no such certificate, the CA refused), 2
bad command line, 3 invalid configuration, 4 store unreachable or failing.`,
		Example: h[2],
		Args:    argsRange(1, 1),
		RunE: runE(func(ctx context.Context, args []string) error {
			return certsOne(ctx, cmd, args[0], f, reason, keep, a.stdout)
		}),
	}
	f.register(c.Flags(), true)
	if cmd == "revoke" {
		c.Flags().StringVar(&reason, "reason", "unspecified", "revocation `reason`: unspecified, keyCompromise, superseded, cessationOfOperation or affiliationChanged")
		c.Flags().BoolVar(&keep, "keep", false, "keep the revoked record in the store (it is still served until replaced)")
	}
	return c
}

// certName is the main domain arg names, lower case without a final dot.
func certName(arg string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(arg, "."))
	if err := config.CheckHostname(name); err != nil {
		return "", fail(exitUsage, fmt.Errorf("%q: %w", arg, err))
	}
	return name, nil
}

// decodeInto decodes a small JSON record.
func decodeInto(b []byte, v any) error {
	if len(b) > 1<<20 {
		return errors.New("record larger than 1 MiB")
	}
	return json.Unmarshal(b, v)
}

// stateOf describes a name's state in a word or two.
func stateOf(c *certInfo, now time.Time) string {
	var parts []string
	switch {
	case c.misplaced != "":
		parts = append(parts, "misplaced, not served: belongs at "+c.misplaced+"; delete it (tollgate kv get shows it)")
	case c.err != nil:
		parts = append(parts, "failing: stored record unusable, the leader orders it again (certs show says why)")
	}
	if c.order != nil {
		parts = append(parts, "ordering since "+c.order.Started.Format(time.RFC3339))
	}
	if s := c.state; s != nil && s.Failures > 0 {
		switch {
		case s.GaveUp:
			parts = append(parts, fmt.Sprintf("gave up after %d failures", s.Failures))
		default:
			parts = append(parts, fmt.Sprintf("%d failure(s), next attempt in %s", s.Failures, s.NextAttempt.Sub(now).Round(time.Second)))
		}
	}
	if c.rec != nil && c.err == nil && c.rec.RenewAt().Before(now) && c.order == nil {
		parts = append(parts, "renewal due")
	}
	if c.rec != nil && c.rec.ARI != nil && c.rec.ARI.Failures > 0 {
		parts = append(parts, fmt.Sprintf("renewal information unavailable (%d time(s); asked again in %s; renews on its own schedule)",
			c.rec.ARI.Failures, c.rec.ARI.CheckAgain.Sub(now).Round(time.Second)))
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, "; ")
}

func certsList(ctx context.Context, f inspectFlags, stdout, stderr io.Writer) error {
	src, err := openInspector(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer src.Close()
	certs, err := src.Certificates(ctx)
	if err != nil {
		return storeErr(err)
	}
	if certs == nil {
		certs = []router.CertificateInfo{}
	}
	err = f.output.print(stdout, certs, func(w io.Writer) error { return certsTable(w, certs, time.Now()) })
	if err != nil {
		return err
	}
	if t := src.t; t != nil && !f.output.structured() {
		n := 0
		for _, c := range certs {
			if c.Key != "" && c.Status != "misplaced" {
				n++
			}
		}
		fmt.Fprintf(stderr, "%d certificate(s) in %s under %s\n", n, t.endpoint, acme.NewKeys(t.prefix).Prefix())
	}
	return nil
}

// certsTable prints certs list's table.
func certsTable(w io.Writer, certs []router.CertificateInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tOTHER NAMES\tNOT AFTER\tDAYS LEFT\tISSUER\tSTATE")
	for _, c := range certs {
		others, notAfter, left, issuer := "-", "-", "-", "-"
		if !c.NotAfter.IsZero() {
			if len(c.SANs) > 1 {
				others = strings.Join(c.SANs[1:], ",")
			}
			notAfter = c.NotAfter.UTC().Format(time.RFC3339)
			left = fmt.Sprintf("%.0f", c.NotAfter.Sub(now).Hours()/24)
			issuer = orDash(c.Issuer)
		} else if c.Key == "" {
			notAfter = "(no certificate)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, others, notAfter, left, issuer, c.StatusText)
	}
	return tw.Flush()
}

// checkKeyring returns the keyring that opens the private keys of the
// configuration t found, for the commands that check each record can be
// served, or nil and a note saying that the keys were not checked.
func checkKeyring(t *target) (*acme.Keyring, string) {
	const unchecked = "private keys not checked: "
	if t.cfg == nil || t.cfg.ACME == nil {
		return nil, unchecked + "the configuration has no [acme] section (give --config with the replicas' file)"
	}
	kr, err := loadKeyring(t.cfg.ACME)
	if err != nil {
		return nil, unchecked + err.Error()
	}
	return kr, ""
}

// certsOne runs renew, delete or revoke on one name.
func certsOne(ctx context.Context, cmd, arg string, f commonFlags, reason string, keep bool, stdout io.Writer) error {
	name, err := certName(arg)
	if err != nil {
		return err
	}
	var code uint
	if cmd == "revoke" {
		var ok bool
		if code, ok = acme.RevocationReason(reason); !ok {
			return fail(exitUsage, fmt.Errorf("--reason %q: want unspecified, keyCompromise, superseded, cessationOfOperation or affiliationChanged", reason))
		}
	}
	t, err := openTarget(ctx, f, cmd == "revoke")
	if err != nil {
		return err
	}
	defer t.Close()
	keys := acme.NewKeys(t.prefix)
	certKey, _ := keys.Cert(name)
	notFound := func(err error) error {
		if errors.Is(err, acme.ErrNoCertificate) {
			return fail(exitFailure, fmt.Errorf("no certificate for %s at %s (the main domain names it: see tollgate certs list)", name, certKey))
		}
		return storeErr(err)
	}
	switch cmd {
	case "renew":
		rec, err := acme.RequestRenewal(ctx, t.st, keys, name)
		if err != nil {
			return notFound(err)
		}
		fmt.Fprintf(stdout, "renewal of %s (serial %s, expires %s) requested: the leader renews it now; follow with: tollgate certs show %s\n",
			name, rec.Serial, rec.NotAfter.UTC().Format(time.RFC3339), name)
	case "delete":
		if _, err := acme.DeleteCertificate(ctx, t.st, keys, name, 0); err != nil {
			return notFound(err)
		}
		fmt.Fprintf(stdout, "deleted %s; replicas stop serving it within a second, and the leader orders it again if the configuration still wants it\n", certKey)
	case "revoke":
		kr, err := rotationKeyring(t.cfg, t.source)
		if err != nil {
			return err
		}
		rec, rev, err := acme.Revoke(ctx, t.st, keys, kr, t.cfg.ACME, name, code)
		if err != nil {
			if errors.Is(err, acme.ErrNoCertificate) {
				return notFound(err)
			}
			return fail(exitFailure, err)
		}
		fmt.Fprintf(stdout, "revoked %s (serial %s) at %s, reason %s\n", name, rec.Serial, rec.CA, reason)
		if keep {
			return nil
		}
		if _, err := acme.DeleteCertificate(ctx, t.st, keys, name, rev); err != nil {
			if errors.Is(err, acme.ErrNoCertificate) || errors.Is(err, kvstore.ErrConflict) {
				fmt.Fprintf(stdout, "%s was replaced or deleted meanwhile; nothing deleted\n", certKey)
				return nil
			}
			return storeErr(fmt.Errorf("revoked, but the record was not deleted (run tollgate certs delete %s): %w", name, err))
		}
		fmt.Fprintf(stdout, "deleted %s; the leader orders a new certificate if the configuration still wants it\n", certKey)
	}
	return nil
}

func certsShow(ctx context.Context, f inspectFlags, name string, stdout, stderr io.Writer) error {
	src, err := openInspector(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer src.Close()
	c, err := src.Certificate(ctx, name)
	if errors.Is(err, errNoSuchCert) {
		return fail(exitFailure, fmt.Errorf("nothing stored for %s (the main domain names a certificate: see tollgate certs list)", name))
	}
	if err != nil {
		return storeErr(err)
	}
	return f.output.print(stdout, c, func(w io.Writer) error {
		certShowTable(w, c)
		if src.t == nil || c.Key == "" {
			return nil
		}
		// Read from the store: the record too, its private key hidden.
		kv, err := src.t.st.Get(ctx, c.Key)
		if err != nil {
			return storeErr(err)
		}
		fmt.Fprintf(w, "record:\n%s\n", redact(kv.Value, true))
		return nil
	})
}

// certShowTable prints certs show's fields.
func certShowTable(w io.Writer, c router.CertificateInfo) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-10s"+format+"\n", append([]any{label + ":"}, args...)...)
	}
	if c.Key != "" {
		line("key", "%s (revision %d)", c.Key, c.Revision)
	} else {
		line("key", "(no certificate stored)")
	}
	line("state", "%s", c.StatusText)
	if c.Error != "" {
		line("error", "%s", c.Error)
	}
	line("names", "%s", strings.Join(c.SANs, ", "))
	if !c.NotAfter.IsZero() {
		line("issuer", "%s (serial %s, %s key)", orDash(c.Issuer), orDash(c.Serial), orDash(c.KeyType))
		line("valid", "%s to %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	if r := c.Renewal; r != nil {
		if !r.RenewAt.IsZero() {
			line("renews", "%s", r.RenewAt.UTC().Format(time.RFC3339))
		}
		if r.LastError != "" {
			fmt.Fprintf(w, "last error (%s): %s\n", r.LastAttempt.Format(time.RFC3339), r.LastError)
		}
	}
}
