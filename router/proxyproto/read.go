package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

var (
	v1Prefix    = []byte("PROXY ")
	v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// v2 address family and transport byte values the specification allows;
// every other value must be refused.
const (
	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3

	lenInet  = 12  // two IPv4 addresses, two ports
	lenInet6 = 36  // two IPv6 addresses, two ports
	lenUnix  = 216 // two 108-byte paths
)

// Read reads one PROXY protocol header, version 1 or 2, from r and
// nothing after it. See the package documentation for its errors.
func Read(r *bufio.Reader) (*Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("proxyproto: reading header: %w", err)
	}
	switch first[0] {
	case v1Prefix[0]:
		if err := peekPrefix(r, v1Prefix); err != nil {
			return nil, err
		}
		return readV1(r)
	case v2Signature[0]:
		if err := peekPrefix(r, v2Signature); err != nil {
			return nil, err
		}
		return readV2(r)
	}
	return nil, ErrNoHeader
}

// peekPrefix checks that r starts with prefix without consuming anything
// and without waiting for a byte once the input already differs.
func peekPrefix(r *bufio.Reader, prefix []byte) error {
	for n := 1; n <= len(prefix); n++ {
		b, err := r.Peek(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return invalid(ProblemTruncated, fmt.Errorf("%w: input ends within the signature: %w", ErrInvalid, io.ErrUnexpectedEOF))
			}
			return fmt.Errorf("proxyproto: reading header: %w", err)
		}
		// Compare everything already buffered so that a mismatch is found
		// before waiting for more input.
		if avail := min(r.Buffered(), len(prefix)); avail > n {
			b, _ = r.Peek(avail)
			n = avail
		}
		if !bytes.HasPrefix(prefix, b) {
			return ErrNoHeader
		}
	}
	return nil
}

// readErr wraps an error met while reading the rest of a header whose
// signature matched.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid(ProblemTruncated, fmt.Errorf("%w: input ends within the %s: %w", ErrInvalid, what, io.ErrUnexpectedEOF))
	}
	return fmt.Errorf("proxyproto: reading %s: %w", what, err)
}

// readV1 reads a version 1 line, byte by byte so that nothing after its
// "\r\n" is consumed, then parses it.
func readV1(r *bufio.Reader) (*Header, error) {
	var buf [MaxV1Length]byte
	n := 0
	for {
		if n == len(buf) {
			return nil, invalid(ProblemTooLong, fmt.Errorf("%w: version 1 line longer than %d bytes without \"\\r\\n\"", ErrInvalid, MaxV1Length))
		}
		c, err := r.ReadByte()
		if err != nil {
			return nil, readErr("version 1 line", err)
		}
		buf[n] = c
		n++
		if c == '\n' {
			break
		}
	}
	line, ok := bytes.CutSuffix(buf[:n], []byte("\r\n"))
	if !ok {
		return nil, invalid(ProblemLineEnd, fmt.Errorf("%w: version 1 line ends in \"\\n\" without \"\\r\"", ErrInvalid))
	}
	return parseV1(string(line[len(v1Prefix):]))
}

// parseV1 parses what follows "PROXY " on a version 1 line.
func parseV1(s string) (*Header, error) {
	h := &Header{Version: 1, Command: Proxy}
	proto, rest, _ := cutSpace(s)
	var want4 bool
	switch proto {
	case "UNKNOWN":
		// The rest of the line, whatever it holds, is to be ignored.
		return h, nil
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return nil, invalid(ProblemProtocol, fmt.Errorf("%w: version 1 protocol %q, want TCP4, TCP6 or UNKNOWN", ErrInvalid, proto))
	}
	var f [4]string
	for i := range f {
		var ok bool
		f[i], rest, ok = cutSpace(rest)
		if ok != (i < 3) {
			return nil, invalid(ProblemFields, fmt.Errorf("%w: version 1 %s line must have 4 fields after the protocol separated by single spaces", ErrInvalid, proto))
		}
	}
	src, err := parseV1Addr(f[0], want4, "source")
	if err != nil {
		return nil, err
	}
	dst, err := parseV1Addr(f[1], want4, "destination")
	if err != nil {
		return nil, err
	}
	sport, err := parseV1Port(f[2], "source")
	if err != nil {
		return nil, err
	}
	dport, err := parseV1Port(f[3], "destination")
	if err != nil {
		return nil, err
	}
	h.Transport = TransportStream
	h.Source = netip.AddrPortFrom(src, sport)
	h.Destination = netip.AddrPortFrom(dst, dport)
	return h, nil
}

