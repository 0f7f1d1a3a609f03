package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// pendingMessage is how config refuses the settings it decodes but that
// the replicas do not apply yet (config/validate_pending.go).
const pendingMessage = "are not implemented yet"

// acceptPending is config.Parse letting through the settings config
// still refuses as not implemented yet, and only those: the servers
// transport and the forwardAuth, errors, replacePath, replacePathRegex
// and stripPrefixRegex middlewares the conversion writes. It returns a
// nil configuration when it let some through. Once config accepts them,
// it is config.Parse: use config.Parse instead and remove it.
func acceptPending(name string, doc []byte) (*config.Config, error) {
	cfg, err := config.Parse(name, doc)
	var ce *config.Error
	if err == nil || !errors.As(err, &ce) {
		return cfg, err
	}
	var rest []config.Problem
	for _, p := range ce.Problems {
		if !strings.Contains(p.Message, pendingMessage) {
			rest = append(rest, p)
		}
	}
	if len(rest) > 0 {
		return nil, &config.Error{Source: ce.Source, Problems: rest}
	}
	return nil, nil
}

// convertPending converts src as convert does, validating with
// acceptPending, and returns the configuration as converted (the struct
// rendered into res.Config). Once config accepts what acceptPending lets
// through, the cases using it can use convert.
func convertPending(t *testing.T, src string) (*Result, *config.Config) {
	t.Helper()
	res, cfg, err := convertTraefikV1("traefik.toml", []byte(src), Options{}, acceptPending)
	if err != nil {
		t.Fatalf("TraefikV1: %v", err)
	}
	if _, err := acceptPending("converted.toml", res.Config); err != nil {
		t.Fatalf("the converted configuration does not validate: %v\n%s", err, res.Config)
	}
	return res, cfg
}
