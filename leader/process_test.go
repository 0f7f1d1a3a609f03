package leader_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/leader"
)

// The multi-process tests run this test binary as elector processes: with
// envHelper set, TestMain runs helperMain instead of the tests.
const (
	envHelper   = "TOLLGATE_LEADER_HELPER"
	envEndpoint = "TOLLGATE_LEADER_ENDPOINT"
	envTTL      = "TOLLGATE_LEADER_TTL"
	dataKey     = "proc/data"
)

// event is one line a helper process prints.
type event struct {
	Kind   string `json:"kind"` // lead, lost, write, fenced, error
	Node   string `json:"node"`
	Token  int64  `json:"token"`
	Rev    int64  `json:"rev,omitempty"`
	Reason string `json:"reason,omitempty"`
	// At is when the test process read the line, Gen which start of the
	// node printed it.
	At  time.Time `json:"-"`
	Gen int       `json:"-"`
}

// helperMain runs one elector until SIGTERM, printing its terms and the
// outcome of a fenced write every 100ms while it leads.
func helperMain() int {
	id := os.Getenv(envHelper)
	ttl, err := time.ParseDuration(os.Getenv(envTTL))
	if err != nil {
		ttl = leader.DefaultTTL
	}
	out := json.NewEncoder(os.Stdout)
	var mu sync.Mutex
	emit := func(ev event) {
		ev.Node = id
		mu.Lock()
		defer mu.Unlock()
		_ = out.Encode(ev)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var s kvstore.Store
	for s == nil {
		s, err = backend.Open(ctx, os.Getenv(envEndpoint), backend.Options{})
		if err != nil {
			emit(event{Kind: "error", Reason: err.Error()})
			time.Sleep(time.Second)
		}
	}
	defer s.Close()
	e, err := leader.New(leader.Config{Store: s, Node: leader.Node{ID: id}, TTL: ttl})
	if err != nil {
		emit(event{Kind: "error", Reason: err.Error()})
		return 1
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Run(ctx) })
	for ctx.Err() == nil {
		term, err := e.Await(ctx)
		if err != nil {
			break
		}
		emit(event{Kind: "lead", Token: term.Token()})
		leadWrites(term, emit)
		emit(event{Kind: "lost", Token: term.Token(), Reason: fmt.Sprint(term.Err())})
	}
	wg.Wait()
	return 0
}

// leadWrites makes a fenced write every 100ms until the term ends.
func leadWrites(term *leader.Term, emit func(event)) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rev, err := term.Apply(ctx, kvstore.PutOp(dataKey, []byte(fmt.Sprint(term.Token(), time.Now().UnixNano()))))
		cancel()
		switch {
		case err == nil:
			emit(event{Kind: "write", Token: term.Token(), Rev: rev})
		case errors.Is(err, kvstore.ErrFenced):
			emit(event{Kind: "fenced", Token: term.Token(), Reason: err.Error()})
		}
		select {
		case <-term.Done():
			return
		case <-tick.C:
		}
	}
}

// proc is a running helper process.
type proc struct {
	id   string
	gen  int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// cluster runs helper processes against one store endpoint and collects
// their events.
type cluster struct {
	t        *testing.T
	endpoint string
	ttl      time.Duration

	mu     sync.Mutex
	gen    int
	procs  map[string]*proc
	events []event
	notify chan struct{}
	wg     sync.WaitGroup
}

func newCluster(t *testing.T, endpoint string, ttl time.Duration, n int) *cluster {
	c := &cluster{t: t, endpoint: endpoint, ttl: ttl, procs: map[string]*proc{}, notify: make(chan struct{}, 1)}
	t.Cleanup(c.stopAll)
	for i := range n {
		c.start(fmt.Sprintf("node-%d", i))
	}
	return c
}

func (c *cluster) start(id string) {
	c.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+id, envEndpoint+"="+c.endpoint, envTTL+"="+c.ttl.String())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.gen++
	p := &proc{id: id, gen: c.gen, cmd: cmd, done: make(chan struct{})}
	c.procs[id] = p
	c.mu.Unlock()
	c.wg.Go(func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev event
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			ev.At, ev.Gen = time.Now(), p.gen
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
		_ = cmd.Wait()
	})
}

// signal sends sig to node id's process and returns when it was sent.
func (c *cluster) signal(id string, sig syscall.Signal) time.Time {
	c.mu.Lock()
	p := c.procs[id]
	c.mu.Unlock()
	at := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %s: %v", id, err)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		c.mu.Lock()
		delete(c.procs, id)
		c.mu.Unlock()
	}
	return at
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	for _, p := range c.procs {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	c.procs = map[string]*proc{}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.t.Error("helper processes did not exit within 30s of SIGTERM")
	}
}

// waitFor waits until an event after since satisfies ok, and returns it.
func (c *cluster) waitFor(what string, since time.Time, ok func(event) bool) event {
	c.t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		c.mu.Lock()
		for _, ev := range c.events {
			if ev.At.After(since) && ok(ev) {
				c.mu.Unlock()
				return ev
			}
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			c.t.Fatalf("%s: not seen within 2 minutes", what)
		}
	}
}

// leaderNow returns the node whose latest lead event has no lost event
// after it; it fails if there is not exactly one.
func (c *cluster) leaderNow() string {
	c.t.Helper()
	state := map[string]string{}
	c.mu.Lock()
	for _, ev := range c.events {
		if p := c.procs[ev.Node]; p == nil || p.gen != ev.Gen {
			continue // a process that is gone
		}
		switch ev.Kind {
		case "lead":
			state[ev.Node] = "lead"
		case "lost":
			state[ev.Node] = ""
		}
	}
	c.mu.Unlock()
	var ls []string
	for n, st := range state {
		if st == "lead" {
			ls = append(ls, n)
		}
	}
	if len(ls) != 1 {
		c.t.Fatalf("leaders now: %v, want exactly one", ls)
	}
	return ls[0]
}

// checkTerms verifies the record of every term: tokens strictly increase
// from one term to the next, and the fenced writes the store accepted,
// in revision order, never go back to an older term.
func (c *cluster) checkTerms() (terms, writes int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var last int64
	seen := map[int64]bool{}
	type w struct{ rev, token int64 }
	var ws []w
	for _, ev := range c.events {
		switch ev.Kind {
		case "lead":
			if seen[ev.Token] {
				c.t.Errorf("token %d handed out twice", ev.Token)
			}
			seen[ev.Token] = true
			if ev.Token <= last {
				c.t.Errorf("term of %s has token %d after %d: want strictly increasing", ev.Node, ev.Token, last)
			}
			last = ev.Token
			terms++
		case "write":
			ws = append(ws, w{ev.Rev, ev.Token})
		}
	}
	slices.SortFunc(ws, func(a, b w) int { return cmp.Compare(a.rev, b.rev) })
	for i := 1; i < len(ws); i++ {
		if ws[i].token < ws[i-1].token {
			c.t.Errorf("write of term %d at revision %d after one of term %d at %d: two terms valid at once",
				ws[i].token, ws[i].rev, ws[i-1].token, ws[i-1].rev)
		}
	}
	return terms, len(ws)
}