// cutSpace splits s at its first space.
func cutSpace(s string) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func parseV1Addr(s string, want4 bool, which string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, invalid("bad "+which+" address", fmt.Errorf("%w: version 1 %s address %q is not an IP address", ErrInvalid, which, s))
	case a.Zone() != "":
		return netip.Addr{}, invalid("bad "+which+" address", fmt.Errorf("%w: version 1 %s address %q has a zone", ErrInvalid, which, s))
	case want4 && !a.Is4():
		return netip.Addr{}, invalid("bad "+which+" address", fmt.Errorf("%w: version 1 TCP4 %s address %q is not IPv4", ErrInvalid, which, s))
	case !want4 && !a.Is6():
		return netip.Addr{}, invalid("bad "+which+" address", fmt.Errorf("%w: version 1 TCP6 %s address %q is not IPv6", ErrInvalid, which, s))
	}
	return a, nil
}

// parseV1Port parses a decimal port of 0 to 65535 without sign or leading
// zeros.
func parseV1Port(s, which string) (uint16, error) {
	bad := len(s) == 0 || len(s) > 5 || (len(s) > 1 && s[0] == '0')
	for i := 0; i < len(s) && !bad; i++ {
		bad = s[i] < '0' || s[i] > '9'
	}
	if !bad {
		if p, err := strconv.ParseUint(s, 10, 16); err == nil {
			return uint16(p), nil
		}
	}
	return 0, invalid("bad "+which+" port", fmt.Errorf("%w: version 1 %s port %q is not a number from 0 to 65535 without leading zeros", ErrInvalid, which, s))
}

// readV2 reads a version 2 header: the fixed 16 bytes (whose signature
// peekPrefix has matched), then exactly the length they announce.
func readV2(r *bufio.Reader) (*Header, error) {
	fixed, err := r.Peek(16)
	if err != nil {
		return nil, readErr("version 2 header", err)
	}
	verCmd, famProto := fixed[12], fixed[13]
	length := int(binary.BigEndian.Uint16(fixed[14:16]))
	if v := verCmd >> 4; v != 2 {
		return nil, invalid(ProblemVersion, fmt.Errorf("%w: version 2 signature followed by version %d", ErrInvalid, v))
	}
	cmd := Command(verCmd & 0xf)
	if cmd != Local && cmd != Proxy {
		return nil, invalid(ProblemCommand, fmt.Errorf("%w: version 2 command %#x, want 0x0 (LOCAL) or 0x1 (PROXY)", ErrInvalid, byte(cmd)))
	}
	fam, transport := famProto>>4, Transport(famProto&0xf)
	switch {
	case famProto == famUnspec<<4|byte(TransportUnspec):
	case fam >= famInet && fam <= famUnix && (transport == TransportStream || transport == TransportDatagram):
	default:
		return nil, invalid(ProblemFamily, fmt.Errorf("%w: version 2 address family and transport %#02x is not one the specification allows", ErrInvalid, famProto))
	}
	if length > MaxV2Length {
		return nil, invalid(ProblemTooLong, fmt.Errorf("%w: version 2 length %d exceeds the maximum of %d bytes", ErrInvalid, length, MaxV2Length))
	}
	addrLen := [...]int{famUnspec: 0, famInet: lenInet, famInet6: lenInet6, famUnix: lenUnix}[fam]
	if cmd == Proxy && length < addrLen {
		return nil, invalid(ProblemTooShort, fmt.Errorf("%w: version 2 length %d is too short for the %d bytes of addresses", ErrInvalid, length, addrLen))
	}
	if _, err := r.Discard(16); err != nil {
		return nil, readErr("version 2 header", err)
	}
	var body []byte
	if length > 0 {
		body = make([]byte, length) // length is at most MaxV2Length
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, readErr("version 2 addresses and TLVs", err)
		}
	}
	h := &Header{Version: 2, Command: cmd}
	if cmd == Local {
		// The receiver is to use the connection's own addresses and skip
		// the whole block, whatever it holds.
		return h, nil
	}
	switch fam {
	case famInet, famInet6:
		n := addrLen/2 - 2
		src, _ := netip.AddrFromSlice(body[:n])
		dst, _ := netip.AddrFromSlice(body[n : 2*n])
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[2*n:]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2*n+2:]))
		h.Transport = transport
	}
	tlvs, err := parseTLVs(body[addrLen:])
	if err != nil {
		return nil, err
	}
	h.TLVs = tlvs
	return h, nil
}

// parseTLVs splits the TLV block of a version 2 header.
func parseTLVs(b []byte) ([]TLV, error) {
	var tlvs []TLV
	for off := 0; off < len(b); {
		if len(b)-off < 3 {
			return nil, invalid(ProblemTLV, fmt.Errorf("%w: version 2 TLV at offset %d is cut short: %d bytes left, a TLV takes at least 3", ErrInvalid, off, len(b)-off))
		}
		typ, n := b[off], int(binary.BigEndian.Uint16(b[off+1:]))
		off += 3
		if n > len(b)-off {
			return nil, invalid(ProblemTLV, fmt.Errorf("%w: version 2 TLV of type %#02x announces %d bytes, %d are left", ErrInvalid, typ, n, len(b)-off))
		}
		tlvs = append(tlvs, TLV{Type: typ, Value: b[off : off+n : off+n]})
		off += n
	}
	return tlvs, nil
}
