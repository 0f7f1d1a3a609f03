package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// commonFlags are the flags every command that reads a configuration
// shares.
type commonFlags struct {
	config string
	kv     string
	prefix string
}

func (c *commonFlags) register(fs *pflag.FlagSet, store bool) {
	fs.StringVar(&c.config, "config", "", "TOML configuration `file`")
	if store {
		fs.StringVar(&c.kv, "kv", "", "store endpoint `URL` (file:///…, consul://host:port, etcd://host:port); overrides [store] endpoint")
		fs.StringVar(&c.prefix, "prefix", "", "key `prefix` in the store; overrides [store] prefix (default \"tollgate\")")
	}
}

// Output formats of -o.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// outputFlag is -o: how a command prints what it found.
type outputFlag struct{ format string }

func (o *outputFlag) register(fs *pflag.FlagSet) {
	// Checked when set, so that a bad TOLLGATE_OUTPUT names its variable.
	o.format = formatTable
	fs.VarP(&choiceValue{p: &o.format, parse: func(s string) (string, error) {
		if err := (&outputFlag{format: s}).check(); err != nil {
			return "", fmt.Errorf("%q: want table, json or yaml", s)
		}
		return s, nil
	}}, "output", "o", "output `format`: table, json or yaml (field names in docs/cli.md)")
}

// check refuses a format other than table, json and yaml.
func (o *outputFlag) check() error {
	switch o.format {
	case formatTable, formatJSON, formatYAML:
		return nil
	}
	return fail(exitUsage, fmt.Errorf("-o %q: want table, json or yaml", o.format))
}

// structured reports whether the output is JSON or YAML.
func (o *outputFlag) structured() bool { return o.format == formatJSON || o.format == formatYAML }

// print writes v as JSON or YAML (its keys the JSON tags), or calls table.
func (o *outputFlag) print(w io.Writer, v any, table func(io.Writer) error) error {
	switch o.format {
	case formatJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case formatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return table(w)
}
