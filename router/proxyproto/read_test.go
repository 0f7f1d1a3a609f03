package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

const trailer = "GET / HTTP/1.1\r\n"

// v2 builds a version 2 header from its command byte, family byte and
// body, with the body's length.
func v2(verCmd, fam byte, body ...[]byte) string {
	b := append([]byte{}, v2Signature...)
	b = append(b, verCmd, fam)
	all := bytes.Join(body, nil)
	b = binary.BigEndian.AppendUint16(b, uint16(len(all)))
	return string(append(b, all...))
}

// v2len is v2 with an announced length that differs from the body's.
func v2len(verCmd, fam byte, length uint16, body []byte) string {
	b := append([]byte{}, v2Signature...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, length)
	return string(append(b, body...))
}

var (
	inet4Body = []byte{192, 0, 2, 1, 198, 51, 100, 7, 0xd4, 0x31, 0x01, 0xbb}
	inet6Body = append(append(netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice()...), 0x30, 0x39, 0x00, 0x50)
	ap        = netip.MustParseAddrPort
)

func TestRead(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Header
	}{
		{"v1 TCP4", "PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n",
			&Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: ap("192.0.2.1:54321"), Destination: ap("198.51.100.7:443")}},
		{"v1 TCP6", "PROXY TCP6 2001:db8::1 2001:db8::2 12345 80\r\n",
			&Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: ap("[2001:db8::1]:12345"), Destination: ap("[2001:db8::2]:80")}},
		{"v1 TCP6 IPv4-mapped", "PROXY TCP6 ::ffff:192.0.2.1 ::1 0 65535\r\n",
			&Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: ap("[::ffff:192.0.2.1]:0"), Destination: ap("[::1]:65535")}},
		{"v1 UNKNOWN", "PROXY UNKNOWN\r\n", &Header{Version: 1, Command: Proxy}},
		{"v1 UNKNOWN with ignored rest", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", &Header{Version: 1, Command: Proxy}},
		{"v1 longest", "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			&Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Destination: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
		{"v2 PROXY TCP4", v2(0x21, 0x11, inet4Body),
			&Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: ap("192.0.2.1:54321"), Destination: ap("198.51.100.7:443")}},
		{"v2 PROXY UDP4", v2(0x21, 0x12, inet4Body),
			&Header{Version: 2, Command: Proxy, Transport: TransportDatagram, Source: ap("192.0.2.1:54321"), Destination: ap("198.51.100.7:443")}},
		{"v2 PROXY TCP6", v2(0x21, 0x21, inet6Body),
			&Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: ap("[2001:db8::1]:12345"), Destination: ap("[2001:db8::2]:80")}},
		{"v2 LOCAL", v2(0x20, 0x00), &Header{Version: 2, Command: Local}},
		{"v2 LOCAL skips its block", v2(0x20, 0x11, inet4Body, []byte{1, 0, 2, 'h', '2'}), &Header{Version: 2, Command: Local}},
		{"v2 PROXY UNSPEC", v2(0x21, 0x00), &Header{Version: 2, Command: Proxy}},
		{"v2 PROXY UNIX paths skipped", v2(0x21, 0x31, make([]byte, lenUnix), []byte{0x04, 0, 0}),
			&Header{Version: 2, Command: Proxy, TLVs: []TLV{{Type: 0x04, Value: []byte{}}}}},
		{"v2 TLVs", v2(0x21, 0x11, inet4Body, []byte{0x01, 0, 2, 'h', '2'}, []byte{0x02, 0, 11}, []byte("example.com"), []byte{0x04, 0, 0}),
			&Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: ap("192.0.2.1:54321"), Destination: ap("198.51.100.7:443"),
				TLVs: []TLV{{Type: 0x01, Value: []byte("h2")}, {Type: 0x02, Value: []byte("example.com")}, {Type: 0x04, Value: []byte{}}}}},
		{"v2 at the maximum length", v2(0x21, 0x00, []byte{0xee, 0x0f, 0xfd}, make([]byte, MaxV2Length-3)),
			&Header{Version: 2, Command: Proxy, TLVs: []TLV{{Type: 0xee, Value: make([]byte, MaxV2Length-3)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in + trailer))
			got, err := Read(r)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != trailer {
				t.Errorf("left in the reader %q, want %q", rest, trailer)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		noHeader  bool // ErrNoHeader, nothing consumed
		truncated bool // also io.ErrUnexpectedEOF
		msg       string
	}{
		{name: "HTTP request", in: "GET / HTTP/1.1\r\n", noHeader: true},
		{name: "TLS hello", in: "\x16\x03\x01\x02\x00", noHeader: true},
		{name: "almost v1", in: "PROXZ TCP4", noHeader: true},
		{name: "lowercase v1", in: "proxy TCP4", noHeader: true},
		{name: "bad v2 signature", in: "\r\n\r\n\x00\r\nQUIT\r", noHeader: true},
		{name: "CRLF only", in: "\r\n", truncated: true, msg: "signature"},
		{name: "v1 prefix cut", in: "PROX", truncated: true, msg: "signature"},
		{name: "v1 cut", in: "PROXY TCP4 192.0.2.1 ", truncated: true, msg: "version 1 line"},
		{name: "v1 LF only", in: "PROXY UNKNOWN\n", msg: `without "\r"`},
		{name: "v1 too long", in: "PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n", msg: "longer than 107"},
		{name: "v1 bad protocol", in: "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n", msg: `protocol "UDP4"`},
		{name: "v1 no protocol", in: "PROXY \r\n", msg: `protocol ""`},
		{name: "v1 too few fields", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", msg: "4 fields"},
		{name: "v1 too many fields", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n", msg: "4 fields"},
		{name: "v1 double space", in: "PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n", msg: "4 fields"},
		{name: "v1 trailing space", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n", msg: "4 fields"},
		{name: "v1 bad address", in: "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n", msg: `source address "192.0.2.256"`},
		{name: "v1 host name", in: "PROXY TCP4 192.0.2.1 example.com 1 2\r\n", msg: `destination address "example.com"`},
		{name: "v1 TCP4 with IPv6", in: "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n", msg: "is not IPv4"},
		{name: "v1 TCP6 with IPv4", in: "PROXY TCP6 2001:db8::1 192.0.2.2 1 2\r\n", msg: "is not IPv6"},
		{name: "v1 zone", in: "PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n", msg: "zone"},
		{name: "v1 port too big", in: "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n", msg: `source port "65536"`},
		{name: "v1 negative port", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1 -2\r\n", msg: `destination port "-2"`},
		{name: "v1 port with sign", in: "PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n", msg: `source port "+1"`},
		{name: "v1 port leading zero", in: "PROXY TCP4 192.0.2.1 192.0.2.2 080 2\r\n", msg: `source port "080"`},
		{name: "v1 empty port", in: "PROXY TCP4 192.0.2.1 192.0.2.2  2\r\n", msg: `source port ""`},
		{name: "v2 cut in fixed part", in: v2(0x21, 0x11, inet4Body)[:14], truncated: true, msg: "version 2 header"},
		{name: "v2 cut in body", in: v2(0x21, 0x11, inet4Body)[:20], truncated: true, msg: "addresses and TLVs"},
		{name: "v2 version 1", in: v2(0x11, 0x11, inet4Body), msg: "version 1"},
		{name: "v2 version 3", in: v2(0x31, 0x11, inet4Body), msg: "version 3"},
		{name: "v2 command 2", in: v2(0x22, 0x11, inet4Body), msg: "command 0x2"},
		{name: "v2 family 4", in: v2(0x21, 0x41, inet4Body), msg: "0x41"},
		{name: "v2 transport 3", in: v2(0x21, 0x13, inet4Body), msg: "0x13"},
		{name: "v2 UNSPEC with stream", in: v2(0x21, 0x01), msg: "0x01"},
		{name: "v2 INET with unspec transport", in: v2(0x21, 0x10, inet4Body), msg: "0x10"},
		{name: "v2 too long", in: v2len(0x21, 0x11, MaxV2Length+1, nil), msg: "length 4097 exceeds"},
		{name: "v2 longest length", in: v2len(0x21, 0x11, 0xffff, nil), msg: "length 65535 exceeds"},
		{name: "v2 short for INET", in: v2(0x21, 0x11, inet4Body[:11]), msg: "too short for the 12 bytes"},
		{name: "v2 short for INET6", in: v2(0x21, 0x21, inet4Body), msg: "too short for the 36 bytes"},
		{name: "v2 short for UNIX", in: v2(0x21, 0x31, inet6Body), msg: "too short for the 216 bytes"},
		{name: "v2 TLV cut in its header", in: v2(0x21, 0x11, inet4Body, []byte{1, 0}), msg: "cut short"},
		{name: "v2 TLV cut in its value", in: v2(0x21, 0x11, inet4Body, []byte{1, 0, 3, 'a', 'b'}), msg: "announces 3 bytes, 2 are left"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in))
			h, err := Read(r)
			if err == nil {
				t.Fatalf("Read returned %+v, want an error", h)
			}
			if tt.noHeader {
				if !errors.Is(err, ErrNoHeader) {
					t.Fatalf("got %v, want ErrNoHeader", err)
				}
				if rest, _ := io.ReadAll(r); string(rest) != tt.in {
					t.Errorf("left in the reader %q, want all of the input %q", rest, tt.in)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNoHeader) {
				t.Errorf("got %v, want ErrInvalid only", err)
			}
			if got := errors.Is(err, io.ErrUnexpectedEOF); got != tt.truncated {
				t.Errorf("errors.Is(%v, io.ErrUnexpectedEOF) = %v, want %v", err, got, tt.truncated)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestReadEmpty(t *testing.T) {
	if _, err := Read(bufio.NewReader(strings.NewReader(""))); err != io.EOF {
		t.Errorf("got %v, want io.EOF", err)
	}
}

// errReader returns its error after its bytes.
type errReader struct {
	b   []byte
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, r.err
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestReadReaderError(t *testing.T) {
	boom := errors.New("boom")
	for _, in := range []string{"", "PRO", "PROXY TCP4", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x01"} {
		_, err := Read(bufio.NewReader(&errReader{b: []byte(in), err: boom}))
		if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNoHeader) {
			t.Errorf("input %q: got %v, want the reader's error only", in, err)
		}
	}
}

// oneByteReader hands out one byte per Read and fails the test if it is
// asked for more than limit bytes: a Read that waits for bytes beyond the
// header would block on a connection.
type oneByteReader struct {
	t     *testing.T
	b     []byte
	limit int
}

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.limit == 0 {
		r.t.Fatal("Read asked for a byte beyond the header")
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	r.limit--
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func TestReadStopsAtHeaderEnd(t *testing.T) {
	for _, in := range []string{
		"PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n",
		"PROXY UNKNOWN\r\n",
		v2(0x21, 0x11, inet4Body, []byte{1, 0, 2, 'h', '2'}),
		v2(0x20, 0x00),
	} {
		r := bufio.NewReader(&oneByteReader{t: t, b: []byte(in + trailer), limit: len(in)})
		if _, err := Read(r); err != nil {
			t.Errorf("input %q: %v", in, err)
		}
	}
	// A mismatch is seen on the first differing byte.
	for _, in := range []string{"G", "PRX", "\r\n\r\n\x00\r\nQ\x00"} {
		r := bufio.NewReader(&oneByteReader{t: t, b: []byte(in + trailer), limit: len(in)})
		if _, err := Read(r); !errors.Is(err, ErrNoHeader) {
			t.Errorf("input %q: got %v, want ErrNoHeader", in, err)
		}
	}
}

func TestReadSmallBuffer(t *testing.T) {
	in := v2(0x21, 0x21, inet6Body, []byte{0x02, 0, 200}, bytes.Repeat([]byte{'a'}, 200))
	r := bufio.NewReaderSize(strings.NewReader(in+trailer), 16)
	h, err := Read(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.TLVs) != 1 || len(h.TLVs[0].Value) != 200 {
		t.Errorf("got TLVs %+v, want one of 200 bytes", h.TLVs)
	}
	v1 := "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
	r = bufio.NewReaderSize(strings.NewReader(v1+trailer), 16)
	if _, err := Read(r); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != trailer {
		t.Errorf("left in the reader %q, want %q", rest, trailer)
	}
}
