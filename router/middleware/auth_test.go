package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate-proxy/tollgate/config"
)

// mwHash returns a bcrypt hash of password at the given cost.
func mwHash(t *testing.T, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// headerEcho answers 200 and lists the request headers named in the
// Echo request header as "Name=value" lines, "Name absent" when missing.
var headerEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	for _, name := range strings.Split(r.Header.Get("Echo"), ",") {
		if v, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
			fmt.Fprintf(w, "%s=%s\n", name, strings.Join(v, ","))
		} else {
			fmt.Fprintf(w, "%s absent\n", name)
		}
	}
})

func TestBasicAuth(t *testing.T) {
	alice := "alice:" + mwHash(t, "wonderland", bcrypt.MinCost)
	bob := "bob:" + mwHash(t, "builder", bcrypt.MinCost)
	tests := []struct {
		name          string
		cfg           config.BasicAuth
		user, pass    string
		noAuth        bool
		want          int
		wantChallenge string
		wantBody      string
	}{
		{name: "no credentials", cfg: config.BasicAuth{Users: []string{alice}}, noAuth: true, want: 401, wantChallenge: `Basic realm="tollgate"`},
		{name: "good password", cfg: config.BasicAuth{Users: []string{alice, bob}}, user: "bob", pass: "builder", want: 200, wantBody: "Authorization=Basic Ym9iOmJ1aWxkZXI=\nX-User=forged\n"},
		{name: "wrong password", cfg: config.BasicAuth{Users: []string{alice}}, user: "alice", pass: "Wonderland", want: 401, wantChallenge: `Basic realm="tollgate"`},
		{name: "unknown user", cfg: config.BasicAuth{Users: []string{alice}}, user: "mallory", pass: "wonderland", want: 401, wantChallenge: `Basic realm="tollgate"`},
		{name: "other user's password", cfg: config.BasicAuth{Users: []string{alice, bob}}, user: "alice", pass: "builder", want: 401, wantChallenge: `Basic realm="tollgate"`},
		{name: "realm quoted", cfg: config.BasicAuth{Users: []string{alice}, Realm: `my "realm"`}, user: "alice", want: 401, wantChallenge: `Basic realm="my \"realm\""`},
		{
			name: "header removed and user passed",
			cfg:  config.BasicAuth{Users: []string{alice}, RemoveHeader: true, HeaderField: "x-user"},
			user: "alice", pass: "wonderland", want: 200, wantBody: "Authorization absent\nX-User=alice\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewBasicAuth(headerEcho, &tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := newMWServer(t, h)
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("Echo", "Authorization,X-User")
			req.Header.Set("X-User", "forged") // replaced when HeaderField is X-User
			if !tt.noAuth {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, body := mwDo(t, req)
			if resp.StatusCode != tt.want {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tt.want)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("got WWW-Authenticate %q, want %q", got, tt.wantChallenge)
			}
			if tt.want == 200 && body != tt.wantBody {
				t.Errorf("got body %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestBasicAuthUsersFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	content := "# team\n\n  carol:" + mwHash(t, "fromfile", bcrypt.MinCost) + "  \r\n" +
		"dave:" + mwHash(t, "dave", bcrypt.MinCost) + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.BasicAuth{
		Users:     []string{"carol:" + mwHash(t, "inline", bcrypt.MinCost), "erin:" + mwHash(t, "erin", bcrypt.MinCost)},
		UsersFile: file,
	}
	h, err := NewBasicAuth(&mwNext{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The file is read once: later changes do not matter.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	srv := newMWServer(t, h)
	tests := []struct {
		user, pass string
		want       int
	}{
		{"carol", "fromfile", 200}, // the file wins
		{"carol", "inline", 401},
		{"dave", "dave", 200},
		{"erin", "erin", 200}, // inline users stay
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.SetBasicAuth(tt.user, tt.pass)
		if resp, _ := mwDo(t, req); resp.StatusCode != tt.want {
			t.Errorf("%s:%s: got %d, want %d", tt.user, tt.pass, resp.StatusCode, tt.want)
		}
	}
}

func TestNewBasicAuthErrors(t *testing.T) {
	dir := t.TempDir()
	dup := filepath.Join(dir, "dup")
	h := mwHash(t, "x", bcrypt.MinCost)
	if err := os.WriteFile(dup, []byte("a:"+h+"\n# c\na:"+h+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("\nnocolon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  *config.BasicAuth
		want string
	}{
		{name: "nil", want: "no configuration"},
		{name: "no users", cfg: &config.BasicAuth{}, want: "no users"},
		{name: "not a pair", cfg: &config.BasicAuth{Users: []string{"alice"}}, want: `users[0]: entry is not "name:hash"`},
		{name: "empty name", cfg: &config.BasicAuth{Users: []string{":" + h}}, want: `not "name:hash"`},
		{name: "duplicate", cfg: &config.BasicAuth{Users: []string{"a:" + h, "a:" + h}}, want: `users[1]: user "a" is listed twice`},
		{name: "missing file", cfg: &config.BasicAuth{UsersFile: filepath.Join(dir, "none")}, want: "reading users file"},
		{name: "duplicate in file", cfg: &config.BasicAuth{UsersFile: dup}, want: "line 3: user \"a\" is listed twice"},
		{name: "bad line in file", cfg: &config.BasicAuth{UsersFile: bad}, want: "line 2: entry is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewBasicAuth(&mwNext{}, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestBasicAuthErrorHidesHash checks that a refused hash is not quoted:
// it may be a password written in clear by mistake.
func TestBasicAuthErrorHidesHash(t *testing.T) {
	for _, secret := range []string{"plain-password", "$2a$99$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012", "x$2a$10$"} {
		_, err := NewBasicAuth(&mwNext{}, &config.BasicAuth{Users: []string{"alice:" + secret}})
		if err == nil {
			t.Fatalf("%q: got no error, want one", secret)
		}
		if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, secret[:2]) && strings.Contains(msg, "started with") {
			t.Errorf("got %q, which quotes the hash", msg)
		}
		if !strings.Contains(err.Error(), `user "alice" is not a bcrypt hash`) {
			t.Errorf("got %q, want it to name the user", err)
		}
	}
}

// TestBasicAuthCache checks that a verified password is remembered and
// a wrong one is not.
func TestBasicAuthCache(t *testing.T) {
	h, err := NewBasicAuth(&mwNext{}, &config.BasicAuth{Users: []string{"alice:" + mwHash(t, "pw", bcrypt.MinCost)}})
	if err != nil {
		t.Fatal(err)
	}
	a := h.(*basicAuth)
	if !a.verify("alice", "pw") {
		t.Fatal("got refused, want verified")
	}
	// A hash that matches nothing: only the cache can admit alice now.
	a.users["alice"] = []byte(mwHash(t, "other", bcrypt.MinCost))
	if !a.verify("alice", "pw") {
		t.Error("got refused after a success, want the cache to admit")
	}
	for range 2 { // a failure is not cached either
		if a.verify("alice", "wrong") {
			t.Error("got a wrong password admitted, want refused")
		}
	}
	if a.cache.key("ab", "c") == a.cache.key("a", "bc") {
		t.Error("got the same key for (ab, c) and (a, bc), want different")
	}
	for i := range 3 * authCacheSize {
		a.cache.add(a.cache.key(fmt.Sprint(i), "x"))
	}
	if n := len(a.cache.entries); n != authCacheSize {
		t.Errorf("got %d cache entries, want %d", n, authCacheSize)
	}
}

// TestBasicAuthDummyHash checks that unknown users cost as much as the
// most expensive known one.
func TestBasicAuthDummyHash(t *testing.T) {
	h, err := NewBasicAuth(&mwNext{}, &config.BasicAuth{Users: []string{
		"cheap:" + mwHash(t, "a", bcrypt.MinCost), "dear:" + mwHash(t, "b", bcrypt.MinCost+2),
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := h.(*basicAuth)
	cost, err := bcrypt.Cost(a.dummy)
	if err != nil || cost != bcrypt.MinCost+2 {
		t.Errorf("got dummy cost %d (%v), want %d", cost, err, bcrypt.MinCost+2)
	}
	if err := bcrypt.CompareHashAndPassword(a.dummy, []byte("b")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		t.Errorf("got %v comparing with the dummy hash, want a mismatch", err)
	}
}

// BenchmarkBasicAuthCached shows what the cache saves keep-alive clients.
func BenchmarkBasicAuthCached(b *testing.B) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	h, err := NewBasicAuth(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), &config.BasicAuth{Users: []string{"alice:" + string(hash)}})
	if err != nil {
		b.Fatal(err)
	}
	a := h.(*basicAuth)
	for b.Loop() {
		if !a.verify("alice", "pw") {
			b.Fatal("refused")
		}
	}
}
