package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

func kvCmd(a *app) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "kv",
		Short: "ls|get tollgate's keys in the store (no private keys)",
		Long: `Reads tollgate's keys in the store (everything under the prefix), for
operators; it never writes. Private keys, encrypted or not, the secret
values of the configuration, values that are not UTF-8 text and ACME
records that are not valid JSON are never printed (their size is). The
embedded store cannot be read while a replica runs on it.

Exit codes: 0 success, 1 no such key, 2 bad command line, 4 store
unreachable or failing.`,
		Example: `  tollgate kv ls --kv consul://127.0.0.1:8500 acme/certs/
  tollgate kv get --kv etcd://127.0.0.1:2379 config/current`,
	})
	c.AddCommand(kvListCmd(a), kvGetCmd(a))
	return c
}

// kvFlags are kv ls's and kv get's flags.
type kvFlags struct {
	commonFlags
	output outputFlag
}

func (f *kvFlags) register(fs *pflag.FlagSet) {
	f.commonFlags.register(fs, true)
	f.output.register(fs)
}

func kvListCmd(a *app) *cobra.Command {
	var f kvFlags
	c := &cobra.Command{
		Use:   "ls [PATH] [--config FILE] [--kv URL] [--prefix P] [-o table|json|yaml]",
		Short: "list the keys under PREFIX/PATH with their revision and size",
		Long: `Lists the keys under PREFIX/PATH (default: all of tollgate's keys) with
their revision and size. With -o json or yaml: {prefix, revision, keys:
[{key, revision, bytes}]} (docs/cli.md).

Exit codes: 0 success, 2 bad command line, 4 store unreachable or failing.`,
		Example: `  tollgate kv ls --kv consul://127.0.0.1:8500 acme/certs/
  tollgate kv ls --config tollgate.toml -o json`,
		Args: argsRange(0, 1),
		RunE: runE(func(ctx context.Context, args []string) error {
			return kvList(ctx, f, args, a.stdout, a.stderr)
		}),
	}
	f.register(c.Flags())
	return c
}

func kvGetCmd(a *app) *cobra.Command {
	var f kvFlags
	c := &cobra.Command{
		Use:   "get KEY [--config FILE] [--kv URL] [--prefix P] [-o table|json|yaml]",
		Short: "print the value of PREFIX/KEY",
		Long: `Prints the value of PREFIX/KEY (KEY may also be given whole, prefix
included), private keys and secrets hidden. With -o json or yaml: {key,
revision, bytes, value, hidden} (docs/cli.md).

Exit codes: 0 success, 1 no such key, 2 bad command line, 4 store
unreachable or failing.`,
		Example: `  tollgate kv get --kv etcd://127.0.0.1:2379 config/current
  tollgate kv get --kv consul://127.0.0.1:8500 acme/certs/a/example.com -o json`,
		Args: argsRange(1, 1),
		RunE: runE(func(ctx context.Context, args []string) error {
			return kvGet(ctx, f, args[0], a.stdout, a.stderr)
		}),
	}
	f.register(c.Flags())
	return c
}

// kvListing is what kv ls -o json prints.
type kvListing struct {
	// Prefix is the key prefix listed.
	Prefix string `json:"prefix"`
	// Revision is the store's revision the listing was read at.
	Revision int64       `json:"revision"`
	Keys     []kvKeyInfo `json:"keys"`
}

// kvKeyInfo is one key of kv ls.
type kvKeyInfo struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"`
	Bytes    int    `json:"bytes"`
}

// kvValue is what kv get -o json prints.
type kvValue struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"`
	Bytes    int    `json:"bytes"`
	// Value is the value as kv get shows it: JSON indented, private keys
	// hidden; empty when Hidden.
	Value string `json:"value"`
	// Hidden is set for a secret of the configuration.
	Hidden bool `json:"hidden,omitempty"`
}

// under returns the full key of path below prefix; a path that already
// starts with the prefix is taken whole.
func under(prefix, path string) string {
	path = strings.TrimPrefix(path, "/")
	if path == prefix || strings.HasPrefix(path, prefix+"/") {
		return path
	}
	return prefix + "/" + path
}

func kvList(ctx context.Context, f kvFlags, pos []string, stdout, stderr io.Writer) error {
	if err := f.output.check(); err != nil {
		return err
	}
	t, err := openTarget(ctx, f.commonFlags, false)
	if err != nil {
		return err
	}
	defer t.Close()
	prefix := t.prefix + "/"
	if len(pos) == 1 {
		prefix = under(t.prefix, pos[0])
	}
	l, err := t.st.List(ctx, prefix)
	if err != nil {
		return storeErr(fmt.Errorf("list %s: %w", prefix, err))
	}
	out := kvListing{Prefix: prefix, Revision: l.Revision, Keys: []kvKeyInfo{}}
	for _, kv := range l.KVs {
		out.Keys = append(out.Keys, kvKeyInfo{Key: kv.Key, Revision: kv.Revision, Bytes: len(kv.Value)})
	}
	err = f.output.print(stdout, out, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tREVISION\tBYTES")
		for _, k := range out.Keys {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", k.Key, k.Revision, k.Bytes)
		}
		return tw.Flush()
	})
	if err != nil {
		return err
	}
	if !f.output.structured() {
		fmt.Fprintf(stderr, "%d key(s) under %s in %s at revision %d\n", len(l.KVs), prefix, t.endpoint, l.Revision)
	}
	return nil
}

