package proxyproto

import (
	"bufio"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// TestProblem reads invalid headers, each with a token in the field that
// is wrong: Problem names the field and holds no byte of it, and the
// error still matches ErrInvalid.
func TestProblem(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"PROXY t0ken 1.2.3.4 5.6.7.8 1 2\r\n", ProblemProtocol},
		{"PROXY TCP4 t0ken 5.6.7.8 1 2\r\n", "bad source address"},
		{"PROXY TCP4 1.2.3.4 t0ken 1 2\r\n", "bad destination address"},
		{"PROXY TCP6 ::1 5.6.7.8 1 2\r\n", "bad destination address"},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 t0ken 2\r\n", "bad source port"},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1 t0ken\r\n", "bad destination port"},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 t0ken\r\n", ProblemFields},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ProblemLineEnd},
		{"PROXY TCP4 1.2.3.4", ProblemTruncated},
		{"PROXY " + strings.Repeat("t", MaxV1Length), ProblemTooLong},
		{"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c", ProblemVersion},
		{"\r\n\r\n\x00\r\nQUIT\n\x2f\x11\x00\x0c", ProblemCommand},
		{"\r\n\r\n\x00\r\nQUIT\n\x21\x41\x00\x0c", ProblemFamily},
		{"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff", ProblemTooLong},
		{"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x02", ProblemTooShort},
		{"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0e\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02\x04\x00", ProblemTLV},
	} {
		_, err := Read(bufio.NewReader(strings.NewReader(tc.in)))
		if got := Problem(err); got != tc.want || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: Problem(%v) = %q, want %q matching ErrInvalid", tc.in, err, got, tc.want)
		}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{io.EOF, ""},
		{ErrNoHeader, ProblemNoHeader},
		{os.ErrDeadlineExceeded, ProblemTimeout},
		{errors.New("t0ken"), ProblemRead},
	} {
		if got := Problem(tc.err); got != tc.want {
			t.Errorf("Problem(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
