package logbuf

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/internal/syncbuf"
)

// recorder counts the writes it gets.
type recorder struct {
	syncbuf.Buffer
	mu     sync.Mutex
	writes int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes++
	r.mu.Unlock()
	return r.Buffer.Write(p)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

func TestWriterHoldsLinesUntilFullFlushedOrTimed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		// act writes to w and makes it write out; held says whether
		// the lines were still held after the writes.
		act  func(w *Writer)
		held bool
	}{
		{name: "flush", act: func(w *Writer) { w.Flush() }, held: true},
		{name: "close", act: func(w *Writer) { w.Close() }, held: true},
		{name: "full", act: func(w *Writer) { w.Write(bytes.Repeat([]byte("x"), 64)) }, held: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			w := New(rec, time.Hour, 64)
			for i := range 3 {
				fmt.Fprintf(w, "line %d\n", i)
			}
			if tt.held && rec.count() != 0 {
				t.Fatalf("%d writes before the buffer was written out, want none", rec.count())
			}
			tt.act(w)
			if got := rec.String(); !strings.HasPrefix(got, "line 0\nline 1\nline 2\n") {
				t.Fatalf("written %q, want the three lines in order", got)
			}
			if rec.count() != 1 {
				t.Errorf("%d writes, want the lines in one", rec.count())
			}
		})
	}
}

func TestWriterWritesOutAfterItsInterval(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := New(rec, 5*time.Millisecond, 0)
	w.Write([]byte("a line\n"))
	poll.Until(t, "the line written out by the timer", func() bool { return rec.String() == "a line\n" })
	w.Write([]byte("another\n")) // the timer is armed again
	poll.Until(t, "the second line written out", func() bool { return rec.String() == "a line\nanother\n" })
}

func TestWriterWithoutIntervalOrClosedWritesAtOnce(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := New(rec, 0, 0)
	w.Write([]byte("at once\n"))
	if rec.String() != "at once\n" {
		t.Fatalf("without an interval a line was held: %q", rec.String())
	}
	rec2 := &recorder{}
	w2 := New(rec2, time.Hour, 0)
	w2.Close()
	w2.Write([]byte("after close\n"))
	if rec2.String() != "after close\n" {
		t.Fatalf("after Close a line was held: %q", rec2.String())
	}
}

// A warning is written out at once, with the info lines before it.
func TestHandlerWritesOutWarningsAtOnce(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := New(rec, time.Hour, 0)
	log := slog.New(Handler(slog.NewJSONHandler(w, nil), w)).With("pid", 1)
	log.Info("event handled")
	if rec.count() != 0 {
		t.Fatal("an info line was written out at once")
	}
	log.WithGroup("g").Warn("step failed")
	got := rec.String()
	if !strings.Contains(got, `"msg":"event handled"`) || !strings.Contains(got, `"msg":"step failed"`) {
		t.Fatalf("after a warning, written %q; want both lines", got)
	}
	quiet := Handler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}), w)
	if quiet.Enabled(context.Background(), slog.LevelInfo) || !quiet.Enabled(context.Background(), slog.LevelError) {
		t.Error("the wrapped handler does not answer Enabled as the handler it wraps")
	}
}

// Lines written at once by many goroutines come out whole, each once.
func TestWriterConcurrentLinesComeOutWhole(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := New(rec, time.Millisecond, 256)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(w, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(rec.String(), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Fatalf("line %q twice", l)
		}
		seen[l] = true
	}
	if len(seen) != 8*200 {
		t.Fatalf("%d lines out, want %d", len(seen), 8*200)
	}
}