func kvGet(ctx context.Context, f kvFlags, arg string, stdout, stderr io.Writer) error {
	if err := f.output.check(); err != nil {
		return err
	}
	t, err := openTarget(ctx, f.commonFlags, false)
	if err != nil {
		return err
	}
	defer t.Close()
	key := under(t.prefix, arg)
	if err := kvstore.ValidateKey(key); err != nil {
		return fail(exitUsage, err)
	}
	kv, err := t.st.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return fail(exitFailure, fmt.Errorf("%s: no such key in %s", key, t.endpoint))
	}
	if err != nil {
		return storeErr(err)
	}
	out := kvValue{Key: key, Revision: kv.Revision, Bytes: len(kv.Value)}
	if secretConfigKey(ctx, t, key) {
		out.Hidden = true
	} else {
		out.Value = string(redact(kv.Value, strings.HasPrefix(key, t.prefix+"/acme/")))
	}
	err = f.output.print(stdout, out, func(w io.Writer) error {
		if out.Hidden {
			_, err := fmt.Fprintln(w, "(hidden: a secret of the configuration)")
			return err
		}
		_, err := io.WriteString(w, out.Value)
		if err == nil && out.Value != "" && !strings.HasSuffix(out.Value, "\n") {
			_, err = fmt.Fprintln(w)
		}
		return err
	})
	if err != nil {
		return err
	}
	if !f.output.structured() {
		fmt.Fprintf(stderr, "%s: revision %d, %d bytes\n", key, kv.Revision, len(kv.Value))
	}
	return nil
}

// secretConfigKey reports whether key holds a secret value of the
// published configuration (a password, an Authorization header…).
func secretConfigKey(ctx context.Context, t *target, key string) bool {
	root := t.prefix + "/config/"
	rest, ok := strings.CutPrefix(key, root)
	if !ok {
		return false
	}
	snap, err := config.Load(ctx, t.st, t.prefix)
	if err != nil {
		return true // cannot tell: hide it
	}
	_, rel, ok := strings.Cut(rest, "/")
	if !ok {
		return false // config/current
	}
	entries, err := config.Encode(snap.Config)
	if err != nil {
		return true
	}
	for _, e := range entries {
		if e.Key == rel {
			return e.Secret
		}
	}
	// Not in the live version (an old or partial one): hide what looks
	// secret by its name.
	lower := strings.ToLower(rel)
	for _, w := range []string{"password", "secret", "token", "users", "authorization", "cookie"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// hidePrivatePEM replaces every PEM block of a private key in s; an
// unterminated one hides the rest of s.
func hidePrivatePEM(s string) string {
	const begin, dashes = "-----BEGIN ", "-----"
	var b strings.Builder
	for {
		i := strings.Index(s, begin)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		n := strings.Index(s[i+len(begin):], dashes)
		if n < 0 {
			b.WriteString(s)
			return b.String()
		}
		label := s[i+len(begin) : i+len(begin)+n]
		if !strings.HasSuffix(label, "PRIVATE KEY") {
			b.WriteString(s[:i+len(begin)])
			s = s[i+len(begin):]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString("(private key hidden)")
		end := "-----END " + label + dashes
		j := strings.Index(s[i:], end)
		if j < 0 {
			return b.String()
		}
		s = s[i+j+len(end):]
	}
}

// redact returns what an operator is shown of v, a value from the store:
// JSON indented for reading, with private keys hidden (the data of every
// sealed key, whatever shape damage left it in, and any PEM private key
// block); other text with its PEM private keys hidden. Nothing of a value
// that is not UTF-8, or of a record (an ACME record, always JSON) that is
// not valid JSON, is shown: damage may have left a sealed key's data
// where a redaction would not find it.
func redact(v []byte, record bool) []byte {
	if !utf8.Valid(v) {
		return fmt.Appendf(nil, "(not UTF-8 text, %d bytes: not shown)", len(v))
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&doc); err == nil && !dec.More() {
		doc = redactJSON(doc, record)
		if b, err := json.MarshalIndent(doc, "", "  "); err == nil {
			return b
		}
	}
	if t := strings.TrimSpace(string(v)); record || strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		return fmt.Appendf(nil, "(not valid JSON, %d bytes: not shown, for a damaged record may hold a sealed key)", len(v))
	}
	return []byte(hidePrivatePEM(string(v)))
}

// sealedField reports whether the field k of a JSON object holds a sealed
// private key: "privateKey" (certificates) always, "key" (accounts) in an
// ACME record or when it looks like a sealed value.
func sealedField(k string, v any, record bool) bool {
	if k == "privateKey" {
		return true
	}
	if k != "key" {
		return false
	}
	m, isObject := v.(map[string]any)
	return record || isObject && (m["data"] != nil || m["alg"] != nil)
}

func redactJSON(v any, record bool) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if sealedField(k, e, record) {
				t[k] = redactSealed(e)
				continue
			}
			t[k] = redactJSON(e, record)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = redactJSON(e, record)
		}
		return t
	case string:
		return hidePrivatePEM(t)
	}
	return v
}

// redactSealed returns what is shown of a sealed key: its algorithm and
// key id when they are short plain words, as written; everything else
// hidden.
func redactSealed(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return hidden(v)
	}
	for k, e := range m {
		if s, ok := e.(string); ok && (k == "alg" || k == "kid") && plainWord(s) {
			continue
		}
		m[k] = hidden(e)
	}
	return m
}

// hidden replaces a value that is not shown.
func hidden(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("(hidden, %d characters)", len(s))
	}
	return "(hidden)"
}

// plainWord reports whether s is short and made of letters, digits, '-',
// '_' and '.' only.
func plainWord(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
