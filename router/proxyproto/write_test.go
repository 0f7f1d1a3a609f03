package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want string
	}{
		{"v1 TCP4", Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: ap("192.0.2.1:54321"), Destination: ap("198.51.100.7:443")},
			"PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n"},
		{"v1 TCP6", Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: ap("[2001:db8::1]:12345"), Destination: ap("[2001:db8::2]:80")},
			"PROXY TCP6 2001:db8::1 2001:db8::2 12345 80\r\n"},
		{"v1 UNKNOWN", Header{Version: 1, Command: Proxy}, "PROXY UNKNOWN\r\n"},
		{"v2 TCP4", Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: ap("192.0.2.1:54321"), Destination: ap("198.51.100.7:443")},
			v2(0x21, 0x11, inet4Body)},
		{"v2 UDP6", Header{Version: 2, Command: Proxy, Transport: TransportDatagram, Source: ap("[2001:db8::1]:12345"), Destination: ap("[2001:db8::2]:80")},
			v2(0x21, 0x22, inet6Body)},
		{"v2 LOCAL", Header{Version: 2, Command: Local}, v2(0x20, 0x00)},
		{"v2 UNSPEC with TLV", Header{Version: 2, Command: Proxy, TLVs: []TLV{{Type: 0x05, Value: []byte("id")}}}, v2(0x21, 0x00, []byte{0x05, 0, 2, 'i', 'd'})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.h.Write(&buf); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if buf.String() != tt.want {
				t.Errorf("got %q, want %q", buf.String(), tt.want)
			}
			got, err := Read(bufio.NewReader(&buf))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := tt.h
			if want.TLVs == nil && got.TLVs != nil {
				t.Errorf("got TLVs %v, want none", got.TLVs)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("read back %+v, want %+v", *got, want)
			}
		})
	}
}

func TestAppendErrors(t *testing.T) {
	v4, v6 := ap("192.0.2.1:1"), ap("[2001:db8::1]:2")
	tests := []struct {
		name string
		h    Header
		msg  string
	}{
		{"version 0", Header{Command: Proxy}, "version 0"},
		{"version 3", Header{Version: 3, Command: Proxy}, "version 3"},
		{"command 2", Header{Version: 2, Command: 2}, "command Command(2)"},
		{"one address", Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: v4}, "only one of"},
		{"mixed families", Header{Version: 1, Command: Proxy, Transport: TransportStream, Source: v4, Destination: v6}, "not of one address family"},
		{"zone", Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: ap("[fe80::1%eth0]:1"), Destination: v6}, "zone"},
		{"port without address", Header{Version: 2, Command: Proxy, Source: netip.AddrPortFrom(netip.Addr{}, 1)}, "port without"},
		{"transport without addresses", Header{Version: 2, Command: Proxy, Transport: TransportStream}, "without addresses"},
		{"addresses without transport", Header{Version: 2, Command: Proxy, Source: v4, Destination: v4}, "with addresses"},
		{"v1 LOCAL", Header{Version: 1, Command: Local}, "no LOCAL"},
		{"v1 datagram", Header{Version: 1, Command: Proxy, Transport: TransportDatagram, Source: v4, Destination: v4}, "TCP only"},
		{"v1 TLVs", Header{Version: 1, Command: Proxy, TLVs: []TLV{{Type: 1}}}, "no TLVs"},
		{"v2 LOCAL with addresses", Header{Version: 2, Command: Local, Transport: TransportStream, Source: v4, Destination: v4}, "LOCAL header carries no"},
		{"v2 LOCAL with TLVs", Header{Version: 2, Command: Local, TLVs: []TLV{{Type: 1}}}, "LOCAL header carries no"},
		{"v2 TLV too long", Header{Version: 2, Command: Proxy, TLVs: []TLV{{Type: 1, Value: make([]byte, 1<<16)}}}, "TLV of type 0x01 has 65536 bytes"},
		{"v2 too long", Header{Version: 2, Command: Proxy, Transport: TransportStream, Source: v4, Destination: v4,
			TLVs: []TLV{{Type: 1, Value: make([]byte, MaxV2Length-12-3+1)}}}, "take 4097 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.h.Append([]byte("x"))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %v, want ErrInvalid containing %q", err, tt.msg)
			}
			if string(b) != "x" {
				t.Errorf("got %q, want the input unchanged", b)
			}
			if err := tt.h.Write(&bytes.Buffer{}); !errors.Is(err, ErrInvalid) {
				t.Errorf("Write: got %v, want ErrInvalid", err)
			}
		})
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteWriterError(t *testing.T) {
	boom := errors.New("boom")
	h := Header{Version: 1, Command: Proxy}
	if err := h.Write(failWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("got %v, want the writer's error", err)
	}
}
