package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

const rotateLong = `Re-encrypts every ACME private key in the store (certificate and account
keys) that is not sealed under the first key of the keyring that [acme]
encryptionKeyFile or encryptionKeyEnv names: the first key is the new one,
the keys after it are old ones that still open records. Each record is
rewritten with a compare-and-set, so the replicas may keep running; a record
the leader writes meanwhile is read again and resealed. Records that do not
open are listed and left as they were. Nothing but key paths and key ids is
printed.

The configuration comes from --config FILE, or from the store (--kv) as
"tollgate serve --kv" reads it; the key file or variable it names must be
readable where this command runs. The embedded file store is opened by one
process at a time: stop tollgate first.

Rotating the encryption key:
  1. Add the new key FIRST in the key file or Secret of every replica, keeping
     the old key after it, and restart or roll the replicas: they then seal
     under the new key and still open what the old one sealed.
  2. Run "tollgate keys rotate" (with --dry-run first to see what it would
     do) until it exits 0: every key is then sealed under the new key.
  3. Remove the old key from the key file or Secret and roll the replicas
     again. Keep the old key as long as you keep store backups sealed with it.

Exit codes: 0 every key current or resealed, 1 some record failed (listed),
2 bad command line, 3 invalid configuration (no [acme] section or no
encryption key), 4 store unreachable or failing.`

func keysCmd(a *app) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "keys",
		Short: "rotate: re-encrypt the stored private keys under a new key",
		Long: `Works on the encryption of the private keys in the store.
Run "tollgate keys rotate -h" for the rotation procedure and flags.

Exit codes: 0 success, 1 failure, 2 bad command line, 3 invalid
configuration, 4 store unreachable or failing.`,
		Example: `  tollgate keys rotate --config tollgate.toml --dry-run`,
	})
	c.AddCommand(keysRotateCmd(a))
	return c
}

func keysRotateCmd(a *app) *cobra.Command {
	var f commonFlags
	var dryRun bool
	c := &cobra.Command{
		Use:   "rotate [--config FILE] [--kv URL] [--prefix P] [--dry-run]",
		Short: "re-encrypt every ACME private key in the store under the first key of the keyring",
		Long:  rotateLong,
		Example: `  tollgate keys rotate --config /etc/tollgate/tollgate.toml --dry-run
  tollgate keys rotate --config /etc/tollgate/tollgate.toml
  TOLLGATE_ENCRYPTION_KEY="$(cat new-and-old.keys)" tollgate keys rotate --kv consul://127.0.0.1:8500`,
		Args: argsRange(0, 0),
		RunE: runE(func(ctx context.Context, _ []string) error {
			return rotateKeys(ctx, f, dryRun, a.stdout)
		}),
	}
	f.register(c.Flags(), true)
	c.Flags().BoolVar(&dryRun, "dry-run", false, "open every key and print what would be resealed, without writing anything")
	return c
}

// rotateKeys re-encrypts the stored private keys under the keyring's
// first key.
func rotateKeys(ctx context.Context, f commonFlags, dryRun bool, stdout io.Writer) error {
	if f.config == "" && f.kv == "" {
		return fail(exitUsage, errors.New("give --config FILE (the replicas' configuration), or --kv URL to read the configuration from the store"))
	}
	var cfg *config.Config
	source := f.config
	if f.config != "" {
		var err error
		if cfg, err = loadConfig(f.config); err != nil {
			return err
		}
		// Check the keyring before touching the store.
		if _, err := rotationKeyring(cfg, source); err != nil {
			return err
		}
	}
	endpoint, prefix := storeOf(cfg, f)
	if err := config.CheckPrefix(prefix); err != nil {
		return fail(exitUsage, err)
	}
	st, err := backend.Open(ctx, endpoint, backend.Options{})
	if err != nil {
		return openError(fmt.Errorf("open the store %s: %w", backend.Redact(endpoint), err), f.kv != "")
	}
	defer st.Close()
	if cfg == nil {
		if cfg, source, err = loadPublished(ctx, st, backend.Redact(endpoint), prefix, "give --config FILE instead"); err != nil {
			return err
		}
	}
	kr, err := rotationKeyring(cfg, source)
	if err != nil {
		return err
	}

	keys := acme.NewKeys(prefix)
	fmt.Fprintf(stdout, "resealing private keys under %s in %s with key %s\n", keys.Prefix(), backend.Redact(endpoint), kr.ActiveID())
	res, err := acme.Reencrypt(ctx, st, keys, kr, dryRun)
	verb := "resealed"
	if dryRun {
		verb = "would reseal"
	}
	for _, c := range res.Changes {
		fmt.Fprintf(stdout, "%s %s: %s → %s\n", verb, c.Key, c.From, c.To)
	}
	for _, reason := range res.Failed {
		fmt.Fprintf(stdout, "FAILED %s\n", reason)
	}
	summary := fmt.Sprintf("%d checked: %d %s, %d already current, %d failed", res.Checked, res.Resealed, verb, res.Current, len(res.Failed))
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "stopped: %s\n", summary)
	case dryRun:
		fmt.Fprintf(stdout, "dry run: %s; nothing written\n", summary)
	case res.Checked == 0:
		fmt.Fprintf(stdout, "no certificates or accounts under %s; nothing to do (check --kv and --prefix)\n", keys.Prefix())
	default:
		fmt.Fprintln(stdout, summary)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fail(exitFailure, fmt.Errorf("interrupted; records resealed so far stay so, run again to finish: %w", err))
	case err != nil:
		return fail(exitStore, fmt.Errorf("%w; records resealed so far stay so: run again once the store answers", err))
	case len(res.Failed) > 0:
		return fail(exitFailure, fmt.Errorf("%d record(s) left as they were (listed above): fix what each reason says (most often, add the key a record was sealed under to the keyring, after the first one) and run again", len(res.Failed)))
	}
	return nil
}

// rotationKeyring loads the keyring cfg's [acme] names; source names the
// configuration in errors.
func rotationKeyring(cfg *config.Config, source string) (*acme.Keyring, error) {
	a := cfg.ACME
	if a == nil {
		return nil, fail(exitInvalid, fmt.Errorf("%s has no [acme] section: there are no ACME private keys to re-encrypt", source))
	}
	if a.EncryptionKeyFile == "" && a.EncryptionKeyEnv == "" {
		return nil, fail(exitInvalid, fmt.Errorf("%s: [acme] names no encryption key: set encryptionKeyFile or encryptionKeyEnv to the keys, the new one first and the old ones after it (insecurePlaintextKeys leaves nothing to rotate to)", source))
	}
	kr, err := acme.LoadKeyring(a.EncryptionKeyFile, a.EncryptionKeyEnv, false, nil)
	if err != nil {
		return nil, fail(exitInvalid, fmt.Errorf("%s: [acme]: %w", source, err))
	}
	return kr, nil
}
