package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes"
	"github.com/tollgate-proxy/tollgate/router"
	"github.com/tollgate-proxy/tollgate/router/middleware"
)

// checkFlags are check's flags.
type checkFlags struct {
	commonFlags
	skipFiles bool
	output    outputFlag
}

func checkCmd(a *app) *cobra.Command {
	var f checkFlags
	c := &cobra.Command{
		Use:   "check [--config] FILE [--skip-files] [-o table|json|yaml]",
		Short: "validate a configuration file",
		Long: `Validates FILE as serve would, and prints each problem with its file, line
and column. Reads the files the configuration names as serve does at
start: the encryption key (file or environment variable, 32 bytes) and the
store endpoint's token, password, CA and client certificate files. Touches
no store. --skip-files checks the file alone, away from those secrets.
FILE is given as an argument or with --config, not both. With -o json or
yaml it prints {file, valid, problems: [{file, line, column, path,
message}]} (see docs/cli.md), on an invalid file too.

Exit codes: 0 valid, 2 bad command line, 3 invalid configuration (or a
file it names missing or wrong).`,
		Example: `  tollgate check cluster.toml
  tollgate check --config cluster.toml --skip-files
  tollgate check cluster.toml -o json`,
		Args: argsRange(0, 1),
		RunE: runE(func(_ context.Context, args []string) error {
			switch {
			case len(args) == 1 && f.config != "":
				return fail(exitUsage, fmt.Errorf("unexpected argument %q: the file is given with --config already (give it one way, not both)", args[0]))
			case len(args) == 1:
				f.config = args[0]
			}
			return check(f, a.stdout)
		}),
	}
	f.register(c.Flags(), false)
	c.Flags().BoolVar(&f.skipFiles, "skip-files", false, "do not read the files and the environment variable the configuration names (encryption key, store token, password, CA and client certificate, Kubernetes token and CA, API users file), for checking away from the replicas' secrets")
	f.output.register(c.Flags())
	return c
}

// checkResult is what check -o json prints.
type checkResult struct {
	File     string         `json:"file"`
	Valid    bool           `json:"valid"`
	Problems []checkProblem `json:"problems"`
}

// checkProblem is one problem check found; Line and Column are 0 when the
// problem has no position in the file.
type checkProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// check validates a configuration file without touching any store: what
// serve would refuse at start, check refuses.
func check(f checkFlags, stdout io.Writer) error {
	if err := f.output.check(); err != nil {
		return err
	}
	if f.config == "" {
		return fail(exitUsage, errors.New("--config is required: give the configuration file (tollgate check FILE)"))
	}
	cfg, err := loadRoutableConfig(f.config, config.LoadOptions{ReadFiles: !f.skipFiles})
	if err == nil {
		err = checkFiles(f.config, cfg, !f.skipFiles)
	}
	if !f.output.structured() {
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is valid\n", f.config)
		return nil
	}
	res := checkResult{File: f.config, Valid: err == nil, Problems: problemsOf(f.config, err)}
	if perr := f.output.print(stdout, res, nil); perr != nil {
		return perr
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.code, err: ee.err, quiet: true}
	}
	return err
}

// problemsOf lists the problems in err: each of a configuration error's
// with its position, else err as one problem of file.
func problemsOf(file string, err error) []checkProblem {
	out := []checkProblem{}
	if err == nil {
		return out
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		return append(out, checkProblem{File: file, Message: err.Error()})
	}
	for _, p := range ce.Problems {
		cp := checkProblem{File: p.Where, Path: p.Path, Message: p.Message}
		// Where is FILE:LINE:COLUMN in a file.
		if rest, col, ok := cutLastInt(p.Where); ok {
			if f, line, ok := cutLastInt(rest); ok {
				cp.File, cp.Line, cp.Column = f, line, col
			}
		}
		out = append(out, cp)
	}
	return out
}

// cutLastInt splits "a:12" into "a" and 12.
func cutLastInt(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0, false
	}
	return s[:i], n, true
}

// checkFiles checks the store endpoint as serve does before it connects
// and, with read, reads what serve reads before it starts: the files the
// endpoint names and the encryption key.
func checkFiles(path string, cfg *config.Config, read bool) error {
	if cfg.Store != nil && cfg.Store.Endpoint != "" {
		check := backend.Parse // Check parses too, and reads the endpoint's files
		if read {
			check = func(endpoint string) error { return backend.Check(endpoint, backend.Options{}) }
		}
		err := check(cfg.Store.Endpoint)
		if err != nil {
			return fail(exitInvalid, fmt.Errorf("%s: store.endpoint: %w", path, err))
		}
	}
	if cfg.ACME != nil && read {
		if _, err := loadKeyring(cfg.ACME); err != nil {
			return fail(exitInvalid, fmt.Errorf("%s: acme: %w", path, err))
		}
	}
	if auth := cfg.API.Auth(); auth != nil && read {
		if _, err := middleware.NewBasicAuth(http.NotFoundHandler(), auth); err != nil {
			return fail(exitInvalid, fmt.Errorf("%s: api: %w", path, err))
		}
	}
	if pr := cfg.Providers; pr != nil && read {
		if pr.KubernetesIngress != nil {
			if err := kubernetes.CheckFiles(pr.KubernetesIngress.API()); err != nil {
				return fail(exitInvalid, fmt.Errorf("%s: %w", path, err))
			}
		}
		if pr.KubernetesGateway != nil {
			if err := kubernetes.CheckFiles(pr.KubernetesGateway.API()); err != nil {
				return fail(exitInvalid, fmt.Errorf("%s: %w", path, err))
			}
		}
	}
	return nil
}

// loadRoutableConfig loads and validates a file as loadConfig does, then
// builds the routing tables as a replica would (router.Check), so that
// nothing a replica would refuse passes.
func loadRoutableConfig(path string, o config.LoadOptions) (*config.Config, error) {
	cfg, err := loadConfigWith(path, o)
	if err != nil {
		return nil, err
	}
	if err := router.Check(cfg); err != nil {
		return nil, fail(exitInvalid, fmt.Errorf("%s: %w", path, err))
	}
	return cfg, nil
}
