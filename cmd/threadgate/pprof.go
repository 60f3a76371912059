//go:build pprof

package main

import (
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
)

// A build with the pprof tag (go build -tags pprof ./cmd/threadgate) serves
// Go's profiler on THREADGATE_PPROF_ADDR, a loopback address such as
// 127.0.0.1:6060, to profile the gateway under load (README, "Load test").
// Release builds have no such listener.
func init() {
	addr := os.Getenv("THREADGATE_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		os.Stderr.WriteString("threadgate: pprof: THREADGATE_PPROF_ADDR must be a loopback HOST:PORT, not " + addr + "\n")
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.Stderr.WriteString("threadgate: pprof: " + err.Error() + "\n")
		return
	}
	go http.Serve(ln, nil)
}
