package main

import (
	"errors"
	"fmt"
	"io"
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
	if _, err := loadConfig(f.config); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is valid\n", f.config)
	return nil
}
