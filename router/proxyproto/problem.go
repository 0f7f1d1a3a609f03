package proxyproto

import (
	"errors"
	"io"
	"net"
)

// What Problem returns for an error of Read: a few words naming what was
// wrong, never a byte of the header. An address or port is named by its
// position: "bad source address", "bad destination port" and so on.
const (
	ProblemTruncated = "truncated"          // the input ends within the header
	ProblemTooLong   = "too long"           // a version 1 line without its end, a version 2 length above MaxV2Length
	ProblemTooShort  = "too short"          // a version 2 length too short for its addresses
	ProblemLineEnd   = "bad line ending"    // a version 1 line ending in "\n" without "\r"
	ProblemProtocol  = "bad protocol"       // a version 1 protocol other than TCP4, TCP6 and UNKNOWN
	ProblemFields    = "bad field count"    // a version 1 line without exactly 4 fields after the protocol
	ProblemVersion   = "bad version"        // a version 2 signature followed by another version
	ProblemCommand   = "bad command"        // a version 2 command other than LOCAL and PROXY
	ProblemFamily    = "bad address family" // a version 2 family and transport the specification does not allow
	ProblemTLV       = "bad TLV"            // a version 2 TLV cut short
	ProblemTimeout   = "timeout"            // the reader's deadline passed within the header
	ProblemRead      = "read error"         // the reader failed otherwise
	ProblemNoHeader  = "no header"          // ErrNoHeader
)

// Problem names what was wrong with the header err reports (an error of
// Read) in a few words that hold nothing of the header's content, so
// that a caller may log it where the header itself must not appear. It
// returns "" for a nil error and io.EOF.
func Problem(err error) string {
	var ie *invalidError
	var ne net.Error
	switch {
	case err == nil, err == io.EOF:
		return ""
	case errors.As(err, &ie):
		return ie.problem
	case errors.Is(err, ErrNoHeader):
		return ProblemNoHeader
	case errors.As(err, &ne) && ne.Timeout():
		return ProblemTimeout
	}
	return ProblemRead
}

// invalidError is an error of Read for an invalid header, with what
// Problem reports for it.
type invalidError struct {
	problem string
	err     error
}

// invalid returns err, which matches ErrInvalid, with the problem it is.
func invalid(problem string, err error) error {
	return &invalidError{problem: problem, err: err}
}

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }
