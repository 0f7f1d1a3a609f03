package clienthello

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// MaxLen is the most bytes the records carrying a ClientHello may occupy,
// their headers included: one record of the largest size TLS allows (16 KiB
// of data) with its header, and room for 15 more headers, so that a hello
// of up to 16 KiB can be split into as many as 16 records. It is also the
// least size of a bufio.Reader [Peek] accepts.
const MaxLen = recordHeaderLen + maxRecordData + 15*recordHeaderLen

const (
	recordHeaderLen    = 5
	maxRecordData      = 16 << 10 // 2^14, RFC 8446 section 5.1
	handshakeHeaderLen = 4

	recordTypeHandshake      = 22
	handshakeTypeClientHello = 1

	extServerName        = 0
	extALPN              = 16
	extSupportedVersions = 43

	nameTypeHostName = 0
)

var (
	// ErrNotTLS means the first byte is not that of a TLS handshake record.
	ErrNotTLS = errors.New("not a TLS handshake")
	// ErrTruncated means the input ended before the ClientHello did.
	ErrTruncated = errors.New("TLS ClientHello truncated")
	// ErrTooLarge means the ClientHello's records exceed MaxLen bytes.
	ErrTooLarge = errors.New("TLS ClientHello too large")
	// ErrMalformed means the input is not a well formed ClientHello.
	ErrMalformed = errors.New("malformed TLS ClientHello")
	// ErrReaderTooSmall means the bufio.Reader cannot buffer MaxLen bytes.
	ErrReaderTooSmall = errors.New("bufio.Reader too small for a TLS ClientHello")
)

// Hello is what Peek read of a ClientHello.
type Hello struct {
	// ServerName is the lowercased host name of the server_name extension,
	// "" if there is none (or it is an IP address literal).
	ServerName string
	// ALPN lists the offered application protocols in the client's order
	// of preference, nil without the ALPN extension.
	ALPN []string
	// Versions lists the supported_versions extension's versions in the
	// client's order, nil without the extension.
	Versions []uint16
	// Len is the number of bytes, record headers included, that the
	// records carrying the ClientHello occupy at the start of the reader.
	Len int
}

// NewReader returns a bufio.Reader over r large enough for Peek.
func NewReader(r io.Reader) *bufio.Reader {
	return bufio.NewReaderSize(r, MaxLen)
}

// Peek reads the ClientHello at the start of r without consuming any of
// it: afterwards r still returns every byte it held or would have read.
// See the package documentation for the limits and the errors.
func Peek(r *bufio.Reader) (*Hello, error) {
	if r.Size() < MaxLen {
		return nil, fmt.Errorf("%w: its size is %d bytes, it needs at least %d: create it with clienthello.NewReader", ErrReaderTooSmall, r.Size(), MaxLen)
	}
	msg, n, err := peekMessage(r)
	if err != nil {
		return nil, err
	}
	h, err := parseClientHello(msg)
	if err != nil {
		return nil, err
	}
	h.Len = n
	return h, nil
}

// peekMessage returns the handshake message carried by the records at the
// start of r, its 4-byte header included, and the bytes those records
// occupy. A message in one record is returned as a slice of r's buffer,
// valid until r is next read; one split across records is copied.
func peekMessage(r *bufio.Reader) (msg []byte, n int, err error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, 0, truncated(0, 1, err)
	}
	if first[0] != recordTypeHandshake {
		return nil, 0, fmt.Errorf("%w: first byte is 0x%02x, a TLS connection starts with 0x%02x", ErrNotTLS, first[0], recordTypeHandshake)
	}
	for rec := 0; ; rec++ {
		if rec == 1 {
			// The next Peek may move the bytes within r's buffer (when
			// the caller consumed some before): keep a copy.
			msg = bytes.Clone(msg)
		}
		frag, err := peekRecord(r, n, rec)
		if err != nil {
			return nil, 0, err
		}
		n += recordHeaderLen + len(frag)
		if rec == 0 {
			msg = frag // r's buffer: a message in one record needs no copy
		} else {
			msg = append(msg, frag...)
		}
		if len(msg) < handshakeHeaderLen {
			continue
		}
		if msg[0] != handshakeTypeClientHello {
			return nil, 0, fmt.Errorf("%w: handshake message type is %d, a ClientHello is %d", ErrMalformed, msg[0], handshakeTypeClientHello)
		}
		want := handshakeHeaderLen + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
		switch {
		case want > MaxLen:
			return nil, 0, fmt.Errorf("%w: the ClientHello claims %d bytes, its records may hold at most %d", ErrTooLarge, want, MaxLen)
		case len(msg) > want:
			return nil, 0, fmt.Errorf("%w: %d bytes follow the ClientHello in its last record, a client must wait for the server's answer", ErrMalformed, len(msg)-want)
		case len(msg) == want:
			return msg, n, nil
		}
	}
}

