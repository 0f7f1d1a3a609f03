package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollgate-proxy/tollgate/migrate"
)

const migrateV1Long = `Converts FILE, a Traefik 1.x static configuration (entryPoints with their
redirections and TLS, [acme] with domains, onHostRule, onDemand, entryPoint
and storage, [consul] or [etcd], [kubernetes], the file provider's
[frontends] and [backends], api, ping, metrics and logs), into a tollgate
configuration. The configuration goes to standard output, or to --out FILE;
the report goes to standard error, or to --report FILE. The report names
every key of FILE with what became of it: converted, changed (behaves
differently; how), unsupported (no equivalent; what to do instead), unknown
(not a Traefik 1.x key), or action (to do by hand before the configuration
works as the old one did). The output always passes "tollgate check
--skip-files"; without --skip-files, check also reads the files it names
and the encryption key (TOLLGATE_ENCRYPTION_KEY), as serve does. Nothing is
written when FILE cannot be converted.

--traefik-args ARGS gives the flags Traefik ran with (its container's args,
quoted as a shell quotes them), such as its store given as --consul
--consul.endpoint=HOST:PORT --consul.prefix=traefik: the flags of [consul],
[etcd], [kubernetes], [acme], [api], [ping], [metrics], [accessLog],
defaultEntryPoints, logLevel and debug are converted as if written in FILE,
and override it as they did in Traefik; others are reported. It may be
given several times.

--ingresses PATH checks Kubernetes manifests (a YAML or JSON file, or a
directory of .yaml, .yml and .json files, read recursively; several
documents per file and kubectl's List are read) for the annotations Traefik
1.x read on Ingresses and Services: the report says what each became, adds
the middlewares they need to the configuration, and gives for each Ingress
the kubectl annotate command (tollgate.io/router.* annotations) that makes
tollgate serve it as Traefik did. Export a cluster's with
  kubectl get ingress,service,ingressclass -A -o yaml > cluster.yaml
It may be given several times.

Exit codes: 0 converted (read the report), 1 the output could not be
written, 2 bad command line (a --traefik-args quote not closed, an
--ingresses path missing), 3 FILE or its flags cannot be converted (each
problem is printed with its file and line).`

const migrateV1Examples = `  tollgate migrate traefik-v1 traefik.toml > tollgate.toml
  tollgate migrate traefik-v1 --out tollgate.toml --report migrate-report.txt traefik.toml
  tollgate migrate traefik-v1 --out tollgate.toml --traefik-args "--consul --consul.endpoint=10.0.0.5:8500 --consul.prefix=traefik" traefik.toml
  tollgate migrate traefik-v1 --out tollgate.toml --ingresses cluster.yaml --ingresses k8s/ traefik.toml
  tollgate check --config tollgate.toml`

func migrateCmd(a *app) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "migrate",
		Short: "convert a Traefik 1.x configuration, or report on ingress-nginx annotations",
		Long: `Converts another proxy's configuration into tollgate's (traefik-v1), or
reports what becomes of the ingress-nginx annotations of Ingresses
(ingress-nginx). Certificates and the ACME account are imported by
"tollgate certs import".

Exit codes: 0 converted or reported, 1 the input could not be read or the
output written, 2 bad command line, 3 the input cannot be converted
(ingress-nginx: with --strict, an annotation does not carry over).`,
		Example: `  tollgate migrate traefik-v1 traefik.toml > tollgate.toml
  tollgate migrate ingress-nginx --kubeconfig ~/.kube/config`,
	})
	c.AddCommand(migrateTraefikV1Cmd(a), migrateIngressNginxCmd(a))
	return c
}

// migrateFlags are migrate traefik-v1's flags.
type migrateFlags struct {
	out, report            string
	force                  bool
	traefikArgs, ingresses []string
}

func migrateTraefikV1Cmd(a *app) *cobra.Command {
	var f migrateFlags
	c := &cobra.Command{
		Use:     "traefik-v1 [--out FILE] [--report FILE] [--force] [--traefik-args ARGS] [--ingresses PATH] FILE",
		Short:   "convert a Traefik 1.x static configuration (TOML) into a tollgate configuration",
		Long:    migrateV1Long,
		Example: migrateV1Examples,
		Args:    argsRange(1, 1),
		RunE: runE(func(_ context.Context, args []string) error {
			return migrateTraefikV1(f, args[0], a.stdout, a.stderr)
		}),
	}
	fs := c.Flags()
	fs.StringVar(&f.out, "out", "", "write the configuration to `file` instead of standard output")
	fs.StringVar(&f.report, "report", "", "write the report to `file` instead of standard error")
	fs.BoolVar(&f.force, "force", false, "replace --out and --report files that exist")
	fs.StringArrayVar(&f.traefikArgs, "traefik-args", nil, "the command-line `flags` Traefik ran with, quoted as one argument (repeatable)")
	fs.StringArrayVar(&f.ingresses, "ingresses", nil, "Kubernetes manifests to check: a YAML or JSON `file`, or a directory of them (repeatable)")
	return c
}

