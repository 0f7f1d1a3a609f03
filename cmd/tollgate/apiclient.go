package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/router"
)

// apiInspector reads the views from a running replica's API
// (/api/certificates, /api/certificates/NAME, /api/cluster): what the
// commands use while the embedded store is held by that replica.
type apiInspector struct {
	base   *url.URL
	client *http.Client
}

var _ inspector = (*apiInspector)(nil)

// maxAPIResponse bounds what is read of one API answer.
const maxAPIResponse = 64 << 20

// newAPIInspector checks raw, the API's base URL (http://HOST:PORT; a
// HOST:PORT alone is taken as http://, and a trailing /api is dropped, as
// the paths read add it).
func newAPIInspector(raw string) (*apiInspector, error) {
	withScheme := raw
	if !strings.Contains(raw, "://") {
		withScheme = "http://" + raw
	}
	u, err := url.Parse(withScheme)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: want http://HOST:PORT, the replica's [api] entry point", raw)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api")
	return &apiInspector{base: u, client: &http.Client{Timeout: 30 * time.Second}}, nil
}

func (a *apiInspector) String() string { return a.base.Redacted() }

func (a *apiInspector) Certificates(ctx context.Context) ([]router.CertificateInfo, error) {
	var out []router.CertificateInfo
	err := a.get(ctx, "/api/certificates", &out)
	return out, err
}

func (a *apiInspector) Certificate(ctx context.Context, name string) (router.CertificateInfo, error) {
	var out router.CertificateInfo
	err := a.get(ctx, "/api/certificates/"+url.PathEscape(name), &out)
	return out, err
}

func (a *apiInspector) Cluster(ctx context.Context) (router.ClusterInfo, error) {
	var out router.ClusterInfo
	err := a.get(ctx, "/api/cluster", &out)
	return out, err
}

// get decodes the JSON answer of GET path into v; 404 is errNoSuchCert.
func (a *apiInspector) get(ctx context.Context, path string, v any) error {
	u := a.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("the API at %s: %w", a, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxAPIResponse)
	switch {
	case resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/api/certificates/"):
		return errNoSuchCert
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("GET %s: 404: no tollgate API serves %s there: give --api the replica's [api] entry point, http://HOST:PORT (a replica older than this command does not serve it)", u.Redacted(), path)
	case resp.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(body, 512))
		return fmt.Errorf("GET %s: %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: the answer does not decode: %w", u.Redacted(), err)
	}
	return nil
}

// errStoreInUse: the embedded store file is locked by a running replica.
var errStoreInUse = errors.New("in use by a running replica")

// storeInUseHint says what to do about errStoreInUse.
const storeInUseHint = "certs and cluster status read its API with --api http://HOST:PORT (its [api] entry point); kv and the other commands need it stopped"