// peekRecord returns the data of the handshake record starting at byte off
// of r, the rec-th record of the hello.
func peekRecord(r *bufio.Reader, off, rec int) ([]byte, error) {
	if off+recordHeaderLen > MaxLen {
		return nil, fmt.Errorf("%w: the ClientHello's records exceed %d bytes", ErrTooLarge, MaxLen)
	}
	b, err := r.Peek(off + recordHeaderLen)
	if err != nil {
		return nil, truncated(len(b), off+recordHeaderLen, err)
	}
	hdr := b[off:]
	if hdr[0] != recordTypeHandshake {
		return nil, fmt.Errorf("%w: record %d at byte %d has type %d, the ClientHello's records must all be handshake records (%d)", ErrMalformed, rec, off, hdr[0], recordTypeHandshake)
	}
	if hdr[1] != 3 {
		return nil, fmt.Errorf("%w: record %d at byte %d has version 0x%02x%02x, TLS records have 0x03xx", ErrMalformed, rec, off, hdr[1], hdr[2])
	}
	size := int(hdr[3])<<8 | int(hdr[4])
	switch {
	case size == 0:
		return nil, fmt.Errorf("%w: record %d at byte %d is empty, TLS forbids empty handshake records", ErrMalformed, rec, off)
	case size > maxRecordData:
		return nil, fmt.Errorf("%w: record %d at byte %d claims %d bytes, TLS allows at most %d", ErrMalformed, rec, off, size, maxRecordData)
	case off+recordHeaderLen+size > MaxLen:
		return nil, fmt.Errorf("%w: the ClientHello's records exceed %d bytes", ErrTooLarge, MaxLen)
	}
	end := off + recordHeaderLen + size
	b, err = r.Peek(end)
	if err != nil {
		return nil, truncated(len(b), end, err)
	}
	return b[off+recordHeaderLen:], nil
}

// truncated reports a read that ended after got of the want bytes needed.
func truncated(got, want int, err error) error {
	if errors.Is(err, bufio.ErrBufferFull) { // impossible: Peek checked the size
		return fmt.Errorf("%w: %w", ErrReaderTooSmall, err)
	}
	return fmt.Errorf("%w: %d bytes read, at least %d needed: %w", ErrTruncated, got, want, err)
}

// parseClientHello parses a ClientHello message, header included.
func parseClientHello(msg []byte) (*Hello, error) {
	s := reader{b: msg[handshakeHeaderLen:], off: handshakeHeaderLen}
	var sessionID, suites, compression reader
	switch {
	case !s.skip(2+32, "legacy_version and random"),
		!s.vector(1, &sessionID, "legacy_session_id"),
		!s.vector(2, &suites, "cipher_suites"),
		!s.vector(1, &compression, "legacy_compression_methods"):
		return nil, s.err
	}
	switch {
	case sessionID.len() > 32:
		return nil, s.malformed(sessionID.off, "legacy_session_id has %d bytes, at most 32 are allowed", sessionID.len())
	case suites.len() == 0 || suites.len()%2 != 0:
		return nil, s.malformed(suites.off, "cipher_suites has %d bytes, a non-empty list of 2-byte values is needed", suites.len())
	case compression.len() == 0:
		return nil, s.malformed(compression.off, "legacy_compression_methods is empty")
	}
	h := &Hello{}
	if s.empty() { // TLS 1.2 and older allow a hello without extensions
		return h, nil
	}
	var exts reader
	if !s.vector(2, &exts, "extensions") {
		return nil, s.err
	}
	if !s.empty() {
		return nil, s.malformed(s.off, "%d bytes follow the extensions", s.len())
	}
	if err := parseExtensions(h, &exts); err != nil {
		return nil, err
	}
	return h, nil
}

