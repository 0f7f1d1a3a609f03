package proxyproto

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
)

// Append appends h, encoded in the format of h.Version, to b. It refuses,
// with an error matching ErrInvalid, a header that format cannot express:
// a version other than 1 or 2; a Source and Destination not both valid of
// one family, or both zero; a port-less zero address; for version 1 a
// LOCAL command, a datagram transport or TLVs; for version 2 a LOCAL
// header with addresses or TLVs (Read would skip them), or addresses and
// TLVs longer than MaxV2Length. On error b is returned unchanged.
func (h *Header) Append(b []byte) ([]byte, error) {
	if err := h.checkAddrs(); err != nil {
		return b, err
	}
	switch h.Version {
	case 1:
		return h.appendV1(b)
	case 2:
		return h.appendV2(b)
	}
	return b, fmt.Errorf("%w: version %d, want 1 or 2", ErrInvalid, h.Version)
}

// Write writes h, encoded as Append encodes it, to w in one call.
func (h *Header) Write(w io.Writer) error {
	b, err := h.Append(nil)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("proxyproto: writing header: %w", err)
	}
	return nil
}

// checkAddrs checks the rules both versions share.
func (h *Header) checkAddrs() error {
	src, dst := h.Source.Addr(), h.Destination.Addr()
	switch {
	case h.Command != Local && h.Command != Proxy:
		return fmt.Errorf("%w: command %v, want Local or Proxy", ErrInvalid, h.Command)
	case !src.IsValid() && !dst.IsValid():
		if h.Source.Port() != 0 || h.Destination.Port() != 0 {
			return fmt.Errorf("%w: a port without an address", ErrInvalid)
		}
		if h.Transport != TransportUnspec {
			return fmt.Errorf("%w: transport %d without addresses, want TransportUnspec", ErrInvalid, h.Transport)
		}
		return nil
	case !src.IsValid() || !dst.IsValid():
		return fmt.Errorf("%w: only one of source and destination is set; set both or neither", ErrInvalid)
	case src.Is4() != dst.Is4():
		return fmt.Errorf("%w: source %v and destination %v are not of one address family", ErrInvalid, src, dst)
	case src.Zone() != "" || dst.Zone() != "":
		return fmt.Errorf("%w: an address with a zone cannot be sent", ErrInvalid)
	case h.Transport != TransportStream && h.Transport != TransportDatagram:
		return fmt.Errorf("%w: transport %d with addresses, want TransportStream or TransportDatagram", ErrInvalid, h.Transport)
	}
	return nil
}

func (h *Header) appendV1(b []byte) ([]byte, error) {
	switch {
	case h.Command == Local:
		return b, fmt.Errorf("%w: version 1 has no LOCAL command; send a Proxy header without addresses (UNKNOWN)", ErrInvalid)
	case h.Transport == TransportDatagram:
		return b, fmt.Errorf("%w: version 1 carries TCP only, not datagrams", ErrInvalid)
	case len(h.TLVs) > 0:
		return b, fmt.Errorf("%w: version 1 has no TLVs", ErrInvalid)
	}
	if !h.HasAddrs() {
		return append(b, "PROXY UNKNOWN\r\n"...), nil
	}
	b = append(b, "PROXY TCP"...)
	if h.Source.Addr().Is4() {
		b = append(b, "4 "...)
	} else {
		b = append(b, "6 "...)
	}
	b = h.Source.Addr().AppendTo(b)
	b = append(b, ' ')
	b = h.Destination.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Source.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Destination.Port()), 10)
	return append(b, "\r\n"...), nil
}

func (h *Header) appendV2(b []byte) ([]byte, error) {
	if h.Command == Local && (h.HasAddrs() || len(h.TLVs) > 0) {
		return b, fmt.Errorf("%w: a version 2 LOCAL header carries no addresses or TLVs", ErrInvalid)
	}
	fam, addrLen := byte(famUnspec), 0
	if h.HasAddrs() {
		fam, addrLen = famInet6, lenInet6
		if h.Source.Addr().Is4() {
			fam, addrLen = famInet, lenInet
		}
	}
	length := addrLen
	for _, t := range h.TLVs {
		if len(t.Value) > MaxV2Length {
			return b, fmt.Errorf("%w: TLV of type %#02x has %d bytes, more than the maximum of %d", ErrInvalid, t.Type, len(t.Value), MaxV2Length)
		}
		length += 3 + len(t.Value)
	}
	if length > MaxV2Length {
		return b, fmt.Errorf("%w: addresses and TLVs take %d bytes, more than the maximum of %d", ErrInvalid, length, MaxV2Length)
	}
	b = append(b, v2Signature...)
	b = append(b, 0x20|byte(h.Command), fam<<4|byte(h.Transport))
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	if h.HasAddrs() {
		b = append(b, h.Source.Addr().AsSlice()...)
		b = append(b, h.Destination.Addr().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, h.Source.Port())
		b = binary.BigEndian.AppendUint16(b, h.Destination.Port())
	}
	for _, t := range h.TLVs {
		b = append(b, t.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.Value)))
		b = append(b, t.Value...)
	}
	return b, nil
}
