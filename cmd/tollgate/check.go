package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes"
	"github.com/tollgate-proxy/tollgate/router"
)

// check validates a configuration file without touching any store: what
// serve would refuse at start, check refuses.
func check(args []string, stdout, stderr io.Writer) error {
	var f commonFlags
	fs := newFlagSet("check", checkHelp, stderr)
	f.register(fs, false)
	skipFiles := fs.Bool("skip-files", false, "do not read the files and the environment variable the configuration names (encryption key, store token, password, CA and client certificate, Kubernetes token and CA), for checking away from the replicas' secrets")
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.config == "" {
		fs.Usage()
		return fail(exitUsage, errors.New("--config is required"))
	}
	cfg, err := loadRoutableConfig(f.config)
	if err != nil {
		return err
	}
	if err := checkFiles(f.config, cfg, !*skipFiles); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is valid\n", f.config)
	return nil
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
	if cfg.Providers != nil && cfg.Providers.KubernetesIngress != nil && read {
		if err := kubernetes.CheckFiles(cfg.Providers.KubernetesIngress); err != nil {
			return fail(exitInvalid, fmt.Errorf("%s: %w", path, err))
		}
	}
	return nil
}

// loadRoutableConfig loads and validates a file as loadConfig does, then
// builds the routing tables as a replica would (router.Check), so that
// nothing a replica would refuse passes.
func loadRoutableConfig(path string) (*config.Config, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	if err := router.Check(cfg); err != nil {
		return nil, fail(exitInvalid, fmt.Errorf("%s: %w", path, err))
	}
	return cfg, nil
}
