package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEventsRing: the ring keeps the newest events, newest first, and
// drops the oldest.
func TestEventsRing(t *testing.T) {
	e := NewEvents(3)
	if got := e.List(); len(got) != 0 {
		t.Fatalf("a new ring lists %v", got)
	}
	for i := range 5 {
		e.Record(EventConfigApplied, fmt.Sprint(i))
	}
	var got []string
	for _, ev := range e.List() {
		got = append(got, ev.Message)
		if ev.Time.IsZero() || ev.Kind != EventConfigApplied {
			t.Errorf("event %+v lacks its time or kind", ev)
		}
	}
	if strings.Join(got, ",") != "4,3,2" {
		t.Fatalf("List = %v, want 4,3,2", got)
	}
}

// TestEventsConfigApplied: every Apply records an event summarising the
// change, and /api/events shows them newest first.
func TestEventsConfigApplied(t *testing.T) {
	events := NewEvents(0)
	rt := New(Config{Events: events})
	defer rt.Close()
	doc := "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n" +
		"[http.routers.one]\nrule = \"Path(`/1`)\"\nservice = \"a\"\n" +
		"[[http.services.a.loadBalancer.servers]]\nurl = \"http://127.0.0.1:9\"\n"
	if err := rt.Apply(parseConfig(t, doc)); err != nil {
		t.Fatal(err)
	}
	if err := rt.Apply(parseConfig(t, doc+"[http.routers.two]\nrule = \"Path(`/2`)\"\nservice = \"a\"\n")); err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(rt.APIHandler(APIOptions{Events: events}))
	defer h.Close()
	var got []Event
	apiGet(t, h.URL+"/api/events", http.StatusOK, &got)
	if len(got) != 2 {
		t.Fatalf("/api/events = %+v, want 2 events", got)
	}
	want := []string{
		"routers: 1 added (two), 0 removed, 0 changed; services: 0 added, 0 removed, 0 changed; middlewares: 0 added, 0 removed, 0 changed",
		"routers: 1 added (one), 0 removed, 0 changed; services: 1 added (a), 0 removed, 0 changed; middlewares: 0 added, 0 removed, 0 changed",
	}
	for i, ev := range got {
		if ev.Kind != EventConfigApplied || ev.Message != want[i] {
			t.Errorf("event %d = %s %q\nwant %s %q", i, ev.Kind, ev.Message, EventConfigApplied, want[i])
		}
	}
	if got[0].Time.Before(got[1].Time) {
		t.Errorf("events not newest first: %v", got)
	}
}

// TestEventsAbsent: without Events, /api/events answers 404; with an
// empty ring, an empty list.
func TestEventsAbsent(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	h := httptest.NewServer(rt.APIHandler(APIOptions{}))
	defer h.Close()
	var e tError
	apiGet(t, h.URL+"/api/events", http.StatusNotFound, &e)
	h2 := httptest.NewServer(rt.APIHandler(APIOptions{Events: NewEvents(1)}))
	defer h2.Close()
	_, body := apiGet(t, h2.URL+"/api/events", http.StatusOK, nil)
	if strings.TrimSpace(body) != "[]" {
		t.Fatalf("an empty ring answers %s, want []", body)
	}
}
