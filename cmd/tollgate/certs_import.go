package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/migrate"
)

const importLong = `Imports the ACME account and every certificate Traefik obtained into
tollgate's store, as the records the replicas serve, so that nothing is
ordered again. Private keys are sealed with tollgate's encryption key and
never printed.

--from-traefik-v1 reads the single value Traefik 1.x keeps in its cluster
store: --kv URL is that store (default: --config's [store] endpoint) and
Traefik's data is read at <--prefix>/acme/account/object, "traefik" being
Traefik's default prefix; give --traefik-key KEY instead when Traefik's
[acme] storage was not "<prefix>/acme/account" (KEY is <storage>/object).
tollgate's records go to --to-kv URL, else to --config's [store], else to
the --kv store, under --to-prefix P, else --config's [store] prefix, else
"tollgate".

--from-acme-json FILE reads a Traefik v2 or v3 acme.json (--resolver NAME
picks the certificate resolver when it holds several) or Traefik 1.7's file
storage. tollgate's store is --to-kv or --kv URL, else --config's [store],
else the embedded default, under --to-prefix P.

The CA and the encryption key come from --config FILE, else from the
configuration published in tollgate's store. Each record is created with a
compare-and-set: a record already there is kept (and listed as "exists")
unless --overwrite, so running the import twice, or while tollgate runs,
never replaces a newer certificate. Expired certificates are skipped unless
--include-expired. The account is keyed by the CA and its email: tollgate
uses it when [acme] email is the same, else it registers its own.

Exit codes: 0 everything imported, already there or deliberately skipped, 1
some item failed (listed) or Traefik's data cannot be read, 2 bad command
line, 3 invalid configuration (no [acme], no encryption key), 4 store
unreachable or failing.`

// importFlags are certs import's flags.
type importFlags struct {
	commonFlags
	fromV1             bool
	fromJSON, resolver string
	traefikKey         string
	toKV, toPrefix     string
	opts               migrate.ImportOptions
}

func certsImportCmd(a *app) *cobra.Command {
	var f importFlags
	c := &cobra.Command{
		Use: `import --from-traefik-v1 [--kv URL] [--prefix traefik | --traefik-key KEY] [flags]
  tollgate certs import --from-acme-json FILE [--resolver NAME] [flags]`,
		Short: "import certificates from Traefik",
		Long:  importLong,
		Example: `  tollgate certs import --from-traefik-v1 --kv consul://consul:8500 --prefix traefik --config tollgate.toml --dry-run
  tollgate certs import --from-traefik-v1 --kv consul://consul:8500 --prefix traefik --config tollgate.toml
  tollgate certs import --from-acme-json acme.json --resolver le --config tollgate.toml`,
		Args: argsRange(0, 0),
		RunE: runE(func(ctx context.Context, _ []string) error {
			return certsImport(ctx, f, a.stdout)
		}),
	}
	fs := c.Flags()
	f.register(fs, true)
	fs.BoolVar(&f.fromV1, "from-traefik-v1", false, "import from Traefik 1.x's cluster store (--kv, --prefix)")
	fs.StringVar(&f.fromJSON, "from-acme-json", "", "import from a Traefik acme.json `file`")
	fs.StringVar(&f.resolver, "resolver", "", "the certificate resolver `name` in --from-acme-json's file (needed when it holds several)")
	fs.StringVar(&f.traefikKey, "traefik-key", "", "the `key` of Traefik 1.x's ACME data, instead of <prefix>/acme/account/object")
	fs.StringVar(&f.toKV, "to-kv", "", "tollgate's store `URL`, when it is not the --kv store")
	fs.StringVar(&f.toPrefix, "to-prefix", "", "tollgate's key `prefix` (default: --config's [store] prefix, else \"tollgate\")")
	fs.BoolVar(&f.opts.DryRun, "dry-run", false, "read and check everything, print what would be imported, write nothing")
	fs.BoolVar(&f.opts.Overwrite, "overwrite", false, "replace records that are already in tollgate's store")
	fs.BoolVar(&f.opts.IncludeExpired, "include-expired", false, "import expired certificates too (the leader orders them again at once)")
	return c
}

