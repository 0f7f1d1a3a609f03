package clienthello

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzPeek checks that Peek never panics, never consumes a byte, reports
// a hello no longer than its input, needs no byte past the hello, and
// fails only with its documented errors.
func FuzzPeek(f *testing.F) {
	for _, cfg := range []*tls.Config{
		{ServerName: "a.example", NextProtos: []string{"h2", "http/1.1"}},
		{ServerName: "a.example", MaxVersion: tls.VersionTLS12},
		{InsecureSkipVerify: true},
	} {
		whole := captureHello(f, cfg)
		f.Add(whole)
		f.Add(split(whole[recordHeaderLen:], 1, 3, 50))
	}
	f.Add(newSpec(versionsExt(0x0304), alpnExt("h2"), sniExt("A.example")).wire())
	f.Add(newSpec().wire())
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{})
	// Each worker runs the inputs one at a time: its readers are reused,
	// so that an execution costs no 16 KiB buffers.
	br, moved, alone := NewReader(nil), NewReader(nil), NewReader(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		br.Reset(bytes.NewReader(data))
		h, err := Peek(br)
		// The same input behind 3 consumed bytes, arriving in pieces, so
		// that Peek's fills move the buffered bytes: the same answer.
		k := len(data) / 2
		moved.Reset(io.MultiReader(bytes.NewReader(append([]byte("xyz"), data[:k]...)), iotest.HalfReader(bytes.NewReader(data[k:]))))
		if _, derr := moved.Discard(3); derr != nil {
			t.Fatal(derr)
		}
		hm, errm := Peek(moved)
		if (err == nil) != (errm == nil) || err != nil && err.Error() != errm.Error() || err == nil && !equalHello(*h, *hm) {
			t.Fatalf("Peek after consumed bytes = %+v, %v; want %+v, %v", hm, errm, h, err)
		}
		rest, _ := io.ReadAll(br)
		if !bytes.Equal(rest, data) {
			t.Fatalf("Peek consumed input: %d bytes left of %d", len(rest), len(data))
		}
		if err != nil {
			for _, known := range []error{ErrNotTLS, ErrTruncated, ErrTooLarge, ErrMalformed} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("undocumented error %v", err)
		}
		if h.Len <= 0 || h.Len > len(data) || h.Len > MaxLen {
			t.Fatalf("Len %d with %d bytes of input", h.Len, len(data))
		}
		if h.ServerName != strings.ToLower(h.ServerName) {
			t.Fatalf("server name %q is not lowercase", h.ServerName)
		}
		alone.Reset(bytes.NewReader(data[:h.Len]))
		h2, err := Peek(alone)
		if err != nil || !equalHello(*h, *h2) {
			t.Fatalf("Peek of the hello's %d bytes alone = %+v, %v; of the whole input %+v", h.Len, h2, err, *h)
		}
	})
}
