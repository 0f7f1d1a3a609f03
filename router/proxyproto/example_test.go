package proxyproto_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/tollgate-proxy/tollgate/router/proxyproto"
)

func ExampleRead() {
	conn := strings.NewReader("PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\nGET / HTTP/1.1\r\n")
	r := bufio.NewReader(conn)
	h, err := proxyproto.Read(r)
	switch {
	case errors.Is(err, proxyproto.ErrNoHeader):
		fmt.Println("no header: refuse, or serve the bytes in r as they are")
		return
	case err != nil:
		fmt.Println("bad header:", err)
		return
	}
	rest, _ := io.ReadAll(r)
	fmt.Println(h.Version, h.Command, h.Source, h.Destination)
	fmt.Printf("%q\n", rest)
	// Output:
	// 1 PROXY 192.0.2.1:54321 198.51.100.7:443
	// "GET / HTTP/1.1\r\n"
}

func ExampleHeader_Write() {
	h := proxyproto.Header{
		Version:     1,
		Command:     proxyproto.Proxy,
		Transport:   proxyproto.TransportStream,
		Source:      netip.MustParseAddrPort("[2001:db8::1]:12345"),
		Destination: netip.MustParseAddrPort("[2001:db8::2]:443"),
	}
	var backend bytes.Buffer
	if err := h.Write(&backend); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q\n", backend.String())
	// Output:
	// "PROXY TCP6 2001:db8::1 2001:db8::2 12345 443\r\n"
}
