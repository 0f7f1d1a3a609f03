package conformance

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// The suite sends its requests to the Gateways' addresses and tollgate
// forwards them to the pods' addresses; both are in podNet, and the API
// server refuses loopback addresses in EndpointSlices. So the package runs
// in a network namespace of its own in which podNet is local (routed to
// lo): nothing leaves the machine, and the machine's own network is not
// touched. The tests refuse to run outside that namespace.
const (
	podNet = "10.78.0.0/16"
	// envNetns holds, in the re-executed test binary, the network
	// namespace of the process that started it, so the child can prove
	// it is in another one.
	envNetns = "TOLLGATE_CONFORMANCE_NETNS"
)

// gatewayIP is the address tollgate listens on and writes into the
// Gateways' status; pods get addresses from podIPBase on.
var (
	gatewayIP  = net.IPv4(10, 78, 0, 10)
	podIPBase  = net.IPv4(10, 78, 1, 1)
	podNetCIDR = func() *net.IPNet { _, n, _ := net.ParseCIDR(podNet); return n }()
)

// netnsErr says why the tests are not in their own network namespace;
// every test fails with it.
var netnsErr error

func TestMain(m *testing.M) {
	parent := os.Getenv(envNetns)
	if parent == "" {
		code, err := inNetns()
		if err == nil {
			os.Exit(code)
		}
		netnsErr = err
	} else {
		netnsErr = setupNetns(parent)
	}
	goleak.VerifyTestMain(m,
		// klog's flush daemon, started by client-go at init.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		// A DNS provider SDK that tollgate's acme package links in starts
		// a logger goroutine at init.
		goleak.IgnoreTopFunction("github.com/baidubce/bce-sdk-go/util/log.NewLogger.func1"),
	)
}

// currentNetns names the network namespace of this process.
func currentNetns() (string, error) {
	return os.Readlink("/proc/self/ns/net")
}

// inNetns runs this test binary again, with the same arguments, in a new
// network namespace (and a user namespace when not root), and returns its
// exit code.
func inNetns() (int, error) {
	ns, err := currentNetns()
	if err != nil {
		return 0, fmt.Errorf("read this process's network namespace: %w", err)
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), envNetns+"="+ns)
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
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// setupNetns checks that this process is not in the network namespace
// parent (the one of the process that started it), brings lo up, makes
// podNet local and checks that an address of podNet is routed to lo.
func setupNetns(parent string) error {
	ns, err := currentNetns()
	if err != nil {
		return fmt.Errorf("read this process's network namespace: %w", err)
	}
	if ns == parent {
		return fmt.Errorf("still in the network namespace %s of the process that started the tests; %s must not be set by hand", ns, envNetns)
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %w: %s", err, out)
	}
	if out, err := exec.Command("ip", "route", "add", "local", podNet, "dev", "lo").CombinedOutput(); err != nil {
		return fmt.Errorf("ip route add local %s dev lo: %w: %s", podNet, err, out)
	}
	out, err := exec.Command("ip", "route", "get", gatewayIP.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip route get %s: %w: %s", gatewayIP, err, out)
	}
	if f := strings.Fields(string(out)); len(f) < 4 || f[0] != "local" || !strings.Contains(string(out), "dev lo") {
		return fmt.Errorf("%s is not routed to lo in the tests' network namespace: %s", gatewayIP, out)
	}
	return nil
}

// needNetns fails t unless the tests run in their own network namespace.
func needNetns(t *testing.T) {
	t.Helper()
	if netnsErr != nil {
		t.Fatalf("the conformance run needs a network namespace of its own, in which %s is local: %v", podNet, netnsErr)
	}
	if os.Getenv(envNetns) == "" {
		t.Fatal("not in the tests' own network namespace")
	}
}

// mustBeLocal fails t if addr (host:port or a host) is not in podNet or
// loopback: the harness never sends traffic anywhere else.
func mustBeLocal(t *testing.T, addr string) {
	t.Helper()
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsLoopback() || podNetCIDR.Contains(ip)) {
		t.Fatalf("address %s is neither loopback nor in %s: refusing to use it", addr, podNet)
	}
}
