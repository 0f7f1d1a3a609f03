package acme

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// DefaultGCGrace is how long an unused certificate is kept when
// garbage collection is on and sets no grace period.
const DefaultGCGrace = 30 * 24 * time.Hour

// collect deletes the certificates no wanted certificate has as main name
// once they have been unused for the grace period, when the configuration
// turns garbage collection on. The moment a certificate was first seen
// unused is kept in its state key, so the grace period survives leader
// changes. It returns when to look again.
func (m *Manager) collect(ctx context.Context, term *leader.Term, cfg *config.Config, view *View, wants []Want, now time.Time, log *slog.Logger) time.Time {
	next := now.Add(time.Hour)
	gc := cfg.ACME.GarbageCollect
	if gc == nil {
		return next
	}
	grace := cmp.Or(gc.GracePeriod.Std(), DefaultGCGrace)
	wanted := make(map[string]bool, len(wants))
	for _, w := range wants {
		wanted[w.Main()] = true
	}
	for main, e := range view.Certs {
		st := view.States[main]
		stateKey, err := m.cfg.Keys.State(main)
		if err != nil {
			continue
		}
		certKey, _ := m.cfg.Keys.Cert(main)
		// Each state write is conditional on the certificate the view
		// holds: folders are watched apart, so the view may still hold a
		// certificate whose deletion its state folder already shows.
		check := kvstore.CheckOp(certKey, e.Revision)
		if wanted[main] {
			if st != nil && !st.Unused.IsZero() {
				s := *st
				s.Unused = time.Time{}
				m.putState(ctx, term, stateKey, &s, check, log)
			}
			continue
		}
		if st == nil || st.Unused.IsZero() {
			s := DomainState{}
			if st != nil {
				s = *st
			}
			s.Unused = now.UTC()
			m.putState(ctx, term, stateKey, &s, check, log)
			next = minTime(next, now.Add(grace))
			continue
		}
		if at := st.Unused.Add(grace); now.Before(at) {
			next = minTime(next, at)
			continue
		}
		if _, err := term.Apply(ctx, kvstore.DeleteIfOp(certKey, e.Revision), kvstore.DeleteOp(stateKey)); err != nil {
			log.Warn("unused certificate not deleted", "domain", main, "err", err)
			continue
		}
		log.Info("deleted a certificate no longer configured", "domain", main, "unused_since", st.Unused, "grace_period", grace)
	}
	return next
}

// putState writes st at key if the condition cond holds; a failed
// condition (the view was behind) is left for the next plan.
func (m *Manager) putState(ctx context.Context, term *leader.Term, key string, st *DomainState, cond kvstore.Op, log *slog.Logger) {
	b, _ := json.MarshalIndent(st, "", "  ")
	_, err := term.Apply(ctx, cond, kvstore.PutOp(key, b))
	if err != nil && !errors.Is(err, kvstore.ErrConflict) {
		log.Warn("certificate state not stored", "key", key, "err", err)
	}
}
