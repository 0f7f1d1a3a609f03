package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tollgate-proxy/tollgate/config"
)

// app is what every command shares: the contexts that stop it, where it
// writes, and the root's flags.
type app struct {
	stop, now      context.Context
	stdout, stderr io.Writer
	logFormat      string
	logLevel       string
}

// envPrefix starts the environment variable that stands for each flag:
// --node-id is TOLLGATE_NODE_ID.
const envPrefix = "TOLLGATE_"

const rootLong = `tollgate — a clustered reverse proxy with shared ACME state.

Every command that reads the store takes --kv URL (file:///path,
consul://host:port, etcd://host:port) and --prefix P, or --config FILE whose
[store] section names them; without either it uses the embedded default.

Every flag may also be given in the environment as TOLLGATE_ and its name in
upper case with - as _ (--kv as TOLLGATE_KV, --node-id as TOLLGATE_NODE_ID,
--log-level as TOLLGATE_LOG_LEVEL); a flag on the command line wins.

Exit codes: 0 success, 1 other failure, 2 bad command line, 3 invalid
configuration, 4 store unreachable or failing, 5 conflict with another
writer of the configuration.`

const rootExamples = `  tollgate serve --config examples/quickstart.toml
  tollgate storeconfig --config cluster.toml --kv consul://consul:8500
  tollgate serve --kv consul://consul:8500
  tollgate cluster status --kv consul://consul:8500
  tollgate certs list --kv consul://consul:8500 -o json`

// newRoot builds the command tree.
func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:     "tollgate",
		Short:   "a clustered reverse proxy with shared ACME state",
		Long:    rootLong,
		Example: rootExamples,
		Version: versionString(),
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			if err := bindEnv(c); err != nil {
				return err
			}
			if _, err := newLogger(io.Discard, a.logFormat, a.logLevel); err != nil {
				return fail(exitUsage, err)
			}
			return nil
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
	}
	root.SetVersionTemplate(fmt.Sprintf("tollgate {{.Version}} %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH))
	// Empty defaults: a replica then takes [log] from its configuration
	// (text and info until it is read); a value given wins over [log].
	root.PersistentFlags().Var(&choiceValue{p: &a.logFormat, parse: parseLogFormat}, "log-format",
		"log `format`: text or json (default: [log] format, else text)")
	root.PersistentFlags().Var(&choiceValue{p: &a.logLevel, parse: func(s string) (string, error) {
		_, err := parseLogLevel(s)
		return strings.ToLower(s), err
	}}, "log-level", "log `level`: debug, info, warn or error (default: [log] level, else info)")
	root.SetFlagErrorFunc(flagError)
	// A group's usage is "tollgate certs COMMAND", not also "tollgate
	// certs" alone, which only says to name a subcommand.
	tmpl := strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1)
	tmpl = strings.Replace(tmpl, "{{.CommandPath}} [command]{{end}}", "{{.CommandPath}} COMMAND [flags]{{end}}", 1)
	tmpl = strings.Replace(tmpl, `Use "{{.CommandPath}} [command] --help" for more information about a command.`,
		`Run "{{.CommandPath}} COMMAND -h" for a command's flags, examples and exit codes.`, 1)
	root.SetUsageTemplate(tmpl)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(
		serveCmd(a), storeconfigCmd(a), checkCmd(a), certsCmd(a), clusterCmd(a),
		kvCmd(a), keysCmd(a), migrateCmd(a), versionCmd(a), docsCmd(a),
	)
	root.SetHelpCommand(helpCmd())
	// Cobra's completion command (it writes to the root's output, set
	// above), made a group like the others.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			group(c)
			c.Short = "print a shell completion script (bash, zsh, fish, powershell)"
			c.Example = "  source <(tollgate completion bash)   # needs the bash-completion package\n  tollgate completion zsh > \"${fpath[1]}/_tollgate\""
			for _, s := range c.Commands() {
				s.Short = "print the completion script for " + s.Name()
			}
		}
	}
	// The values of the flags that take one of a few words complete too.
	words := map[string][]string{
		"output": {formatTable, formatJSON, formatYAML}, "log-format": {"text", "json"},
		"log-level": {"debug", "info", "warn", "error"},
	}
	completeWords := func(c *cobra.Command, fs *pflag.FlagSet) {
		fs.VisitAll(func(f *pflag.Flag) {
			if w, ok := words[f.Name]; ok {
				_ = c.RegisterFlagCompletionFunc(f.Name, cobra.FixedCompletions(w, cobra.ShellCompDirectiveNoFileComp))
			}
		})
	}
	completeWords(root, root.PersistentFlags())
	// Each Use spells its flags out.
	var visit func(*cobra.Command)
	visit = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		if c != root {
			completeWords(c, c.LocalNonPersistentFlags())
		}
		for _, s := range c.Commands() {
			visit(s)
		}
	}
	visit(root)
	return root
}

