package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

const certsUsage = `Usage: tollgate certs COMMAND [--config FILE] [--kv URL] [--prefix P] ...

Works on the certificates in the store. Private keys are never printed.

Commands:
  list          every certificate: names, expiry, issuer, and the name's
                state (ordering, failing, gave up)
  show NAME     one certificate's record (private key hidden), its failure
                state and its order in flight; NAME is the main domain
  renew NAME    make the leader renew NAME now (within seconds)
  revoke NAME   revoke NAME at the CA with the stored account (needs the
                encryption key), then, unless --keep, delete the record so
                that the leader orders a new certificate
  delete NAME   delete NAME's record and failure state; the leader orders
                it again if the configuration still wants it
  import ...    import certificates from Traefik ("tollgate certs import -h")

Examples:
  tollgate certs list --kv consul://127.0.0.1:8500
  tollgate certs show --kv etcd://127.0.0.1:2379 example.com
  tollgate certs renew --kv consul://127.0.0.1:8500 example.com
  tollgate certs revoke --config tollgate.toml --reason keyCompromise example.com

Exit codes: 0 success, 1 failure (no such certificate, the CA refused), 2
bad command line, 3 invalid configuration, 4 store unreachable or failing.
`

func certsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, certsUsage)
		return fail(exitUsage, errors.New("name a subcommand: list, show, renew, revoke, delete or import"))
	}
	switch args[0] {
	case "list":
		return certsList(ctx, args[1:], stdout, stderr)
	case "show", "renew", "delete", "revoke":
		return certsOne(ctx, args[0], args[1:], stdout, stderr)
	case "import":
		return certsImport(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, certsUsage)
		return nil
	}
	fmt.Fprint(stderr, certsUsage)
	return fail(exitUsage, fmt.Errorf("unknown subcommand %q", args[0]))
}

func certsFlags(name string, f *commonFlags, stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet("certs "+name, "", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, certsUsage, "\nFlags:\n"); fs.PrintDefaults() }
	f.register(fs, true)
	return fs
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

func certsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f commonFlags
	fs := certsFlags("list", &f, stderr)
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return err
	}
	t, err := openTarget(ctx, f, false)
	if err != nil {
		return err
	}
	defer t.Close()
	kr, note := checkKeyring(t)
	certs, _, err := loadCerts(ctx, t.st, acme.NewKeys(t.prefix), kr)
	if err != nil {
		return storeErr(err)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tOTHER NAMES\tNOT AFTER\tDAYS LEFT\tISSUER\tSTATE")
	for _, c := range certs {
		others, notAfter, left, issuer := "-", "-", "-", "-"
		if r := c.rec; r != nil {
			if len(r.Domains) > 1 {
				others = strings.Join(r.Domains[1:], ",")
			}
			notAfter = r.NotAfter.UTC().Format(time.RFC3339)
			left = fmt.Sprintf("%.0f", r.NotAfter.Sub(now).Hours()/24)
			issuer = orDash(r.Issuer)
		} else if c.kv == nil {
			notAfter = "(no certificate)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.domain, others, notAfter, left, issuer, stateOf(c, now))
	}
	tw.Flush()
	fmt.Fprintf(stderr, "%d certificate(s) in %s under %s\n", countRecords(certs), t.endpoint, acme.NewKeys(t.prefix).Prefix())
	if note != "" {
		fmt.Fprintln(stderr, note)
	}
	return nil
}

// checkKeyring returns the keyring that opens the private keys of the
// configuration t found, for the commands that check each record can be
// served, or nil and a note saying that the keys were not checked.
func checkKeyring(t *target) (*acme.Keyring, string) {
	const unchecked = "private keys not checked: "
	if t.cfg == nil || t.cfg.ACME == nil {
		return nil, unchecked + "no configuration with an [acme] section (give --config FILE)"
	}
	kr, err := loadKeyring(t.cfg.ACME)
	if err != nil {
		return nil, unchecked + err.Error()
	}
	return kr, ""
}

// certsOne runs show, renew, delete or revoke on one name.
func certsOne(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	var f commonFlags
	fs := certsFlags(cmd, &f, stderr)
	var reason *string
	var keep *bool
	if cmd == "revoke" {
		reason = fs.String("reason", "unspecified", "revocation `reason`: unspecified, keyCompromise, superseded, cessationOfOperation or affiliationChanged")
		keep = fs.Bool("keep", false, "keep the revoked record in the store (it is still served until replaced)")
	}
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := strings.ToLower(strings.TrimSuffix(pos[0], "."))
	if err := config.CheckHostname(name); err != nil {
		return fail(exitUsage, fmt.Errorf("%q: %w", pos[0], err))
	}
	var code uint
	if reason != nil {
		var ok bool
		if code, ok = acme.RevocationReason(*reason); !ok {
			return fail(exitUsage, fmt.Errorf("--reason %q: want unspecified, keyCompromise, superseded, cessationOfOperation or affiliationChanged", *reason))
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
	case "show":
		return certsShow(ctx, t, keys, name, stdout)
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
		fmt.Fprintf(stdout, "revoked %s (serial %s) at %s, reason %s\n", name, rec.Serial, rec.CA, *reason)
		if *keep {
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

func certsShow(ctx context.Context, t *target, keys acme.Keys, name string, stdout io.Writer) error {
	kr, note := checkKeyring(t)
	certs, _, err := loadCerts(ctx, t.st, keys, kr)
	if err != nil {
		return storeErr(err)
	}
	for _, c := range certs {
		if c.domain != name {
			continue
		}
		now := time.Now()
		if c.kv != nil {
			fmt.Fprintf(stdout, "key:      %s (revision %d)\n", c.kv.Key, c.kv.Revision)
		} else {
			fmt.Fprintln(stdout, "key:      (no certificate stored)")
		}
		fmt.Fprintf(stdout, "state:    %s\n", stateOf(c, now))
		if c.err != nil {
			fmt.Fprintf(stdout, "error:    %v\n", c.err)
		}
		if note != "" && c.kv != nil {
			fmt.Fprintf(stdout, "note:     %s\n", note)
		}
		if s := c.state; s != nil && s.LastError != "" {
			fmt.Fprintf(stdout, "last error (%s): %s\n", s.LastAttempt.Format(time.RFC3339), s.LastError)
		}
		if c.kv != nil {
			fmt.Fprintf(stdout, "record:\n%s\n", redact(c.kv.Value, true))
		}
		return nil
	}
	return fail(exitFailure, fmt.Errorf("nothing stored for %s (the main domain names a certificate: see tollgate certs list)", name))
}
