package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
	"github.com/tollgate-proxy/tollgate/router"
)

// certs is a replica's ACME side: the cache every replica serves
// certificates and challenge answers from, and the manager that orders
// while the replica leads.
type certs struct {
	cache    *acme.Cache
	manager  *acme.Manager
	onDemand *acme.OnDemand
}

// setConfig hands a new configuration to the manager and on-demand TLS.
func (c *certs) setConfig(cfg *config.Config) {
	c.manager.SetConfig(cfg)
	c.onDemand.SetConfig(cfg)
}

// newCerts builds the ACME side when the configuration has an [acme]
// section; nil when it has none.
func newCerts(st kvstore.Store, prefix string, cfg *config.Config, cl *cluster, reg prometheus.Registerer, events router.EventRecorder, lg *slog.Logger) (*certs, error) {
	a := cfg.ACME
	if a == nil {
		return nil, nil
	}
	kr, err := loadKeyring(a)
	if err != nil {
		return nil, fail(exitInvalid, err)
	}
	if kr.Plaintext() {
		lg.Warn("INSECURE: ACME private keys are stored UNENCRYPTED (acme.insecurePlaintextKeys = true); anyone who can read the store can impersonate every site. Set acme.encryptionKeyFile or acme.encryptionKeyEnv.")
	}
	m, err := acme.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	keys := acme.NewKeys(prefix)
	cache, err := acme.NewCache(acme.CacheConfig{
		Store: st, Keys: keys, Keyring: kr, Logger: lg, Metrics: m,
		OnApplied: cl.registry.SetApplied, OnAnswered: cl.registry.ChallengeAnswered,
	})
	if err != nil {
		return nil, err
	}
	mgr, err := acme.NewManager(acme.ManagerConfig{
		Store: st, Keys: keys, Keyring: kr, Cache: cache, Leadership: cl.elector,
		RegistryPrefix: prefix + "/" + leader.DefaultRegistryPrefix, Node: cl.node,
		Logger: lg, Metrics: m,
		OnOrder: func(names []string, renewal bool, err error) {
			events.Record(orderEvent(names, renewal, err))
		},
	})
	if err != nil {
		return nil, err
	}
	od, err := acme.NewOnDemand(acme.OnDemandConfig{Cache: cache, Store: st, Keys: keys, Node: cl.node, Logger: lg})
	if err != nil {
		return nil, err
	}
	c := &certs{cache: cache, manager: mgr, onDemand: od}
	c.setConfig(cfg)
	return c, nil
}

// loadKeyring reads the encryption key as serve does, for serve and check.
func loadKeyring(a *config.ACME) (*acme.Keyring, error) {
	return acme.LoadKeyring(a.EncryptionKeyFile, a.EncryptionKeyEnv, a.InsecurePlaintextKeys, nil)
}

// orderEvent describes a finished order as an event.
func orderEvent(names []string, renewal bool, err error) (kind, message string) {
	what := "certificate"
	if renewal {
		what = "renewed certificate"
	}
	list := strings.Join(names, ", ")
	if err != nil {
		return router.EventCertificateOrderFailed, fmt.Sprintf("%s for %s not obtained: %v", what, list, err)
	}
	return router.EventCertificateOrdered, fmt.Sprintf("%s for %s obtained and stored", what, list)
}
