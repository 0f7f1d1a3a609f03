package middleware

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate-proxy/tollgate/config"
)

// defaultRealm is the realm of a BasicAuth whose Realm is empty.
const defaultRealm = "tollgate"

// authCacheSize bounds the number of remembered successful verifications
// of one BasicAuth middleware.
const authCacheSize = 1024

// NewBasicAuth returns a handler that passes requests carrying the
// credentials of a configured user to next, and answers all others with
// 401 and a "WWW-Authenticate: Basic realm=..." challenge.
//
// Users come from cfg.Users and from cfg.UsersFile, which is read once,
// here; both hold "name:hash" entries, the file one per line with blank
// lines and lines starting with "#" skipped. As in Traefik the two are
// merged and the file wins for a name in both. Only bcrypt hashes
// (htpasswd -nB) are accepted.
//
// A request naming an unknown user is compared against a dummy hash of
// the highest configured cost, so that the response time does not tell
// which users exist.
//
// bcrypt is deliberately slow, and a keep-alive client sends its
// credentials with every request. Successful verifications are therefore
// remembered in a cache of at most 1024 entries, keyed by HMAC-SHA-256 of
// user and password under a random key drawn for this middleware
// instance: the cache holds neither passwords nor values that can be
// tested offline without that key, and it lives only as long as this
// configuration. Failed verifications are never cached.
//
// With cfg.RemoveHeader the Authorization header is not passed on; with
// cfg.HeaderField the authenticated user name is passed in that header.
func NewBasicAuth(next http.Handler, cfg *config.BasicAuth) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("basic auth: no configuration")
	}
	users, err := loadUsers(cfg)
	if err != nil {
		return nil, fmt.Errorf("basic auth: %w", err)
	}
	if len(users) == 0 {
		return nil, errors.New("basic auth: no users")
	}
	dummy, err := dummyHash(users)
	if err != nil {
		return nil, fmt.Errorf("basic auth: %w", err)
	}
	cache, err := newAuthCache(authCacheSize)
	if err != nil {
		return nil, fmt.Errorf("basic auth: %w", err)
	}
	realm := cfg.Realm
	if realm == "" {
		realm = defaultRealm
	}
	return &basicAuth{
		next:         next,
		users:        users,
		dummy:        dummy,
		challenge:    `Basic realm="` + quoteRealm(realm) + `"`,
		removeHeader: cfg.RemoveHeader,
		headerField:  http.CanonicalHeaderKey(cfg.HeaderField),
		cache:        cache,
	}, nil
}

type basicAuth struct {
	next         http.Handler
	users        map[string][]byte // name → bcrypt hash
	dummy        []byte
	challenge    string
	removeHeader bool
	headerField  string
	cache        *authCache
}

func (a *basicAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || !a.verify(user, pass) {
		w.Header().Set("WWW-Authenticate", a.challenge)
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	if a.removeHeader {
		r.Header.Del("Authorization")
	}
	if a.headerField != "" {
		r.Header.Set(a.headerField, user)
	}
	a.next.ServeHTTP(w, r)
}

// verify reports whether pass is the password of user.
func (a *basicAuth) verify(user, pass string) bool {
	key := a.cache.key(user, pass)
	if a.cache.has(key) {
		return true
	}
	hash, known := a.users[user]
	if !known {
		// Spend the same time as for a known user, then fail.
		_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(pass))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.cache.add(key)
	return true
}

// loadUsers merges cfg.Users and the entries of cfg.UsersFile.
func loadUsers(cfg *config.BasicAuth) (map[string][]byte, error) {
	users := make(map[string][]byte)
	for i, entry := range cfg.Users {
		name, hash, err := parseUser(entry)
		if err != nil {
			return nil, fmt.Errorf("users[%d]: %w", i, err)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("users[%d]: user %q is listed twice", i, name)
		}
		users[name] = hash
	}
	if cfg.UsersFile == "" {
		return users, nil
	}
	data, err := os.ReadFile(cfg.UsersFile)
	if err != nil {
		return nil, fmt.Errorf("reading users file: %w", err)
	}
	fromFile := make(map[string]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, err := parseUser(line)
		if err != nil {
			return nil, fmt.Errorf("users file %s line %d: %w", cfg.UsersFile, n, err)
		}
		if fromFile[name] {
			return nil, fmt.Errorf("users file %s line %d: user %q is listed twice", cfg.UsersFile, n, name)
		}
		fromFile[name] = true
		users[name] = hash // the file wins over cfg.Users
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading users file %s: %w", cfg.UsersFile, err)
	}
	return users, nil
}

// parseUser splits a "name:hash" entry and checks that the hash is a
// bcrypt hash. Errors never quote the hash.
func parseUser(entry string) (string, []byte, error) {
	name, hash, ok := strings.Cut(strings.TrimSpace(entry), ":")
	if !ok || name == "" {
		return "", nil, errors.New(`entry is not "name:hash"`)
	}
	h := []byte(hash)
	if _, err := bcrypt.Cost(h); err != nil {
		// bcrypt's error quotes characters of the hash; leave it out.
		return "", nil, fmt.Errorf("the password of user %q is not a bcrypt hash; create one with htpasswd -nB %s", name, name)
	}
	return name, h, nil
}

// dummyHash returns a bcrypt hash of a random password at the highest
// cost of users. It is made at the lowest cost and then given the higher
// cost: comparing against it takes as long as against a real hash of
// that cost, without spending that time here.
func dummyHash(users map[string][]byte) ([]byte, error) {
	cost := bcrypt.MinCost
	for _, h := range users {
		if c, err := bcrypt.Cost(h); err == nil && c > cost {
			cost = c
		}
	}
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, fmt.Errorf("drawing a dummy password: %w", err)
	}
	h, err := bcrypt.GenerateFromPassword(pw[:], bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("making a dummy hash: %w", err)
	}
	// The cost is the two digits after "$2a$".
	copy(h[4:6], fmt.Sprintf("%02d", cost))
	return h, nil
}

// quoteRealm escapes a realm for a quoted-string (RFC 9110, 5.6.4).
func quoteRealm(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// authCache remembers successful verifications. It is safe for
// concurrent use.
type authCache struct {
	secret [32]byte
	max    int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]struct{}
}

func newAuthCache(maxEntries int) (*authCache, error) {
	c := &authCache{max: maxEntries, entries: make(map[[sha256.Size]byte]struct{})}
	if _, err := rand.Read(c.secret[:]); err != nil {
		return nil, fmt.Errorf("drawing a cache key: %w", err)
	}
	return c, nil
}

// key returns the cache key of user and pass; the user's length is
// included so that ("ab", "c") and ("a", "bc") differ.
func (c *authCache) key(user, pass string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.secret[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(user)))
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(pass))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

func (c *authCache) has(k [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[k]
	return ok
}

// add remembers k; when the cache is full an arbitrary entry makes room,
// which costs its owner one more bcrypt comparison.
func (c *authCache) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok {
		return
	}
	if len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = struct{}{}
}