func migrateTraefikV1(f migrateFlags, src string, stdout, stderr io.Writer) error {
	out, reportFile, force := &f.out, &f.report, &f.force
	traefikArgs, ingresses := f.traefikArgs, f.ingresses
	opts := migrate.Options{Out: *out}
	for _, a := range traefikArgs {
		words, err := migrate.SplitArgs(a)
		if err != nil {
			return fail(exitUsage, fmt.Errorf("--traefik-args %q: %w", a, err))
		}
		opts.Args = append(opts.Args, words...)
	}
	for _, p := range ingresses {
		ms, err := readManifests(p, "--ingresses ", exitUsage)
		if err != nil {
			return err
		}
		opts.Manifests = append(opts.Manifests, ms...)
	}
	for _, f := range []string{*out, *reportFile} {
		if f == "" {
			continue
		}
		if filepath.Clean(f) == filepath.Clean(src) {
			return fail(exitUsage, fmt.Errorf("%s is the file being converted: write the output elsewhere", f))
		}
		if _, err := os.Stat(f); err == nil && !*force {
			return fail(exitUsage, fmt.Errorf("%s exists: give --force to replace it, or another name", f))
		}
	}
	if *out != "" && *reportFile != "" && filepath.Clean(*out) == filepath.Clean(*reportFile) {
		return fail(exitUsage, errors.New("--out and --report name the same file"))
	}
	data, err := os.ReadFile(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fail(exitUsage, fmt.Errorf("%s does not exist", src))
		}
		return fail(exitFailure, err)
	}
	res, err := migrate.ConvertTraefikV1(src, data, opts)
	if err != nil {
		var me *migrate.Error
		if errors.As(err, &me) {
			for _, p := range me.Problems {
				fmt.Fprintln(stderr, p)
			}
			return fail(exitInvalid, fmt.Errorf("%s cannot be converted: %s, listed above; nothing written", src, problemCount(len(me.Problems))))
		}
		return fail(exitFailure, err)
	}

	if *out != "" {
		if err := writeFileAtomic(*out, res.Config, 0o644); err != nil {
			return fail(exitFailure, fmt.Errorf("write the configuration: %w", err))
		}
	} else if _, err := stdout.Write(res.Config); err != nil {
		return fail(exitFailure, fmt.Errorf("write the configuration: %w", err))
	}
	if *reportFile != "" {
		if err := writeFileWith(*reportFile, res.WriteReport); err != nil {
			return fail(exitFailure, fmt.Errorf("write the report: %w", err))
		}
		fmt.Fprintf(stderr, "%s: %s; report in %s\n", src, res.Summary(), *reportFile)
	} else if err := res.WriteReport(stderr); err != nil {
		return fail(exitFailure, fmt.Errorf("write the report: %w", err))
	}
	return nil
}

// writeFileWith writes what fill writes into path, replacing it at once.
func writeFileWith(path string, fill func(io.Writer) error) error {
	var b bytes.Buffer
	if err := fill(&b); err != nil {
		return err
	}
	return writeFileAtomic(path, b.Bytes(), 0o644)
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it over path, so that path never holds half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readManifests reads a manifest file, or the .yaml, .yml and .json files
// below a directory in lexical order, skipping hidden ones. Errors name
// the path after label (a flag, or ""); a path that does not exist or a
// directory without manifests exits with code missing.
func readManifests(path, label string, missing int) ([]migrate.Manifest, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fail(missing, fmt.Errorf("%s%s does not exist", label, path))
		}
		return nil, fail(exitFailure, err)
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fail(exitFailure, err)
		}
		return []migrate.Manifest{{Name: path, Data: data}}, nil
	}
	var out []migrate.Manifest
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, migrate.Manifest{Name: p, Data: data})
		return nil
	})
	if err != nil {
		return nil, fail(exitFailure, fmt.Errorf("%s%s: %w", label, path, err))
	}
	if len(out) == 0 {
		return nil, fail(missing, fmt.Errorf("%s%s: no .yaml, .yml or .json file in the directory", label, path))
	}
	return out, nil
}

// problemCount says "1 problem" or "N problems".
func problemCount(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
