package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzRead checks that Read never panics, leaves every byte after a header
// (and every byte of an input without one) in the reader, and that what
// it reads, written again in the same version, reads back the same.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 12345 80\r\nGET",
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN x y\r\n",
		"GET / HTTP/1.1\r\n",
		v2(0x21, 0x11, inet4Body),
		v2(0x21, 0x22, inet6Body, []byte{0x01, 0, 2, 'h', '2'}),
		v2(0x20, 0x00),
		v2(0x21, 0x31, make([]byte, lenUnix)),
		v2(0x21, 0x11, inet4Body, []byte{1, 0, 3, 'a'}),
	} {
		f.Add([]byte(s + trailer))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(in), 16)
		h, err := Read(r)
		rest, _ := io.ReadAll(r)
		if err != nil {
			if errors.Is(err, ErrNoHeader) && !bytes.Equal(rest, in) {
				t.Fatalf("ErrNoHeader consumed %d bytes", len(in)-len(rest))
			}
			return
		}
		n := len(in) - len(rest)
		if !bytes.Equal(in[n:], rest) {
			t.Fatalf("the bytes after the header changed")
		}
		out, err := h.Append(nil)
		if err != nil {
			t.Fatalf("Append(%+v): %v", h, err)
		}
		if h.Version == 1 && len(out) > MaxV1Length {
			t.Fatalf("wrote a version 1 line of %d bytes", len(out))
		}
		r2 := bufio.NewReader(bytes.NewReader(append(out, "tail"...)))
		h2, err := Read(r2)
		if err != nil {
			t.Fatalf("Read(%q) of Write(%+v): %v", out, h, err)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("read %+v, wrote %q, read back %+v", h, out, h2)
		}
		if tail, _ := io.ReadAll(r2); string(tail) != "tail" {
			t.Fatalf("re-reading left %q, want %q", tail, "tail")
		}
	})
}