// parseExtensions fills h from the extensions.
func parseExtensions(h *Hello, exts *reader) error {
	seen := make(map[uint16]bool)
	for !exts.empty() {
		var typ uint16
		var data reader
		if !exts.uint16(&typ, "extension type") || !exts.vector(2, &data, "extension data") {
			return exts.err
		}
		if seen[typ] {
			return exts.malformed(data.off-4, "extension %d appears twice", typ)
		}
		seen[typ] = true
		var err error
		switch typ {
		case extServerName:
			h.ServerName, err = parseServerName(&data)
		case extALPN:
			h.ALPN, err = parseALPN(&data)
		case extSupportedVersions:
			h.Versions, err = parseVersions(&data)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseServerName returns the host name of a server_name extension.
func parseServerName(data *reader) (string, error) {
	var list reader
	if !data.vector(2, &list, "server_name_list") {
		return "", data.err
	}
	if !data.empty() || list.empty() {
		return "", data.malformed(list.off-2, "server_name extension is not one non-empty server_name_list")
	}
	var host string
	found := false
	for !list.empty() {
		var typ uint8
		var name reader
		if !list.uint8(&typ, "server name type") || !list.vector(2, &name, "server name") {
			return "", list.err
		}
		if typ != nameTypeHostName {
			continue
		}
		if found {
			return "", list.malformed(name.off-3, "server_name_list has two host names")
		}
		found = true
		var err error
		if host, err = checkHostName(&name); err != nil {
			return "", err
		}
	}
	return host, nil
}

// checkHostName validates a host_name and returns it lowercased, or "" for
// an IP address literal.
func checkHostName(name *reader) (string, error) {
	b := name.b
	if len(b) == 0 {
		return "", name.malformed(name.off, "the host name is empty")
	}
	for i, c := range b {
		if c <= ' ' || c >= 0x7f {
			return "", name.malformed(name.off+i, "the host name has byte 0x%02x, only printable ASCII is allowed", c)
		}
	}
	if b[len(b)-1] == '.' {
		return "", name.malformed(name.off+len(b)-1, "the host name ends in a dot")
	}
	host := strings.ToLower(string(b))
	if _, err := netip.ParseAddr(host); err == nil {
		return "", nil
	}
	return host, nil
}

// parseALPN returns the protocols of an ALPN extension.
func parseALPN(data *reader) ([]string, error) {
	var list reader
	if !data.vector(2, &list, "protocol_name_list") {
		return nil, data.err
	}
	if !data.empty() || list.empty() {
		return nil, data.malformed(list.off-2, "ALPN extension is not one non-empty protocol_name_list")
	}
	var protos []string
	for !list.empty() {
		var p reader
		if !list.vector(1, &p, "protocol name") {
			return nil, list.err
		}
		if p.empty() {
			return nil, list.malformed(p.off-1, "ALPN protocol name is empty")
		}
		protos = append(protos, string(p.b))
	}
	return protos, nil
}

// parseVersions returns the versions of a supported_versions extension.
func parseVersions(data *reader) ([]uint16, error) {
	var list reader
	if !data.vector(1, &list, "supported_versions") {
		return nil, data.err
	}
	if !data.empty() || list.empty() || list.len()%2 != 0 {
		return nil, data.malformed(list.off-1, "supported_versions is not one non-empty list of 2-byte versions")
	}
	versions := make([]uint16, 0, list.len()/2)
	for !list.empty() {
		var v uint16
		list.uint16(&v, "version")
		versions = append(versions, v)
	}
	return versions, nil
}
