// Package dashboard serves tollgate's read-only web dashboard: a few
// static files (HTML, CSS and JavaScript, embedded in the binary) that
// read the JSON API under /api/ from the browser and poll it for live
// updates. It imports nothing of tollgate's; docs/dashboard.md describes
// the pages.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is where the dashboard is served; Path without the trailing
// slash redirects to it.
const (
	Prefix = "/dashboard/"
	Path   = "/dashboard"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is the policy every answer carries: only the
// dashboard's own files run and load, and they talk only to this origin;
// no inline script or style, no frames.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentType returns the type of an embedded file by its extension,
// fixed rather than read from the system's MIME tables.
func contentType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the embedded files.
type handler struct {
	files map[string]file // by name under assets, "index.html"
}

// Handler serves the dashboard under Prefix and redirects Path to it.
// Every answer carries ContentSecurityPolicy; the files are revalidated
// with their ETag at every load (Cache-Control: no-cache), so a new
// binary's dashboard is never mixed with an old one's.
func Handler() http.Handler {
	h := &handler{files: map[string]file{}}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h.files[name] = file{body: b, contentType: contentType(path.Ext(name)), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard is read-only: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == Path {
		target := Prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		hd.Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	if !ok {
		hd.Set("Cache-Control", "no-store")
		http.Error(w, "no dashboard file at "+r.URL.Path+": the dashboard starts at "+Prefix, http.StatusNotFound)
		return
	}
	hd.Set("Content-Type", f.contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