// usageError is a bad command line: printed with a pointer to the help.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// execute runs the tree on args and returns the exit code.
func execute(a *app, args []string) int {
	root := newRoot(a)
	if len(args) == 0 {
		// tollgate alone is a bad command line: the help, on stderr.
		root.InitDefaultHelpCmd()
		root.SetOut(a.stderr)
		root.Help()
		return exitUsage
	}
	root.SetArgs(longFlags(root, args)) // non-nil: nil means os.Args
	cmd, err := root.ExecuteContextC(a.stop)
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Cobra's own: an unknown command or flag, a wrong argument count.
		ee = &exitError{code: exitUsage, err: &usageError{err}}
	}
	switch {
	case ee.quiet:
	case ee.code == exitUsage:
		msg := strings.TrimSuffix(ee.err.Error(), "\n")
		fmt.Fprintf(a.stderr, "%s: %s\n", cmd.CommandPath(), msg)
		if strings.Contains(msg, "\n") {
			fmt.Fprintln(a.stderr)
		}
		fmt.Fprintf(a.stderr, "Run \"%s -h\" for usage.\n", cmd.CommandPath())
	default:
		fmt.Fprintf(a.stderr, "%s: %v\n", cmd.CommandPath(), ee.err)
	}
	return ee.code
}

// runE adapts a command body to cobra: an error without an exit code is a
// failure (exit 1), so that every error cobra itself returns is a bad
// command line.
func runE(fn func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		err := fn(c.Context(), args)
		if err == nil {
			return nil
		}
		var ee *exitError
		if !errors.As(err, &ee) {
			return fail(exitFailure, err)
		}
		return err
	}
}

// group makes c a command that only holds subcommands: alone, or with a
// name that is none of them, it is a bad command line.
func group(c *cobra.Command) *cobra.Command {
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(c *cobra.Command, args []string) error {
		var names []string
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		switch {
		case len(args) == 0:
			return fail(exitUsage, fmt.Errorf("name a subcommand: %s", strings.Join(names, ", ")))
		case len(args) == 1 && args[0] == "help":
			return c.Help() // tollgate certs help, as tollgate help certs
		}
		msg := fmt.Sprintf("unknown command %q", args[0])
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += didYouMean(s)
		} else {
			msg += "; the subcommands are " + strings.Join(names, ", ")
		}
		return fail(exitUsage, errors.New(msg))
	}
	return c
}

func didYouMean(s []string) string {
	return "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
}

// argsRange accepts between min and max positional arguments.
func argsRange(min, max int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			// The synopsis names the arguments: "show NAME [flags]".
			var names []string
			for _, w := range strings.Fields(c.Use)[1:] {
				if !strings.HasPrefix(w, "[") && !strings.HasPrefix(w, "-") && strings.ToUpper(w) == w {
					names = append(names, w)
				}
			}
			if len(args) < len(names) {
				return fmt.Errorf("missing argument %s", names[len(args)])
			}
			return errors.New("missing argument")
		case len(args) > max:
			return fmt.Errorf("unexpected argument %q", args[max])
		}
		return nil
	}
}

