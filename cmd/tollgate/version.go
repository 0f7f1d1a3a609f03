package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version or "devel" is reported.
var version string

// versionString is tollgate's version: the one set at build time, else
// the main module's version, else "devel", with the commit when known.
func versionString() string {
	v, rev, modified := buildVersion()
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
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

// buildInfoCollector exports tollgate_build_info.
func buildInfoCollector() prometheus.Collector {
	v, rev, modified := buildVersion()
	if rev == "" {
		rev = "unknown"
	} else if modified {
		rev += "-dirty"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tollgate_build_info",
		Help:        "Always 1; its labels say which build runs: version, commit (\"unknown\" when not recorded, \"-dirty\" for local changes) and Go version.",
		ConstLabels: prometheus.Labels{"version": v, "commit": rev, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

const versionHelp = `Usage: tollgate version

Prints tollgate's version, the commit it was built from (when known) and
the Go version. Exit code 0.
`

func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, versionHelp) }
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tollgate %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
