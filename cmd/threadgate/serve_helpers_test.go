package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/syncbuf"
)

// served is a `serve` that a test runs in-process: its base URL and what
// it logged.
type served struct {
	base string
	logs syncbuf.Buffer
	stop func() int
}

// log returns everything logged so far.
func (s *served) log() string { return s.logs.String() }

// startServe runs serve with cfg until the test ends (or Stop), and waits
// until /readyz answers 200.
func startServe(t *testing.T, cfg *serveConfig) *served {
	t.Helper()
	s := &served{base: "http://" + cfg.Addr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- runServer(ctx, cfg, slog.New(slog.NewJSONHandler(&s.logs, nil)), io.Discard, io.Discard)
	}()
	var once sync.Once
	code := -1
	s.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop")
			}
		})
		return code
	}
	t.Cleanup(func() { s.stop() })
	waitHTTP(t, s.base+"/readyz")
	return s
}
