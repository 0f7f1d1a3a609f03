package proxyproto

import (
	"errors"
	"net/netip"
	"strconv"
)

// Limits on the size of a header.
const (
	// MaxV1Length is the longest version 1 line, "\r\n" included, the
	// specification allows.
	MaxV1Length = 107
	// MaxV2Length is the largest length a version 2 header may announce
	// for its addresses and TLVs (after the fixed 16 bytes). The
	// specification allows up to 65535; tollgate refuses more than this
	// so that a header never costs more than a small, fixed amount of
	// memory. The largest address block (AF_UNIX) takes 216 bytes.
	MaxV2Length = 4096
)

// ErrNoHeader is returned by Read when the input does not start with a
// PROXY protocol header. Nothing has been consumed from the reader.
var ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")

// ErrInvalid is matched by the errors Read and Append return for a header
// that is malformed, too long or cannot be encoded; the error's text says
// what is wrong.
var ErrInvalid = errors.New("proxyproto: invalid PROXY protocol header")

// Command says whether a header describes a proxied connection.
type Command uint8

const (
	// Local means the connection was made by the proxy itself (for
	// example a health check): the receiver uses the connection's own
	// addresses. It exists in version 2 only.
	Local Command = 0x0
	// Proxy means the connection is relayed for the client named by the
	// header's addresses (or for an unknown client when it has none).
	Proxy Command = 0x1
)

// String returns "LOCAL" or "PROXY".
func (c Command) String() string {
	switch c {
	case Local:
		return "LOCAL"
	case Proxy:
		return "PROXY"
	}
	return "Command(" + strconv.Itoa(int(c)) + ")"
}

// Transport is the transport protocol of the proxied connection.
type Transport uint8

const (
	// TransportUnspec is the transport of a header without addresses.
	TransportUnspec Transport = 0x0
	// TransportStream is TCP (version 1 knows no other).
	TransportStream Transport = 0x1
	// TransportDatagram is UDP (version 2 only).
	TransportDatagram Transport = 0x2
)

// TLV is one type-length-value extension of a version 2 header, kept raw.
// The types the specification names include 0x01 ALPN, 0x02 authority
// (the TLS server name), 0x03 CRC32C, 0x04 no-op, 0x05 unique ID, 0x20
// SSL and 0x30 network namespace; Read checks none of their contents.
type TLV struct {
	Type  byte
	Value []byte
}

// Header is one PROXY protocol header.
type Header struct {
	// Version is 1 (the text format) or 2 (the binary format).
	Version int
	// Command is Local or Proxy; a version 1 header is always Proxy.
	Command Command
	// Transport is TransportStream or TransportDatagram when the header
	// carries addresses, TransportUnspec when it does not.
	Transport Transport
	// Source and Destination are the client's address and the address
	// it connected to, both IPv4 or both IPv6 (an IPv4-mapped IPv6
	// address counts as IPv6). Both are the zero AddrPort when the
	// header carries no addresses: a LOCAL command, a version 1 UNKNOWN
	// line, a version 2 UNSPEC or AF_UNIX family (whose paths are
	// skipped).
	Source, Destination netip.AddrPort
	// TLVs are the version 2 extensions in the order they were sent;
	// nil for version 1 and for LOCAL headers, whose block Read skips.
	// Their values share one buffer of at most MaxV2Length bytes.
	TLVs []TLV
}

// HasAddrs reports whether h carries the client's addresses.
func (h *Header) HasAddrs() bool {
	return h.Source.IsValid() || h.Destination.IsValid()
}
