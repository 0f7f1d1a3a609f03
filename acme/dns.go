package acme

import (
	"fmt"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/go-acme/lego/v4/providers/dns"

	"github.com/tollgate-proxy/tollgate/config"
)

// setDNS enables DNS-01 through the lego DNS provider the configuration
// names; the provider reads its credentials from the environment
// variables it documents.
func (m *Manager) setDNS(solvers dnsSolvers, c *config.DNSChallenge) error {
	p, err := dns.NewDNSChallengeProviderByName(c.Provider)
	if err != nil {
		return fmt.Errorf("DNS provider %q: %w", c.Provider, err)
	}
	var opts []dns01.ChallengeOption
	if len(c.Resolvers) > 0 {
		opts = append(opts, dns01.AddRecursiveNameservers(dns01.ParseNameservers(c.Resolvers)))
	}
	if d := c.DelayBeforeCheck.Std(); d > 0 || c.DisablePropagationCheck {
		opts = append(opts, dns01.PropagationWait(d, c.DisablePropagationCheck))
	}
	return solvers.SetDNS01Provider(p, opts...)
}

// dnsSolvers is where a DNS-01 provider is set: lego's solver manager.
type dnsSolvers interface {
	SetDNS01Provider(p challenge.Provider, opts ...dns01.ChallengeOption) error
}
