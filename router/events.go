package router

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Event kinds, as /api/events shows them.
const (
	// EventConfigApplied: a configuration took effect; the message
	// summarises what changed.
	EventConfigApplied = "configApplied"
	// EventConfigRejected: a configuration change was refused and the
	// last good one stays; the message says why.
	EventConfigRejected = "configRejected"
	// EventConfigRecovered: after a rejected change, the source is valid
	// again and equals the configuration in force (the change was
	// undone); nothing was applied.
	EventConfigRecovered = "configRecovered"
	// EventCertificateOrdered: the leader obtained and stored a
	// certificate.
	EventCertificateOrdered = "certificateOrdered"
	// EventCertificateOrderFailed: the leader's order failed.
	EventCertificateOrderFailed = "certificateOrderFailed"
)

// Event is one thing that happened on this replica.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is one of the Event… constants.
	Kind string `json:"kind"`
	// Message says what happened: names and counts, never a secret.
	Message string `json:"message"`
}

// EventRecorder takes the replica's events; Events is one. Record is
// called from the goroutines where things happen (Apply's, the watcher's,
// the ACME workers'): it must be safe for concurrent use and must not
// block.
type EventRecorder interface {
	Record(kind, message string)
}

// Events keeps the newest events of this replica in memory, a bounded
// ring: /api/events shows them. Safe for concurrent use.
type Events struct {
	now  func() time.Time
	mu   sync.Mutex
	ring []Event // ring[next-1] is the newest once full
	next int
	full bool
}

// NewEvents returns a ring keeping the newest size events; size 0 means
// 100.
func NewEvents(size int) *Events {
	return &Events{now: time.Now, ring: make([]Event, cmp.Or(size, 100))}
}

// Record adds an event, dropping the oldest when the ring is full.
func (e *Events) Record(kind, message string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ring[e.next] = Event{Time: e.now().UTC(), Kind: kind, Message: message}
	e.next = (e.next + 1) % len(e.ring)
	if e.next == 0 {
		e.full = true
	}
}

// List returns the events, newest first.
func (e *Events) List() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := slices.Clone(e.ring[:e.next])
	if e.full {
		out = append(slices.Clone(e.ring[e.next:]), out...)
	}
	slices.Reverse(out)
	return out
}

// summaryText writes reloadSummary's groups as one line for an event:
// "routers: 1 added (web), 0 removed, 0 changed; services: …".
func summaryText(groups []any) string {
	var parts []string
	for _, g := range groups {
		a, ok := g.(slog.Attr)
		if !ok {
			continue
		}
		counts := map[string]string{}
		for _, x := range a.Value.Group() {
			counts[x.Key] = x.Value.String()
			if x.Value.Kind() == slog.KindAny {
				if names, ok := x.Value.Any().([]string); ok {
					counts[x.Key] = strings.Join(names, ", ")
				}
			}
		}
		var b strings.Builder
		b.WriteString(a.Key + ":")
		for i, k := range []string{"added", "removed", "changed"} {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s %s", counts[k], k)
			if n := counts[k+"_names"]; n != "" {
				fmt.Fprintf(&b, " (%s)", n)
			}
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "; ")
}
