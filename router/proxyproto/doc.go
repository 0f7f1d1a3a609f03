// Package proxyproto reads and writes PROXY protocol headers (versions 1
// and 2, as specified by HAProxy's proxy-protocol.txt): the few bytes a
// load balancer in front of tollgate sends at the start of a connection to
// say which client the connection is for, and which tollgate can send to a
// backend for the same reason.
//
// Read(r) reads exactly one header from a *bufio.Reader and nothing more:
// the bytes after it stay in r for the protocol that follows (TLS, HTTP).
// The version is detected from the first bytes. When they are not the
// start of a PROXY header, Read returns an error matching ErrNoHeader and
// has consumed nothing, so that the caller may refuse the connection or
// pass it through unchanged. A header that starts correctly but is wrong
// further on returns an error matching ErrInvalid that says what is wrong,
// quoting the offending field; Problem(err) names only the kind of
// problem ("bad source address", "truncated", ...), to be logged where
// the header must not be; a header cut short by the end of the input
// also matches io.ErrUnexpectedEOF. An input that ends before its first byte returns
// io.EOF itself. Any other error is the reader's own, wrapped.
//
// Read never blocks for more bytes than the header needs: a version 1 line
// is read byte by byte up to its "\r\n" (at most MaxV1Length bytes), a
// version 2 header is read as its fixed 16 bytes and then exactly the
// length they announce, which is refused above MaxV2Length before anything
// is allocated for it. A caller still needs a deadline on the connection:
// a client that sends half a header and stops blocks Read until then.
//
// A Header carries the version, the command (Local or Proxy), the
// transport, the source and destination addresses (both zero when the
// header carries none: a LOCAL command, a version 1 "UNKNOWN" line, a
// version 2 UNSPEC or AF_UNIX address family) and, for version 2, the
// type-length-value extensions raw and unchecked (TLV). (*Header).Append
// and (*Header).Write encode a header in its Version's format, and refuse
// one that format cannot express rather than send something else; what
// Write writes, Read reads back as the same Header.
//
// The package has no knowledge of connections, listeners or which clients
// are trusted to send a header: that is the caller's decision.
package proxyproto
