package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheck asks the local server for GET /healthz and exits 0 on a 200:
// the Docker HEALTHCHECK of an image that has no curl.
func healthcheck(args []string, getenv func(string) string, stderr io.Writer) int {
	addr := defaultServeAddr(getenv)
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&addr, "addr", addr, "address serve listens on (env THREADGATE_ADDR, or :$PORT)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	base, err := localBaseURL(addr)
	if err != nil {
		fmt.Fprintf(stderr, "threadgate healthcheck: --addr %q: %v\n", addr, err)
		return exitUsage
	}
	resp, err := (&http.Client{Timeout: *timeout}).Get(base + "/healthz")
	if err != nil {
		fmt.Fprintln(stderr, "threadgate healthcheck:", err)
		return exitFailed
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "threadgate healthcheck: /healthz answered HTTP %d\n", resp.StatusCode)
		return exitFailed
	}
	return exitOK
}
