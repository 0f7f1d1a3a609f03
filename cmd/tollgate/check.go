package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router"
)

// check validates a configuration file without touching any store.
func check(args []string, stdout, stderr io.Writer) error {
	var f commonFlags
	fs := newFlagSet("check", checkHelp, stderr)
	f.register(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.config == "" {
		fs.Usage()
		return fail(exitUsage, errors.New("--config is required"))
	}
	if _, err := loadRoutableConfig(f.config); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is valid\n", f.config)
	return nil
}

// loadRoutableConfig loads and validates a file as loadConfig does, then
// checks that the router accepts it: the router refuses what no single
// part of the file shows, such as two routers asking for different TLS
// options for one host on one entry point.
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
