package clienthello

import "fmt"

// reader walks the bytes of a handshake message. off is the position of
// b[0] within the message, for error messages. A failed read sets err and
// ends the walk: the reader is not used after it.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) len() int    { return len(r.b) }
func (r *reader) empty() bool { return len(r.b) == 0 }

// malformed returns an ErrMalformed error about byte at of the message.
func (r *reader) malformed(at int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d of the handshake message: %s", ErrMalformed, at, fmt.Sprintf(format, args...))
}

// take returns the next n bytes, or sets err if there are fewer.
func (r *reader) take(n int, what string) ([]byte, bool) {
	if n > len(r.b) {
		r.err = r.malformed(r.off, "%s needs %d bytes, %d are left", what, n, len(r.b))
		return nil, false
	}
	b := r.b[:n]
	r.b = r.b[n:]
	r.off += n
	return b, true
}

func (r *reader) skip(n int, what string) bool {
	_, ok := r.take(n, what)
	return ok
}

func (r *reader) uint8(v *uint8, what string) bool {
	b, ok := r.take(1, what)
	if ok {
		*v = b[0]
	}
	return ok
}

func (r *reader) uint16(v *uint16, what string) bool {
	b, ok := r.take(2, what)
	if ok {
		*v = uint16(b[0])<<8 | uint16(b[1])
	}
	return ok
}

// vector reads a length-prefixed vector whose length takes lenBytes bytes
// (1 or 2) into out.
func (r *reader) vector(lenBytes int, out *reader, what string) bool {
	b, ok := r.take(lenBytes, what+" length")
	if !ok {
		return false
	}
	n := int(b[0])
	if lenBytes == 2 {
		n = n<<8 | int(b[1])
	}
	body, ok := r.take(n, what)
	if !ok {
		return false
	}
	*out = reader{b: body, off: r.off - n}
	return true
}