// flagError adds to an unknown flag the flags of the command it is
// closest to.
func flagError(c *cobra.Command, err error) error {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		// -config: a long flag written with one dash is read as
		// shorthands.
		_, word, found := strings.Cut(msg, "unknown shorthand flag: ")
		if _, name, ok = strings.Cut(word, " in -"); !found || !ok || len(name) < 2 {
			return err
		}
		name, _, _ = strings.Cut(name, "=")
	}
	var near []string
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if config.Closest(name, []string{f.Name}) != "" || len(name) > 1 && strings.HasPrefix(f.Name, name) {
			near = append(near, "--"+f.Name)
		}
	})
	if len(near) == 0 {
		return err
	}
	slices.Sort(near)
	return fmt.Errorf("%w%s", err, didYouMean(near))
}

// envName is the environment variable that stands for the flag name.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv sets every flag of c not given on the command line from its
// environment variable, when that is set.
func bindEnv(c *cobra.Command) error {
	var errs []error
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || f.Name == "version" {
			return
		}
		// An empty variable counts as unset, as a shell's VAR= does.
		v := os.Getenv(envName(f.Name))
		if v == "" {
			return
		}
		if err := c.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s (for --%s): %w", envName(f.Name), f.Name, err))
		}
	})
	if len(errs) > 0 {
		return fail(exitUsage, errors.Join(errs...))
	}
	return nil
}

// longFlags returns args with each long flag written with one dash, as
// the command line took them before (-config FILE), written with two
// (--config FILE); pflag would read -config as the shorthands c, o, n….
// The words after "--", and the values of flags that take one, are left
// as they are.
func longFlags(root *cobra.Command, args []string) []string {
	out := append([]string{}, args...)
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return out
	}
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	fs.AddFlagSet(cmd.Flags())
	fs.AddFlagSet(cmd.InheritedFlags())
	takesValue := func(name string) bool {
		f := fs.Lookup(name)
		return f != nil && f.NoOptDefVal == ""
	}
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") && len(name) > 1 && (name == "help" || fs.Lookup(name) != nil) {
			out[i] = "-" + a
		}
		if !hasValue && (strings.HasPrefix(out[i], "--") || len(name) == 1) && takesValue(nameOf(fs, name)) {
			i++ // its value
		}
	}
	return out
}

// nameOf is the long name of a flag given by name or shorthand.
func nameOf(fs *pflag.FlagSet, name string) string {
	if len(name) == 1 {
		if f := fs.ShorthandLookup(name); f != nil {
			return f.Name
		}
	}
	return name
}

// helpCmd is "tollgate help COMMAND...": COMMAND's help on stdout, as
// COMMAND -h prints it; an unknown COMMAND is a bad command line.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]...",
		Short: "print the help of a command",
		Long: `Prints the help of the command named, as "tollgate COMMAND -h" does:
its synopsis, description, examples, flags and exit codes.

Exit codes: 0 printed, 2 no such command.`,
		Example: `  tollgate help
  tollgate help certs list`,
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, s := range cmd.Commands() {
				if s.IsAvailableCommand() && strings.HasPrefix(s.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(s.Name(), s.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return fail(exitUsage, err)
			}
			if len(rest) > 0 {
				msg := fmt.Sprintf("unknown command %q for %q", rest[0], cmd.CommandPath())
				cmd.SuggestionsMinimumDistance = 2
				if s := cmd.SuggestionsFor(rest[0]); len(s) > 0 {
					msg += didYouMean(s)
				}
				return fail(exitUsage, errors.New(msg))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}

// choiceValue is a string flag whose value is checked when it is set, so
// that a bad value names where it came from (the flag or its environment
// variable).
type choiceValue struct {
	p     *string
	parse func(string) (string, error)
}

func (v *choiceValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *choiceValue) Set(s string) error {
	c, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = c
	return nil
}

func (v *choiceValue) Type() string { return "string" }
