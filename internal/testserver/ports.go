package testserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A port handed out by FreePorts is given to a server process that binds it
// a moment (or, for a restarted server, minutes) later. Two things can take
// it in between, and both have failed test runs:
//   - an outgoing connection of any process: the kernel picks its local port
//     from the ephemeral range, the same range a listener on port 0 gets, so
//     FreePorts never hands out a port from that range;
//   - another test process (go test runs packages in parallel) picking the
//     same port: each port handed out is reserved with a lock file that the
//     process holds until it exits, and no process hands out a port another
//     holds.
//
// Within one process a port is handed out once.

// portLow is the lowest port FreePorts hands out.
const portLow = 10000

var ports struct {
	mu    sync.Mutex
	given map[int]bool
	locks []*os.File // held open (and locked) until the process exits
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on and
// that no other caller of FreePort/FreePorts, in this process or another,
// is handed until this process exits.
func FreePort(t TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct ports as FreePort does.
func FreePorts(t TB, n int) []int {
	t.Helper()
	got, err := reservePorts(n)
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	return got
}

func reservePorts(n int) ([]int, error) {
	lo, hi := pickRange()
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	dir := filepath.Join(os.TempDir(), "tollgate-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	out := make([]int, 0, n)
	size := hi - lo + 1
	start := rand.IntN(size)
	for i := 0; i < size && len(out) < n; i++ {
		p := lo + (start+i)%size
		if ports.given[p] {
			continue
		}
		f, ok := lockPort(dir, p)
		if !ok {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			f.Close() // in use by something else: give the lock back
			continue
		}
		l.Close()
		ports.given[p] = true
		ports.locks = append(ports.locks, f)
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("only %d of %d ports free in %d-%d", len(out), n, lo, hi)
	}
	return out, nil
}

// lockPort takes the lock file of port p without waiting.
func lockPort(dir string, p int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// pickRange returns the ports below the kernel's ephemeral range (at
// least 1,000 of them), or above it when below is too small.
func pickRange() (lo, hi int) {
	elo, ehi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			a, err1 := strconv.Atoi(f[0])
			z, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && a <= z {
				elo, ehi = a, z
			}
		}
	}
	if elo-1-portLow >= 1000 {
		return portLow, elo - 1
	}
	if 65535-ehi >= 1000 {
		return ehi + 1, 65535
	}
	return portLow, 65535 // no room outside: lock files still keep test processes apart
}
