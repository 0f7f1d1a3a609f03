package clienthello

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// bufConn is a connection whose reads go through a bufio.Reader.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestRealHandshake peeks at the hellos of crypto/tls clients and then
// completes the handshake through the same bufio.Reader, which proves that
// Peek left every byte in it.
func TestRealHandshake(t *testing.T) {
	cert := testcert.SelfSigned(t, testcert.Spec{Names: []string{"www.example.com", "127.0.0.1"}})
	tests := []struct {
		name   string
		client *tls.Config
		want   Hello
	}{{
		name:   "TLS 1.3 with SNI and ALPN",
		client: &tls.Config{ServerName: "WWW.Example.com", NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS13},
		want:   Hello{ServerName: "www.example.com", ALPN: []string{"h2", "http/1.1"}, Versions: []uint16{tls.VersionTLS13}},
	}, {
		name:   "TLS 1.2 or 1.3",
		client: &tls.Config{ServerName: "www.example.com", NextProtos: []string{"http/1.1"}},
		want:   Hello{ServerName: "www.example.com", ALPN: []string{"http/1.1"}, Versions: []uint16{tls.VersionTLS13, tls.VersionTLS12}},
	}, {
		name:   "TLS 1.2 only",
		client: &tls.Config{ServerName: "www.example.com", NextProtos: []string{"h2"}, MaxVersion: tls.VersionTLS12},
		want:   Hello{ServerName: "www.example.com", ALPN: []string{"h2"}, Versions: []uint16{tls.VersionTLS12}},
	}, {
		name:   "no SNI, no ALPN",
		client: &tls.Config{ServerName: "127.0.0.1"}, // crypto/tls sends no IP in SNI
		want:   Hello{Versions: []uint16{tls.VersionTLS13, tls.VersionTLS12}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientCfg := tt.client.Clone()
			clientCfg.RootCAs = cert.Pool()
			serverCfg := &tls.Config{
				Certificates:           []tls.Certificate{cert.TLS()},
				NextProtos:             []string{"h2", "http/1.1"},
				SessionTicketsDisabled: true, // net.Pipe is unbuffered: no writes the client does not read
			}
			c, s := net.Pipe()
			clientErr := make(chan error, 1)
			go func() {
				defer c.Close()
				tc := tls.Client(c, clientCfg)
				if err := tc.Handshake(); err != nil {
					clientErr <- err
					return
				}
				_, err := tc.Write([]byte("ping"))
				clientErr <- err
			}()
			defer s.Close()

			br := NewReader(s)
			h, err := Peek(br)
			if err != nil {
				t.Fatalf("Peek: %v", err)
			}
			if br.Buffered() < h.Len {
				t.Errorf("Len is %d, but only %d bytes are buffered", h.Len, br.Buffered())
			}
			got := *h
			got.Len = 0
			if !equalHello(got, tt.want) {
				t.Errorf("Peek = %+v, want %+v", got, tt.want)
			}

			ts := tls.Server(bufConn{Conn: s, r: br}, serverCfg)
			if err := ts.Handshake(); err != nil {
				t.Fatalf("server handshake after Peek: %v", err)
			}
			msg := make([]byte, 4)
			if _, err := io.ReadFull(ts, msg); err != nil || string(msg) != "ping" {
				t.Fatalf("server read %q, %v; want ping", msg, err)
			}
			if err := <-clientErr; err != nil {
				t.Fatalf("client: %v", err)
			}
			st := ts.ConnectionState()
			if st.ServerName != "" && strings.ToLower(st.ServerName) != h.ServerName {
				t.Errorf("crypto/tls read server name %q, Peek %q", st.ServerName, h.ServerName)
			}
			if len(h.ALPN) > 0 && st.NegotiatedProtocol != h.ALPN[0] {
				t.Errorf("negotiated %q, want the client's first choice %q", st.NegotiatedProtocol, h.ALPN[0])
			}
		})
	}
}

