package clienthello

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// captureHello returns the first record a crypto/tls client with cfg sends.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(client, cfg).Handshake() // fails once server closes
		client.Close()
	}()
	defer func() {
		server.Close()
		<-done
	}()
	hdr := make([]byte, recordHeaderLen)
	if _, err := io.ReadFull(server, hdr); err != nil {
		t.Fatalf("reading the client's first record header: %v", err)
	}
	rec := make([]byte, recordHeaderLen+int(binary.BigEndian.Uint16(hdr[3:])))
	copy(rec, hdr)
	if _, err := io.ReadFull(server, rec[recordHeaderLen:]); err != nil {
		t.Fatalf("reading the client's first record: %v", err)
	}
	return rec
}

// peekAll runs Peek on input and fails the test unless the reader then
// still returns all of input.
func peekAll(t *testing.T, input []byte) (*Hello, error) {
	t.Helper()
	br := NewReader(bytes.NewReader(input))
	h, err := Peek(br)
	rest, rerr := io.ReadAll(br)
	if rerr != nil || !bytes.Equal(rest, input) {
		t.Fatalf("after Peek the reader returned %d bytes (err %v), want the %d of the input", len(rest), rerr, len(input))
	}
	return h, err
}

// record wraps data in one record of type typ.
func record(typ byte, data []byte) []byte {
	b := []byte{typ, 3, 1, byte(len(data) >> 8), byte(len(data))}
	return append(b, data...)
}

// split carries the handshake message msg in handshake records of the
// given sizes, the last one taking what is left.
func split(msg []byte, sizes ...int) []byte {
	var out []byte
	for _, n := range sizes {
		out = append(out, record(recordTypeHandshake, msg[:n])...)
		msg = msg[n:]
	}
	if len(msg) > 0 {
		out = append(out, record(recordTypeHandshake, msg)...)
	}
	return out
}

// helloSpec describes a hand-made ClientHello; newSpec fills a valid one.
type helloSpec struct {
	sessionID, suites, compression []byte
	exts                           []byte // nil: no extensions block
	trailer                        []byte // after the extensions
}

func newSpec(exts ...[]byte) helloSpec {
	s := helloSpec{suites: []byte{0x13, 0x01}, compression: []byte{0}}
	if len(exts) > 0 {
		s.exts = bytes.Join(exts, nil)
	}
	return s
}

// msg returns the handshake message, header included.
func (s helloSpec) msg() []byte {
	body := make([]byte, 2+32) // legacy_version and random
	body[0], body[1] = 3, 3
	body = append(body, vec8(s.sessionID)...)
	body = append(body, vec16(s.suites)...)
	body = append(body, vec8(s.compression)...)
	if s.exts != nil {
		body = append(body, vec16(s.exts)...)
	}
	body = append(body, s.trailer...)
	return append([]byte{handshakeTypeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

// wire returns the hello in one handshake record.
func (s helloSpec) wire() []byte { return record(recordTypeHandshake, s.msg()) }

func vec8(b []byte) []byte  { return append([]byte{byte(len(b))}, b...) }
func vec16(b []byte) []byte { return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...) }

func ext(typ uint16, data []byte) []byte {
	return append([]byte{byte(typ >> 8), byte(typ)}, vec16(data)...)
}

// sniExt builds a server_name extension of host_name entries.
func sniExt(names ...string) []byte {
	var list []byte
	for _, n := range names {
		list = append(list, nameTypeHostName)
		list = append(list, vec16([]byte(n))...)
	}
	return ext(extServerName, vec16(list))
}

func alpnExt(protos ...string) []byte {
	var list []byte
	for _, p := range protos {
		list = append(list, vec8([]byte(p))...)
	}
	return ext(extALPN, vec16(list))
}

func versionsExt(vs ...uint16) []byte {
	var list []byte
	for _, v := range vs {
		list = append(list, byte(v>>8), byte(v))
	}
	return ext(extSupportedVersions, vec8(list))
}

// oneByteThenFail serves b one byte per Read and then fails every Read,
// so that a Peek needing more than b fails.
type oneByteThenFail struct{ b []byte }

var errBeyond = io.ErrNoProgress

func (r *oneByteThenFail) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errBeyond
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}
