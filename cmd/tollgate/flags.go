package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// commonFlags are the flags every command that reads a configuration
// shares.
type commonFlags struct {
	config string
	kv     string
	prefix string
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tollgate %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func (c *commonFlags) register(fs *flag.FlagSet, store bool) {
	fs.StringVar(&c.config, "config", "", "TOML configuration `file`")
	if store {
		fs.StringVar(&c.kv, "kv", "", "store endpoint `URL` (file:///…, consul://host:port, etcd://host:port); overrides [store] endpoint")
		fs.StringVar(&c.prefix, "prefix", "", "key `prefix` in the store; overrides [store] prefix (default \"tollgate\")")
	}
}

// parse parses args and maps flag errors to the usage exit code.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fail(exitOK, errHelp)
		}
		return fail(exitUsage, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fail(exitUsage, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}