func equalHello(a, b Hello) bool {
	return a.ServerName == b.ServerName && slices.Equal(a.ALPN, b.ALPN) && slices.Equal(a.Versions, b.Versions) && a.Len == b.Len
}

// TestSplitRecords carries a real hello in several records, split in the
// handshake header too, and checks that Peek reads exactly those records.
func TestSplitRecords(t *testing.T) {
	whole := captureHello(t, &tls.Config{ServerName: "split.example", NextProtos: []string{"h2"}})
	want, err := peekAll(t, whole)
	if err != nil {
		t.Fatalf("Peek of the hello in one record: %v", err)
	}
	msg := whole[recordHeaderLen:]
	for _, sizes := range [][]int{
		{1}, {2}, {3}, {4}, {5}, {len(msg) - 1}, {1, 1, 1, 1},
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		{len(msg) / 2},
	} {
		input := split(msg, sizes...)
		h, err := peekAll(t, input)
		if err != nil {
			t.Errorf("split %v: %v", sizes, err)
			continue
		}
		w := *want
		w.Len = len(input)
		if !equalHello(*h, w) {
			t.Errorf("split %v: Peek = %+v, want %+v", sizes, *h, w)
		}
		// Peek must not need a byte past the hello: the source fails
		// every read after it, and hands out one byte per read.
		h2, err := Peek(NewReader(&oneByteThenFail{b: input}))
		if err != nil || h2.Len != len(input) {
			t.Errorf("split %v, one byte per read, nothing after: Peek = %+v, %v", sizes, h2, err)
		}
	}
}