func certsImport(ctx context.Context, f importFlags, stdout io.Writer) error {
	opts := f.opts
	switch {
	case f.fromV1 == (f.fromJSON != ""):
		return fail(exitUsage, errors.New("give either --from-traefik-v1 or --from-acme-json FILE"))
	case f.fromV1 && f.resolver != "":
		return fail(exitUsage, errors.New("--resolver goes with --from-acme-json: Traefik 1.x has one account"))
	case f.fromJSON != "" && (f.prefix != "" || f.traefikKey != ""):
		return fail(exitUsage, errors.New("--prefix and --traefik-key name where Traefik 1.x keeps its data (--from-traefik-v1); give tollgate's prefix with --to-prefix"))
	case f.prefix != "" && f.traefikKey != "":
		return fail(exitUsage, errors.New("give --prefix or --traefik-key, not both: --traefik-key is the whole key"))
	}
	var cfg *config.Config
	source := f.config
	if f.config != "" {
		var err error
		if cfg, err = loadConfig(f.config); err != nil {
			return err
		}
	}
	var cs config.Store
	if cfg != nil && cfg.Store != nil {
		cs = *cfg.Store
	}
	dstPrefix := cmp.Or(f.toPrefix, cs.Prefix, config.DefaultPrefix)
	if err := config.CheckPrefix(dstPrefix); err != nil {
		return fail(exitUsage, err)
	}

	var (
		data       *migrate.Imported
		dstURL     string
		src        kvstore.Store // the open Traefik store, reused when it is tollgate's
		srcURL     string
		closeAfter []kvstore.Store
	)
	defer func() {
		for _, st := range closeAfter {
			st.Close()
		}
	}()
	if f.fromV1 {
		srcURL = cmp.Or(f.kv, cs.Endpoint)
		if srcURL == "" {
			return fail(exitUsage, errors.New("give --kv URL: the store Traefik 1.x ran on (or --config FILE with a [store] section)"))
		}
		key := f.traefikKey
		if key == "" {
			key = cmp.Or(f.prefix, "traefik") + "/" + migrate.DefaultTraefikV1Key
		}
		key = strings.Trim(key, "/")
		st, err := backend.Open(ctx, srcURL, backend.Options{})
		if err != nil {
			return openError(fmt.Errorf("open Traefik's store %s: %w", backend.Redact(srcURL), err), f.kv != "")
		}
		closeAfter = append(closeAfter, st)
		src = st
		data, err = migrate.ReadTraefikV1Key(ctx, st, key)
		switch {
		case errors.Is(err, kvstore.ErrNotFound), errors.Is(err, migrate.ErrFormat):
			return fail(exitFailure, fmt.Errorf("reading Traefik's ACME data in %s: %w", backend.Redact(srcURL), err))
		case err != nil:
			return fail(exitStore, fmt.Errorf("read Traefik's ACME data in %s: %w", backend.Redact(srcURL), err))
		}
		dstURL = cmp.Or(f.toKV, cs.Endpoint, srcURL)
	} else {
		raw, err := os.ReadFile(f.fromJSON)
		if err != nil {
			return fail(exitFailure, err)
		}
		all, err := migrate.ReadACMEJSON(raw)
		if err != nil {
			return fail(exitFailure, fmt.Errorf("%s: %w", f.fromJSON, err))
		}
		if data, err = all.Resolver(f.resolver); err != nil {
			return fail(exitUsage, fmt.Errorf("%s: %w", f.fromJSON, err))
		}
		data.Source = f.fromJSON
		dstURL = cmp.Or(f.toKV, f.kv, cs.Endpoint, config.DefaultStoreEndpoint)
	}

	dst := src
	if dst == nil || dstURL != srcURL {
		st, err := backend.Open(ctx, dstURL, backend.Options{})
		if err != nil {
			return openError(fmt.Errorf("open the store %s: %w", backend.Redact(dstURL), err), f.toKV != "" || f.kv != "")
		}
		closeAfter = append(closeAfter, st)
		dst = st
	}
	if cfg == nil {
		var err error
		if cfg, source, err = loadPublished(ctx, dst, backend.Redact(dstURL), dstPrefix, "give --config FILE, the configuration the replicas will run"); err != nil {
			return err
		}
	}
	a := cfg.ACME
	if a == nil {
		return fail(exitInvalid, fmt.Errorf("%s has no [acme] section: tollgate would not serve imported certificates", source))
	}
	kr, err := acme.LoadKeyring(a.EncryptionKeyFile, a.EncryptionKeyEnv, a.InsecurePlaintextKeys, nil)
	if err != nil {
		return fail(exitInvalid, fmt.Errorf("%s: [acme]: %w", source, err))
	}
	ca := cmp.Or(a.CAServer, config.DefaultCAServer)
	keys := acme.NewKeys(dstPrefix)

	fmt.Fprintf(stdout, "importing from %s into %s under %s (CA %s)\n", data.Source, backend.Redact(dstURL), keys.Prefix(), ca)
	res, err := migrate.Import(ctx, dst, keys, kr, ca, data, opts)
	if res == nil {
		res = &migrate.ImportResult{}
	}
	for _, it := range res.Items {
		fmt.Fprintln(stdout, it)
	}
	var counts []string
	for _, s := range []migrate.Status{migrate.StatusImported, migrate.StatusReplaced, migrate.StatusExists, migrate.StatusSkipped, migrate.StatusFailed} {
		if n := res.Count(s); n > 0 || s == migrate.StatusImported || s == migrate.StatusFailed {
			counts = append(counts, fmt.Sprintf("%d %s", n, s))
		}
	}
	summary := strings.Join(counts, ", ")
	if data.Account != nil && a.Email != "" && !strings.EqualFold(data.Account.Email, a.Email) {
		fmt.Fprintf(stdout, "note: Traefik's account is %s but [acme] email is %s: tollgate registers its own account and renews the imported certificates with it\n", data.Account.Email, a.Email)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "stopped: %s\n", summary)
	case opts.DryRun:
		fmt.Fprintf(stdout, "dry run: %s; nothing written\n", summary)
	case len(res.Items) == 0:
		fmt.Fprintf(stdout, "%s holds no account and no certificate: nothing to import\n", data.Source)
	default:
		fmt.Fprintln(stdout, summary)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fail(exitFailure, fmt.Errorf("interrupted; records written so far stay, run again to finish: %w", err))
	case err != nil:
		return fail(exitStore, fmt.Errorf("%w; records written so far stay: run again once the store answers", err))
	case res.Count(migrate.StatusFailed) > 0:
		return fail(exitFailure, fmt.Errorf("%d item(s) not imported (listed above with the reason)", res.Count(migrate.StatusFailed)))
	}
	return nil
}
