package testserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFreePortsOutsideEphemeral: a port handed out is never one the
// kernel may give an outgoing connection in the meantime (that is how a
// replica once found its API port taken).
func TestFreePortsOutsideEphemeral(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	seen := map[int]bool{}
	for _, p := range FreePorts(t, 50) {
		if p >= lo && p <= hi {
			t.Errorf("port %d is in the ephemeral range %d-%d", p, lo, hi)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	for _, p := range FreePorts(t, 50) {
		if seen[p] {
			t.Errorf("port %d handed out twice in one process", p)
		}
	}
}

// TestFreePortsAcrossProcesses: a port this process holds is not handed
// to another test process.
func TestFreePortsAcrossProcesses(t *testing.T) {
	if os.Getenv("TOLLGATE_PORTS_CHILD") != "" {
		for _, p := range FreePorts(t, 200) {
			os.Stdout.WriteString(strconv.Itoa(p) + "\n")
		}
		return
	}
	mine := map[int]bool{}
	for _, p := range FreePorts(t, 2000) {
		mine[p] = true
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestFreePortsAcrossProcesses$")
	cmd.Env = append(os.Environ(), "TOLLGATE_PORTS_CHILD=1")
	cmd.Dir = filepath.Dir(exe)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Fields(string(out)) {
		p, err := strconv.Atoi(line)
		if err != nil {
			continue // go test's own PASS line
		}
		n++
		if mine[p] {
			t.Errorf("port %d handed to the child while this process holds it", p)
		}
	}
	if n != 200 {
		t.Fatalf("child handed out %d ports, want 200:\n%s", n, out)
	}
}
