package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// The Kubernetes tests run pods at addresses of podNet: the API server
// refuses loopback addresses in EndpointSlices, so the whole package runs
// in a network namespace of its own in which podNet is local (routed to
// lo, like 127.0.0.0/8). Nothing leaves the machine, and the machine's
// own network is not touched.
const (
	podNet   = "10.77.0.0/16"
	envNetns = "TOLLGATE_E2E_NETNS"
)

// netnsErr says why the tests are not in their own network namespace;
// the tests that need one fail with it.
var netnsErr error

func TestMain(m *testing.M) {
	if os.Getenv(envNetns) == "" {
		code, err := inNetns()
		if err == nil {
			os.Exit(code)
		}
		netnsErr = err
	} else if out, err := setupNetns(); err != nil {
		netnsErr = fmt.Errorf("set up the network namespace: %w\n%s", err, out)
	}
	// A DNS provider SDK that lego links in starts a logger goroutine at
	// init; it is not ours to stop.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/baidubce/bce-sdk-go/util/log.NewLogger.func1"))
}

// inNetns runs this test binary again, with the same arguments, in a new
// network namespace (and a user namespace when not root), and returns its
// exit code.
func inNetns() (int, error) {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), envNetns+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if uid, gid := os.Getuid(), os.Getgid(); uid != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the tests in a network namespace of their own: %w (they need root, or unprivileged user namespaces)", err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// setupNetns brings lo up in the new namespace and makes podNet local.
func setupNetns() ([]byte, error) {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return out, err
	}
	return exec.Command("ip", "route", "add", "local", podNet, "dev", "lo").CombinedOutput()
}

// needPodNet fails t when the tests could not get their own network
// namespace.
func needPodNet(t *testing.T) {
	t.Helper()
	if netnsErr != nil {
		t.Fatalf("this test runs pods at %s, which needs the tests' own network namespace: %v", podNet, netnsErr)
	}
}
