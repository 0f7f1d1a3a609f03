package consul

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// TestLimitsFit checks MaxValueBytes against the real encoding: one value
// of that size under a key of the longest length, fenced, fits in
// MaxTxnBytes, for the default and a raised limit.
func TestLimitsFit(t *testing.T) {
	for _, maxTxn := range []int{DefaultMaxTxnBytes, 64 << 10, 700 << 10} {
		lim := limitsFor(maxTxn)
		key := strings.Repeat("k", kvstore.MaxKeyBytes)
		op := kvstore.PutIfOp(key, make([]byte, lim.MaxValueBytes), 12345678901234)
		if err := lim.CheckOps([]kvstore.Op{op}); err != nil {
			t.Fatalf("MaxTxnBytes %d: CheckOps of a max-size op: %v", maxTxn, err)
		}
		fence := &lock{key: key, session: "9c2d3f4e-0000-4000-8000-123456789abc"}
		body, err := json.Marshal(buildTxn(fence, []kvstore.Op{op}).ops)
		if err != nil {
			t.Fatal(err)
		}
		if len(body)+1 > maxTxn {
			t.Errorf("MaxTxnBytes %d: a fenced max-size op encodes to %d bytes", maxTxn, len(body))
		}
		if lim.MaxValueBytes > consulMaxValueBytes {
			t.Errorf("MaxTxnBytes %d: MaxValueBytes %d above Consul's value limit", maxTxn, lim.MaxValueBytes)
		}
	}
}

// TestOpOverhead checks that OpOverhead covers the JSON framing of every
// kind of op, so that TxnBytes never undercounts.
func TestOpOverhead(t *testing.T) {
	lim := limitsFor(DefaultMaxTxnBytes)
	for _, op := range []kvstore.Op{
		kvstore.PutOp("k", []byte("v")),
		kvstore.PutIfOp("k", []byte("v"), math.MaxInt64),
		kvstore.DeleteOp("k"),
		kvstore.CheckOp("k", 0),
		kvstore.CheckOp("k", math.MaxInt64),
	} {
		body, err := json.Marshal(buildTxn(nil, []kvstore.Op{op}).ops)
		if err != nil {
			t.Fatal(err)
		}
		// +1 for the comma between ops of a batch.
		b64 := base64.StdEncoding.EncodedLen(len(op.Value))
		if framing := len(body) - 2 - len(op.Key) - b64 + 1; framing > lim.OpOverhead {
			t.Errorf("%s: framing %d bytes > OpOverhead %d: %s", op.Kind, framing, lim.OpOverhead, body)
		}
	}
}

func TestBuildTxn(t *testing.T) {
	ops := []kvstore.Op{
		kvstore.PutOp("a", []byte("1")),
		kvstore.PutIfOp("b", []byte("2"), 0),
		kvstore.PutIfOp("c", []byte("3"), 7),
		kvstore.DeleteOp("d"),
		kvstore.DeleteIfOp("e", 0),
		kvstore.DeleteIfOp("f", 9),
		kvstore.CheckOp("g", 0),
		kvstore.CheckOp("h", 4),
	}
	tx := buildTxn(&lock{key: "l", session: "s"}, ops)
	var got []string
	for _, op := range tx.ops {
		got = append(got, string(op.KV.Verb)+":"+op.KV.Key)
	}
	want := []string{
		"check-session:l", "set:a", "cas:b", "cas:c", "delete:d", "check-not-exists:e",
		"check-index:f", "delete:f", "check-not-exists:g", "check-index:h",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ops:\n got %q\nwant %q", got, want)
	}
	if wantOrigin := []int{-1, 0, 1, 2, 3, 4, 5, 5, 6, 7}; !slices.Equal(tx.origin, wantOrigin) {
		t.Fatalf("origin: got %v, want %v", tx.origin, wantOrigin)
	}
	if !tx.puts {
		t.Fatal("puts: got false")
	}
}

func TestIsConflict(t *testing.T) {
	for what, want := range map[string]bool{
		`failed to set key "a", index is stale`:                       true,
		`failed to delete key "a", index is stale`:                    true,
		`failed to check index, key "a" doesn't exist`:                true,
		`failed index check for key "a", current modify index 5 != 4`: true,
		`key "a" exists`: true,
		`Permission denied: token with AccessorID '0' lacks permission 'key:write' on "a"`: false,
		`failed kvs lookup: boom`: false,
	} {
		if got := isConflict(what); got != want {
			t.Errorf("isConflict(%q): got %t, want %t", what, got, want)
		}
	}
}
