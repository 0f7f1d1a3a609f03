package embedded

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord checks that no stored bytes crash the decoder and that
// whatever it accepts encodes back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(record{createRev: 1, modRev: 2, lease: 3, value: []byte("v")}.encode())
	f.Add(record{}.encode())
	f.Add([]byte{})
	f.Add([]byte{recordFormat, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if got := r.encode(); !bytes.Equal(got, b) {
			t.Fatalf("decode then encode: got %x, want %x", got, b)
		}
	})
}
