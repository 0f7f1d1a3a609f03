package acme

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-acme/lego/v4/certificate"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// ARI timing: how often to ask again when the CA names no Retry-After,
// the bounds put on what it names, and the wait after a failed query,
// doubled with each failure in a row up to ariMaxRecheck.
const (
	ariDefaultRecheck = 6 * time.Hour
	ariMinRecheck     = time.Minute
	ariMaxRecheck     = 24 * time.Hour
	ariFailureRecheck = time.Hour
)

// maxARIBody bounds the renewal information read from the CA: a window
// and an explanation URL are a few hundred bytes.
const maxARIBody = 64 << 10

// errNoARI marks a CA without ARI.
var errNoARI = errors.New("the CA offers no renewal information (ARI)")

// ariClient asks a CA's renewal-information endpoint (RFC 9773).
type ariClient struct {
	// endpoint is the directory's renewalInfo URL; "" when the CA has
	// none.
	endpoint string
	http     *http.Client
}

// askARI asks the CA for leaf's renewal window. It returns errNoARI when
// the CA has no ARI endpoint, and an error for any answer that is not a
// 200 with a usable window: a window is usable when both ends are set and
// it starts before it ends. An error never means "renew now": the caller
// keeps the certificate's own schedule and asks again later.
func (c ariClient) askARI(ctx context.Context, leaf *x509.Certificate, now time.Time) (*ARIState, error) {
	if c.endpoint == "" {
		return nil, errNoARI
	}
	id, err := certificate.MakeARICertID(leaf)
	if err != nil {
		return nil, fmt.Errorf("renewal information: certificate id: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.endpoint, "/")+"/"+id, nil)
	if err != nil {
		return nil, fmt.Errorf("renewal information: %w", err)
	}
	req.Header.Set("User-Agent", "tollgate")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("renewal information: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxARIBody+1))
	if err != nil {
		return nil, fmt.Errorf("renewal information: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The body is the CA's problem document; its type and detail are
		// the CA's words about the request, not stored data.
		return nil, fmt.Errorf("renewal information: the CA answered %s%s", resp.Status, problemSummary(body))
	}
	if len(body) > maxARIBody {
		return nil, fmt.Errorf("renewal information: answer larger than %d bytes", maxARIBody)
	}
	var info struct {
		SuggestedWindow struct {
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
		} `json:"suggestedWindow"`
		ExplanationURL string `json:"explanationURL"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, errors.New("renewal information: the answer is not a renewal-information object")
	}
	w := info.SuggestedWindow
	if w.Start.IsZero() || w.End.IsZero() || !w.Start.Before(w.End) {
		return nil, fmt.Errorf("renewal information: unusable window (start %s, end %s)",
			w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339))
	}
	st := &ARIState{
		WindowStart: w.Start.UTC(), WindowEnd: w.End.UTC(),
		ExplanationURL: info.ExplanationURL, CheckedAt: now.UTC(),
	}
	// A moment drawn once in the window, so that replicas of many
	// certificates do not all renew at its start; a window already past
	// means now.
	at := w.Start.Add(time.Duration(rand.Int64N(int64(w.End.Sub(w.Start)))))
	st.RenewAt = maxTime(at, now).UTC()
	recheck := ariDefaultRecheck
	if ra := parseRetryAfter(resp.Header.Get("Retry-After"), now); ra > 0 {
		recheck = ra
	}
	st.CheckAgain = now.Add(min(max(recheck, ariMinRecheck), ariMaxRecheck)).UTC()
	return st, nil
}

// problemSummary is the type and detail of an ACME problem document, or
// "" when body is none.
func problemSummary(body []byte) string {
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) != nil || (p.Type == "" && p.Detail == "") {
		return ""
	}
	return truncate(": "+strings.TrimSpace(p.Type+" "+p.Detail), 300)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// failedARI is the state to record after a failed query: the window the
// record already has, if it is usable, and a later question, backed off
// by the failures in a row.
func failedARI(prev *ARIState, now time.Time, cause error) *ARIState {
	st := &ARIState{CheckedAt: now.UTC()}
	if prev != nil {
		if prev.usable() {
			st.WindowStart, st.WindowEnd, st.RenewAt, st.ExplanationURL = prev.WindowStart, prev.WindowEnd, prev.RenewAt, prev.ExplanationURL
		}
		st.Requested = prev.Requested
		if prev.Requested {
			st.RenewAt = prev.RenewAt
		}
		st.Failures = prev.Failures
	}
	st.Failures++
	wait := min(ariFailureRecheck<<min(st.Failures-1, 10), ariMaxRecheck)
	st.CheckAgain = now.Add(wait).UTC()
	st.LastError = truncate(cause.Error(), 500)
	return st
}

// usable reports whether s holds a window the CA gave: both ends set, the
// start first, and a moment chosen inside it.
func (s *ARIState) usable() bool {
	return s != nil && !s.WindowStart.IsZero() && !s.WindowEnd.IsZero() && s.WindowStart.Before(s.WindowEnd) &&
		!s.RenewAt.IsZero() && !s.RenewAt.Before(s.WindowStart) && !s.RenewAt.After(s.WindowEnd.Add(time.Minute))
}

// ariDue reports whether the renewal window of r should be asked for.
func ariDue(r *CertRecord, now time.Time) bool {
	return r.ARI == nil || !now.Before(r.ARI.CheckAgain)
}

// refreshARI asks the CA for the renewal window of the certificate stored
// for main and records it in the certificate's record, with a write
// conditional on the revision read and fenced by the term. A failed query
// is recorded too, with a later question: it never moves the renewal.
func (m *Manager) refreshARI(ctx context.Context, term *leader.Term, a *config.ACME, ari ariClient, main string, log *slog.Logger) {
	key, err := m.cfg.Keys.Cert(main)
	if err != nil {
		return
	}
	kv, err := m.cfg.Store.Get(ctx, key)
	if err != nil {
		return
	}
	rec, err := DecodeCert(kv.Value)
	if err != nil || !ariDue(rec, time.Now()) || rec.CA != caURL(a) {
		return
	}
	leaf, err := parseLeaf([]byte(rec.Certificate))
	if err != nil {
		return
	}
	now := time.Now()
	st, err := ari.askARI(ctx, leaf, now)
	switch {
	case errors.Is(err, errNoARI):
		return // the CA's directory has no renewalInfo: nothing to ask
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		st = failedARI(rec.ARI, now, err)
		log.Info("renewal information not available; the certificate keeps its own schedule",
			"domain", main, "failures", st.Failures, "ask_again", st.CheckAgain, "err", err)
		m.cfg.Metrics.ARIFailed()
	case rec.ARI != nil && rec.ARI.Requested:
		// An operator's renewal request stands until the leader acts on it.
		st.Requested, st.RenewAt = true, rec.ARI.RenewAt
	}
	rec.ARI = st
	b, _ := json.MarshalIndent(rec, "", "  ")
	if _, err := term.Apply(ctx, kvstore.PutIfOp(key, b, kv.Revision)); err != nil && !errors.Is(err, kvstore.ErrConflict) {
		log.Debug("renewal information not stored", "domain", main, "err", err)
	}
}

// RenewAt is when to renew r: when a third of its lifetime remains, or
// earlier at the moment chosen in the CA's renewal window, or at once
// when an operator asked for it. A window that is not usable (an end
// missing, or the start not before the end, as a hand-edited record or a
// CA's error body would give) is ignored.
func (r *CertRecord) RenewAt() time.Time {
	at := r.NotAfter.Add(-r.NotAfter.Sub(r.NotBefore) / 3)
	switch a := r.ARI; {
	case a == nil:
	case a.Requested && !a.RenewAt.IsZero():
		return minTime(a.RenewAt, at)
	case a.usable():
		return minTime(a.RenewAt, at)
	}
	return at
}
