// Package loopback gives tests an address on the loopback interface for a
// server they start (a threadgate binary, serve in-process): every server
// a test runs listens on 127.0.0.1, never on another address.
package loopback

import (
	"net"
	"testing"
)

// FreeAddr returns 127.0.0.1:PORT with a port that was free a moment ago:
// the listener that found it is closed, so the caller's server can take it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