// TestHandMade checks what Peek makes of hellos built byte by byte.
func TestHandMade(t *testing.T) {
	tests := []struct {
		name string
		spec helloSpec
		want Hello
	}{
		{"no extensions", newSpec(), Hello{}},
		{"uppercase name", newSpec(sniExt("Mixed.Example.COM")), Hello{ServerName: "mixed.example.com"}},
		{"IPv4 name ignored", newSpec(sniExt("192.0.2.1")), Hello{}},
		{"IPv6 name ignored", newSpec(sniExt("2001:db8::1")), Hello{}},
		{"other name type skipped", newSpec(ext(extServerName, vec16(append([]byte{7, 0, 1, 'x'}, append([]byte{0}, vec16([]byte("a.example"))...)...)))), Hello{ServerName: "a.example"}},
		{"all three", newSpec(versionsExt(0x0304, 0x0303), alpnExt("h2", "http/1.1"), ext(0xfe0d, []byte{1, 2, 3}), sniExt("a.example")),
			Hello{ServerName: "a.example", ALPN: []string{"h2", "http/1.1"}, Versions: []uint16{0x0304, 0x0303}}},
		{"empty extensions block", helloSpec{suites: []byte{0, 0x2f}, compression: []byte{0}, exts: []byte{}}, Hello{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := tt.spec.wire()
			h, err := peekAll(t, input)
			if err != nil {
				t.Fatalf("Peek: %v", err)
			}
			tt.want.Len = len(input)
			if !equalHello(*h, tt.want) {
				t.Errorf("Peek = %+v, want %+v", *h, tt.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	valid := newSpec(sniExt("a.example"))
	withBody := func(f func(*helloSpec)) []byte {
		s := valid
		f(&s)
		return s.wire()
	}
	msg := valid.msg()
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"record version 2", append([]byte{22, 2, 0}, valid.wire()[3:]...), ErrMalformed},
		{"empty record", append(record(22, nil), valid.wire()...), ErrMalformed},
		{"record over 16 KiB", append([]byte{22, 3, 1, 0x40, 0x01}, make([]byte, 0x4001)...), ErrMalformed},
		{"ServerHello", record(22, append([]byte{2}, msg[1:]...)), ErrMalformed},
		{"alert record after a fragment", append(record(22, msg[:10]), record(21, msg[10:])...), ErrMalformed},
		{"second message in the record", record(22, append(slices.Clone(msg), 20, 0, 0, 0)), ErrMalformed},
		{"message claims 1 MiB", record(22, []byte{1, 0x10, 0, 0}), ErrTooLarge},
		{"session ID of 33 bytes", withBody(func(s *helloSpec) { s.sessionID = make([]byte, 33) }), ErrMalformed},
		{"no cipher suites", withBody(func(s *helloSpec) { s.suites = nil }), ErrMalformed},
		{"odd cipher suites", withBody(func(s *helloSpec) { s.suites = []byte{1, 2, 3} }), ErrMalformed},
		{"no compression", withBody(func(s *helloSpec) { s.compression = nil }), ErrMalformed},
		{"bytes after extensions", withBody(func(s *helloSpec) { s.trailer = []byte{0} }), ErrMalformed},
		{"extension overruns", withBody(func(s *helloSpec) { s.exts = []byte{0, 16, 0, 9, 0} }), ErrMalformed},
		{"extension twice", withBody(func(s *helloSpec) { s.exts = append(alpnExt("h2"), alpnExt("h2")...) }), ErrMalformed},
		{"empty server_name", withBody(func(s *helloSpec) { s.exts = ext(extServerName, nil) }), ErrMalformed},
		{"empty server_name_list", withBody(func(s *helloSpec) { s.exts = ext(extServerName, []byte{0, 0}) }), ErrMalformed},
		{"server_name_list overruns", withBody(func(s *helloSpec) { s.exts = ext(extServerName, []byte{0, 9, 0, 0, 1, 'a'}) }), ErrMalformed},
		{"bytes after server_name_list", withBody(func(s *helloSpec) { s.exts = ext(extServerName, append(sniExt("a")[4:], 0)) }), ErrMalformed},
		{"two host names", withBody(func(s *helloSpec) { s.exts = sniExt("a.example", "b.example") }), ErrMalformed},
		{"empty host name", withBody(func(s *helloSpec) { s.exts = sniExt("") }), ErrMalformed},
		{"NUL in host name", withBody(func(s *helloSpec) { s.exts = sniExt("a.example\x00.evil") }), ErrMalformed},
		{"space in host name", withBody(func(s *helloSpec) { s.exts = sniExt("a example") }), ErrMalformed},
		{"non-ASCII host name", withBody(func(s *helloSpec) { s.exts = sniExt("bücher.example") }), ErrMalformed},
		{"trailing dot", withBody(func(s *helloSpec) { s.exts = sniExt("a.example.") }), ErrMalformed},
		{"empty ALPN list", withBody(func(s *helloSpec) { s.exts = alpnExt() }), ErrMalformed},
		{"empty ALPN protocol", withBody(func(s *helloSpec) { s.exts = alpnExt("h2", "") }), ErrMalformed},
		{"ALPN protocol overruns", withBody(func(s *helloSpec) { s.exts = ext(extALPN, []byte{0, 2, 5, 'h'}) }), ErrMalformed},
		{"empty supported_versions", withBody(func(s *helloSpec) { s.exts = versionsExt() }), ErrMalformed},
		{"odd supported_versions", withBody(func(s *helloSpec) { s.exts = ext(extSupportedVersions, []byte{3, 3, 4, 3}) }), ErrMalformed},
		{"bytes after supported_versions", withBody(func(s *helloSpec) { s.exts = ext(extSupportedVersions, []byte{2, 3, 4, 0}) }), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := peekAll(t, tt.input)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Peek error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNotTLS(t *testing.T) {
	for _, input := range []string{"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", "PRI * HTTP/2.0\r\n", "\x80\x2e\x01\x03\x01", "\x17\x03\x03\x00\x01x"} {
		_, err := peekAll(t, []byte(input))
		if !errors.Is(err, ErrNotTLS) {
			t.Errorf("Peek(%q) error = %v, want ErrNotTLS", input, err)
		}
	}
}

// TestTruncated cuts a real hello, split over records, at every byte.
func TestTruncated(t *testing.T) {
	whole := captureHello(t, &tls.Config{ServerName: "cut.example", NextProtos: []string{"h2"}})
	input := split(whole[recordHeaderLen:], 2, 7, 100)
	for n := range len(input) {
		_, err := peekAll(t, input[:n])
		if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.EOF) {
			t.Fatalf("Peek of the first %d of %d bytes: error = %v, want ErrTruncated and io.EOF", n, len(input), err)
		}
	}
	// A read error other than the end is wrapped too.
	boom := errors.New("boom")
	_, err := Peek(NewReader(io.MultiReader(bytes.NewReader(input[:20]), iotest.ErrReader(boom))))
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, boom) {
		t.Errorf("Peek error = %v, want ErrTruncated wrapping the read error", err)
	}
}

// TestSizeLimits checks the largest hellos accepted and the smallest
// refused.
func TestSizeLimits(t *testing.T) {
	// A hello whose message (header included) has n bytes, padded with
	// the padding extension (21).
	sized := func(n int) []byte {
		base := len(newSpec(ext(21, nil)).msg())
		return newSpec(ext(21, make([]byte, n-base))).msg()
	}
	full := sized(maxRecordData)
	if h, err := peekAll(t, record(22, full)); err != nil || h.Len != recordHeaderLen+maxRecordData {
		t.Errorf("hello filling one record: Peek = %+v, %v", h, err)
	}
	sixteen := make([]int, 15)
	for i := range sixteen {
		sixteen[i] = maxRecordData / 16
	}
	input := split(full, sixteen...)
	if h, err := peekAll(t, input); err != nil || h.Len != MaxLen {
		t.Errorf("16 KiB hello in 16 records (%d bytes): Peek = %+v, %v", len(input), h, err)
	}
	input = split(full, append(sixteen, 1)...)
	if _, err := peekAll(t, input); !errors.Is(err, ErrTooLarge) {
		t.Errorf("16 KiB hello in 17 records (%d bytes): Peek error = %v, want ErrTooLarge", len(input), err)
	}
	input = split(sized(2*maxRecordData), maxRecordData)
	if _, err := peekAll(t, input); !errors.Is(err, ErrTooLarge) {
		t.Errorf("32 KiB hello in 2 records: Peek error = %v, want ErrTooLarge", err)
	}
}

func TestReaderTooSmall(t *testing.T) {
	input := newSpec(sniExt("a.example")).wire()
	br := bufio.NewReader(bytes.NewReader(input))
	if _, err := Peek(br); !errors.Is(err, ErrReaderTooSmall) {
		t.Fatalf("Peek with a %d-byte reader: error = %v, want ErrReaderTooSmall", br.Size(), err)
	}
	if br.Buffered() != 0 {
		t.Errorf("Peek read %d bytes from a reader it refused", br.Buffered())
	}
}

// TestAfterConsumedBytes peeks at a split hello in a reader whose caller
// consumed bytes before it: a later fill moves the buffered bytes, which
// must not corrupt the fragments already seen.
func TestAfterConsumedBytes(t *testing.T) {
	whole := captureHello(t, &tls.Config{ServerName: "moved.example", NextProtos: []string{"h2"}})
	want, err := peekAll(t, whole)
	if err != nil {
		t.Fatal(err)
	}
	hello := split(whole[recordHeaderLen:], 40)
	first := append([]byte("abc"), hello[:recordHeaderLen+40]...) // prefix and the first record
	rest := hello[len(first)-3:]
	br := NewReader(io.MultiReader(bytes.NewReader(first), iotest.OneByteReader(bytes.NewReader(rest))))
	if _, err := br.Discard(3); err != nil {
		t.Fatal(err)
	}
	h, err := Peek(br)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	w := *want
	w.Len = len(hello)
	if !equalHello(*h, w) {
		t.Errorf("Peek = %+v, want %+v", *h, w)
	}
	got, _ := io.ReadAll(br)
	if !bytes.Equal(got, hello) {
		t.Errorf("the reader returned %d bytes after Peek, want the hello's %d", len(got), len(hello))
	}
}
