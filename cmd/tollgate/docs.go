package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func docsCmd(a *app) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "docs",
		Short: "man: write the manual pages",
		Long: `Writes tollgate's documentation generated from the commands' help.

Exit codes: 0 written, 1 the files could not be written, 2 bad command
line.`,
		Example: `  tollgate docs man /usr/local/share/man/man1`,
	})
	c.AddCommand(&cobra.Command{
		Use:   "man DIR",
		Short: "write a manual page for every command into DIR",
		Long: `Writes a manual page (section 1) for tollgate and for each of its commands
into DIR, creating DIR when missing: tollgate.1, tollgate-serve.1,
tollgate-certs-list.1 and so on, from the same text as the help.

Exit codes: 0 written, 1 the files could not be written, 2 bad command
line.`,
		Example: `  tollgate docs man ./man && man ./man/tollgate-certs-list.1`,
		Args:    argsRange(1, 1),
		RunE: runE(func(_ context.Context, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root := c.Root()
			hdr := &doc.GenManHeader{Title: "TOLLGATE", Section: "1", Source: "tollgate " + versionString(), Manual: "tollgate manual"}
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("write the manual pages: %w", err)
			}
			fmt.Fprintf(a.stdout, "manual pages written to %s\n", args[0])
			return nil
		}),
	})
	return c
}
