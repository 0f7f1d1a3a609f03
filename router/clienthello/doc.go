// Package clienthello reads the server name and the application protocols
// a TLS client asks for, without consuming its ClientHello, so that a
// connection can be routed on them and then passed through untouched to a
// backend, or handed to crypto/tls, with every byte still to be read.
//
// # Reading
//
// [Peek] looks at the bytes of a [bufio.Reader], from its current
// position, only through [bufio.Reader.Peek]: on success and on failure
// alike the reader still returns everything the client sent, from its
// first byte. It reads the
// TLS records that carry the ClientHello and nothing beyond them. A
// ClientHello may be split across several handshake records, as the TLS
// specification allows; Peek reassembles it. The records, their 5-byte
// headers included, may occupy at most [MaxLen] bytes, which is one full
// record (16 KiB of data) plus room for the headers of 15 more. The
// reader must be able to buffer that many bytes: make it with [NewReader],
// or with bufio.NewReaderSize and a size of at least MaxLen. Peek refuses a
// smaller reader with [ErrReaderTooSmall] before reading anything, whatever
// the size of the hello, so that a misconfiguration shows on the first
// connection rather than on the first client with a large hello.
//
// Peek blocks until the whole ClientHello has arrived or the reader fails;
// the caller bounds the wait with a read deadline on the connection. A
// deadline or other read error is wrapped and can be tested with
// errors.Is.
//
// # Errors
//
// Every error Peek returns matches, with errors.Is, one of:
//
//   - [ErrNotTLS]: the first byte is not that of a TLS handshake record
//     (22). The connection speaks something else, plain HTTP for instance,
//     and the caller may serve it as such. An SSL 2.0 compatible hello is
//     reported as ErrNotTLS too.
//   - [ErrTruncated]: the connection ended, or the read failed, before the
//     ClientHello was complete. The read error is wrapped as well: io.EOF,
//     or os.ErrDeadlineExceeded for a connection deadline.
//   - [ErrTooLarge]: the records carrying the ClientHello would exceed
//     MaxLen.
//   - [ErrMalformed]: the bytes are a TLS handshake record but not a well
//     formed ClientHello; the message says what is wrong and at which
//     byte.
//   - [ErrReaderTooSmall]: the bufio.Reader cannot buffer MaxLen bytes.
//
// # What is returned
//
// [Hello.ServerName] is the host_name entry of the server_name extension
// (RFC 6066), lowercased (ASCII only: an internationalised name is sent as
// its A-labels), or "" when the client sent none. A name that is a literal
// IPv4 or IPv6 address, which RFC 6066 forbids, is ignored as if absent: a
// client that sends one is treated like a client that sends no name. A
// name holding a byte that is not printable ASCII (NUL, space, control
// characters, non-ASCII bytes: RFC 6066 wants ASCII A-labels), or ending
// in a dot (which RFC 6066 forbids and crypto/tls refuses too), makes the
// hello malformed, so that no routing decision rests on a name a backend
// could read differently. Other name types than host_name are skipped.
//
// [Hello.ALPN] lists the protocols of the application_layer_protocol_negotiation
// extension (RFC 7301) in the client's order of preference, and
// [Hello.Versions] those of the supported_versions extension (RFC 8446),
// both nil when the extension is absent (older clients that offer only TLS
// 1.2 or below send no supported_versions). [Hello.Len] is the number of bytes
// the records carrying the ClientHello occupy at the start of the reader.
//
// The structure of the whole ClientHello is checked (every length, no
// trailing bytes, no extension twice), as are the three extensions read;
// the contents of other extensions are not. Every length read from the
// wire is checked against the bytes actually present before it is used,
// and nothing is allocated from a length alone.
package clienthello
