package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/prometheus/client_golang/prometheus"
)

// version and commit are set at build time (make build) with -ldflags
// "-X main.version=v1.2.3 -X main.commit=0123abcd"; otherwise the module
// version or "devel", and the commit Go recorded, are reported.
var version, commit string

// versionString is tollgate's version: the one set at build time, else
// the main module's version, else "devel", with the commit when known.
func versionString() string {
	v, rev, modified := buildVersion()
	if len(rev) > 12 {
		rev = rev[:12]
	}
	// A version from git describe names the commit already.
	if rev != "" && !strings.Contains(v, rev[:min(7, len(rev))]) {
		v += "+" + rev
		if modified {
			v += "-dirty"
		}
	}
	return v
}

// buildVersion returns the version (the one set at build time, else the
// main module's, else "devel"), the commit it was built from ("" when
// unknown) and whether the tree had local changes.
func buildVersion() (v, rev string, modified bool) {
	v = version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	v = cmp.Or(v, "devel")
	if commit != "" {
		rev, modified = strings.CutSuffix(commit, "-dirty")
		return v, rev, modified
	}
	if !ok {
		return v, "", false
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return v, rev, modified
}

// buildCommit returns the version and the commit built from, with
// "-dirty" for local changes; the commit is "" when unknown.
func buildCommit() (v, commit string) {
	v, rev, modified := buildVersion()
	if rev != "" && modified {
		rev += "-dirty"
	}
	return v, rev
}

// buildInfoCollector exports tollgate_build_info.
func buildInfoCollector() prometheus.Collector {
	v, rev := buildCommit()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tollgate_build_info",
		Help:        "Always 1; its labels say which build runs: version, commit (\"unknown\" when not recorded, \"-dirty\" for local changes) and Go version.",
		ConstLabels: prometheus.Labels{"version": v, "commit": cmp.Or(rev, "unknown"), "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// versionInfo is what version -o json prints.
type versionInfo struct {
	Version string `json:"version"`
	// Commit is the commit built from, with "-dirty" for local changes;
	// empty when unknown.
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

func versionCmd(a *app) *cobra.Command {
	var o outputFlag
	c := &cobra.Command{
		Use:   "version [-o table|json|yaml]",
		Short: "print the version",
		Long: `Prints tollgate's version, the commit it was built from (when known), the
Go version, the operating system and the architecture; "tollgate
--version" prints the same line. With -o json or yaml: {version, commit,
goVersion, os, arch} (docs/cli.md).

Exit codes: 0 success, 2 bad command line.`,
		Example: `  tollgate version
  tollgate version -o json`,
		Args: argsRange(0, 0),
		RunE: runE(func(context.Context, []string) error {
			if err := o.check(); err != nil {
				return err
			}
			v, rev := buildCommit()
			info := versionInfo{Version: v, Commit: rev, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
			return o.print(a.stdout, info, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "tollgate %s %s %s/%s\n", versionString(), info.GoVersion, info.OS, info.Arch)
				return err
			})
		}),
	}
	o.register(c.Flags())
	return c
}
