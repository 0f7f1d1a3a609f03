package kvstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

var keyCases = []struct {
	key   string
	valid bool
}{
	{"a", true},
	{"acme/certs/example.com", true},
	{"acme/certs/*.example.com", true},
	{"config/routers/web@file/rule", true},
	{"a/b~c/D-E_F.0", true},
	{"...", true},
	{"", false},
	{"/a", false},
	{"a/", false},
	{"a//b", false},
	{"a/./b", false},
	{"a/../b", false},
	{"../a", false},
	{"..", false},
	{".", false},
	{"a b", false},
	{"a\tb", false},
	{"a\nb", false},
	{"a\x00b", false},
	{"a\x7fb", false},
	{"ä", false},
	{strings.Repeat("k", kvstore.MaxKeyBytes), true},
	{strings.Repeat("k", kvstore.MaxKeyBytes+1), false},
}

func TestValidateKey(t *testing.T) {
	for _, tc := range keyCases {
		err := kvstore.ValidateKey(tc.key)
		if (err == nil) != tc.valid {
			t.Errorf("ValidateKey(%q): got %v, want valid=%v", tc.key, err, tc.valid)
		}
		if err != nil && !errors.Is(err, kvstore.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q): got %v, want it to wrap ErrInvalidKey", tc.key, err)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		valid  bool
	}{
		{"", true},
		{"acme/", true},
		{"acme/certs", true},
		{"/", false},
		{"acme//", false},
		{"../", false},
		{"a b/", false},
	} {
		if err := kvstore.ValidatePrefix(tc.prefix); (err == nil) != tc.valid {
			t.Errorf("ValidatePrefix(%q): got %v, want valid=%v", tc.prefix, err, tc.valid)
		}
	}
}

func TestJoin(t *testing.T) {
	for _, tc := range []struct {
		segments []string
		want     string
	}{
		{[]string{"acme", "certs", "example.com"}, "acme/certs/example.com"},
		{[]string{"acme", "certs", "../accounts"}, ""},
		{[]string{"acme", "certs", "a/b"}, ""},
		{[]string{"acme", "", "x"}, ""},
		{[]string{"acme", ".."}, ""},
	} {
		got, err := kvstore.Join(tc.segments...)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("Join(%q): got %q, %v; want %q", tc.segments, got, err, tc.want)
		}
	}
}

// FuzzValidateKey checks that every accepted key is one all backends can
// store: printable ASCII, bounded, and without segments that could climb out
// of a prefix or collapse into another key.
func FuzzValidateKey(f *testing.F) {
	for _, tc := range keyCases {
		f.Add(tc.key)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if err := kvstore.ValidateKey(key); err != nil {
			if !errors.Is(err, kvstore.ErrInvalidKey) {
				t.Fatalf("ValidateKey(%q): error %v does not wrap ErrInvalidKey", key, err)
			}
			return
		}
		if key == "" || len(key) > kvstore.MaxKeyBytes {
			t.Fatalf("accepted key of %d bytes", len(key))
		}
		for i := 0; i < len(key); i++ {
			if key[i] <= ' ' || key[i] > '~' {
				t.Fatalf("accepted %q with byte %#x", key, key[i])
			}
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q with segment %q", key, seg)
			}
		}
		if err := kvstore.ValidatePrefix(key); err != nil {
			t.Fatalf("valid key %q is not a valid prefix: %v", key, err)
		}
		if err := kvstore.ValidatePrefix(key + "/"); err != nil {
			t.Fatalf("valid key %q plus / is not a valid prefix: %v", key, err)
		}
	})
}

func TestCheckOps(t *testing.T) {
	lim := kvstore.Limits{Backend: "test", MaxValueBytes: 10, MaxTxnOps: 3, MaxTxnBytes: 40, OpOverhead: 2, Base64Values: true}
	for _, tc := range []struct {
		name string
		ops  []kvstore.Op
		want error // nil: valid; otherwise the sentinel, or errAny
	}{
		{"one put", []kvstore.Op{kvstore.PutOp("a", []byte("v"))}, nil},
		{"empty", nil, kvstore.ErrTxnTooLarge},
		{"too many", []kvstore.Op{kvstore.CheckOp("a", 0), kvstore.CheckOp("b", 0), kvstore.CheckOp("c", 0), kvstore.CheckOp("d", 0)}, kvstore.ErrTxnTooLarge},
		{"value too large", []kvstore.Op{kvstore.PutOp("a", make([]byte, 11))}, kvstore.ErrValueTooLarge},
		// base64 of 10 bytes is 16; three of them with keys and overhead exceed 40.
		{"txn bytes", []kvstore.Op{kvstore.PutOp("a", make([]byte, 10)), kvstore.PutOp("b", make([]byte, 10)), kvstore.PutOp("c", make([]byte, 10))}, kvstore.ErrTxnTooLarge},
		{"bad key", []kvstore.Op{kvstore.PutOp("a/../b", nil)}, kvstore.ErrInvalidKey},
		{"written twice", []kvstore.Op{kvstore.PutOp("a", nil), kvstore.DeleteOp("a")}, errAny},
		{"check and write", []kvstore.Op{kvstore.CheckOp("a", 3), kvstore.PutOp("a", nil)}, nil},
		{"delete with value", []kvstore.Op{{Kind: kvstore.OpDelete, Key: "a", Value: []byte("x")}}, errAny},
		{"unknown kind", []kvstore.Op{{Kind: 9, Key: "a"}}, errAny},
		{"unconditional check", []kvstore.Op{{Kind: kvstore.OpCheck, Key: "a"}}, errAny},
		{"negative revision", []kvstore.Op{kvstore.PutIfOp("a", nil, -1)}, errAny},
	} {
		err := lim.CheckOps(tc.ops)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: got %v, want nil", tc.name, err)
		case tc.want == errAny && err == nil:
			t.Errorf("%s: got nil, want an error", tc.name)
		case tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

var errAny = errors.New("any error")
