// Command demo runs tollgate end to end on this machine: a local Pebble CA
// (with its DNS server answering 127.0.0.1 for every name), a demo
// backend, and one tollgate replica on the embedded store ("make run"), or
// three replicas on etcd or Consul behind round-robin load balancers
// ("make demo-cluster"). It waits until a certificate is served, proves
// it with an HTTPS request, prints curl commands that do the same, and
// keeps everything running until Ctrl-C.
//
// Usage:
//
//	go run ./demo [--cluster] [--kv etcd|consul] [--dir DIR] [--check]
//
// The Pebble, etcd and Consul binaries come from "make testdeps" (the
// Makefile's run and demo-cluster targets build only those they need).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var o options
	flag.BoolVar(&o.cluster, "cluster", false, "three replicas on a network store behind round-robin load balancers")
	flag.StringVar(&o.kv, "kv", "etcd", "the cluster's store: etcd or consul")
	flag.StringVar(&o.dir, "dir", "", "where the demo keeps its files (default: a new temporary directory, removed at the end)")
	flag.BoolVar(&o.check, "check", false, "stop once HTTPS is proven instead of running until Ctrl-C")
	flag.BoolVar(&o.freePorts, "free-ports", false, "listen on free ports instead of 8000 (HTTP) and 8443 (HTTPS)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.out = os.Stdout
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
