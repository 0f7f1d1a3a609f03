package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version or "devel" is reported.
var version string

// versionString is tollgate's version: the one set at build time, else
// the main module's version, else "devel", with the commit when known.
func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	v = cmp.Or(v, "devel")
	if ok {
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += "+" + rev
			if modified == "true" {
				v += "-dirty"
			}
		}
	}
	return v
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
