package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// writePair writes a self-signed CA certificate for name and its key to dir
// and returns their paths.
func writePair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	c := testcert.NewCA(t, testcert.Spec{CommonName: name, Names: []string{name}, Serial: 1})
	return c.WriteFiles(t, dir, name)
}

// TestReadFiles checks that LoadOptions.ReadFiles reports each file of a
// serversTransport and of the default TLS store that cannot be used, at
// the file, line and column of the key that names it; and that without
// it no file is read.
func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	caFile, caKey := writePair(t, dir, "ca.test")
	otherCert, otherKey := writePair(t, dir, "other.test")
	notPEM := filepath.Join(dir, "not-pem.txt")
	if err := os.WriteFile(notPEM, []byte("just text\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	doc := fmt.Sprintf(`[entryPoints.web]
address = ":80"

[http.serversTransports.backend]
rootCAs = [%q, %q, %q]

[[http.serversTransports.backend.certificates]]
certFile = %q
keyFile = %q

[[http.serversTransports.backend.certificates]]
certFile = %q
keyFile = %q

[tls.stores.default.defaultCertificate]
certFile = %q
keyFile = %q

[[tls.certificates]]
certFile = %q
keyFile = %q
`, caFile, missing, notPEM, caFile, otherKey, otherCert, otherKey, missing, caKey, otherCert, missing)
	path := filepath.Join(dir, "tollgate.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := LoadFileWith(path, LoadOptions{}); err != nil {
		t.Fatalf("without ReadFiles: %v, want no error: no file is read", err)
	}
	_, err := LoadFileWith(path, LoadOptions{ReadFiles: true})
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("with ReadFiles: %v, want an *Error", err)
	}
	// An element of rootCAs is located at its column.
	line5 := strings.Split(doc, "\n")[4]
	col := func(s string) int { return strings.Index(line5, fmt.Sprintf("%q", s)) + 1 }
	want := []struct{ where, contains string }{
		{fmt.Sprintf("%s:5:%d: http.serversTransports.backend.rootCAs[1]", path, col(missing)), missing + " does not exist"},
		{fmt.Sprintf("%s:5:%d: http.serversTransports.backend.rootCAs[2]", path, col(notPEM)), "holds no PEM certificate"},
		{path + ":8:1: http.serversTransports.backend.certificates[0].certFile", "private key does not match public key"},
		{path + ":16:1: tls.stores.default.defaultCertificate.certFile", "certificate file " + missing + " does not exist"},
		// A missing key file is reported at keyFile.
		{path + ":21:1: tls.certificates[0].keyFile", "key file " + missing + " does not exist"},
	}
	if len(ce.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ce.Problems), len(want), err)
	}
	for i, w := range want {
		got := ce.Problems[i].String()
		if !strings.HasPrefix(got, w.where+": ") || !strings.Contains(got, w.contains) {
			t.Errorf("problem %d:\n got %s\nwant %s: …%s…", i, got, w.where, w.contains)
		}
	}
}
