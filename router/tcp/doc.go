// Package tcp routes connections without HTTP, as the [tcp] section of
// the configuration describes: by the server name and ALPN protocols of
// a TLS ClientHello, by the client's address, or every connection of an
// entry point. Build turns a configuration into an immutable Table; the
// router's entry points read the first bytes of each connection (without
// consuming them), ask the table for the router that takes it, and hand
// the connection to Route.Serve: TLS passed through as it came, or
// terminated by the entry point first.
//
// Proxying copies both directions through pooled buffers. When one side
// closes its writing half, the other side's writing half is closed too
// and the other direction may go on for the serversTransport's
// terminationDelay; an idleTimeout closes a connection on which neither
// side has sent anything for that long. A reload builds a new Table; the
// connections the old one routed keep their servers until they end.
package tcp
