// Package logbuf buffers a process's log lines so that a busy daemon does
// not make one write system call per line.
//
// A Writer keeps what is written and writes it out when its buffer is
// full, at most Interval after the first line it holds, and on Flush and
// Close. Handler wraps a slog.Handler so that a line of level Warn or more
// is written out at once, with everything before it: what an operator
// looks for first is never held back. Lines held when the process is
// killed (SIGKILL, a crash outside the daemon's recovery) are lost: at
// most Interval of info and debug lines.
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// DefaultSize is the buffer's size past which a Writer writes out at once.
const DefaultSize = 64 << 10

// Writer is a buffered io.Writer, safe for concurrent use, that writes
// out what it holds at most an interval after it got it.
type Writer struct {
	mu       sync.Mutex
	w        io.Writer
	buf      []byte
	size     int
	interval time.Duration
	timer    *time.Timer // armed while the buffer holds anything
	closed   bool
	err      error // the first write error, returned by Flush and Close
}

// New returns a Writer to w that writes out at most interval after a line
// arrives, or once it holds size bytes (DefaultSize when size <= 0). An
// interval of zero or less writes every line at once.
func New(w io.Writer, interval time.Duration, size int) *Writer {
	if size <= 0 {
		size = DefaultSize
	}
	return &Writer{w: w, size: size, interval: interval}
}

// Write holds p (it is copied) and writes out when the buffer is full; it
// never returns an error of the writer underneath (Flush and Close do).
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.interval <= 0 {
		if _, err := b.w.Write(p); err != nil && b.err == nil {
			b.err = err
		}
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	switch {
	case len(b.buf) >= b.size:
		b.flushLocked()
	case b.timer == nil:
		b.timer = time.AfterFunc(b.interval, b.onTimer)
	}
	return len(p), nil
}

// onTimer writes out what the buffer holds an interval after it started
// holding it.
func (b *Writer) onTimer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer = nil
	b.flushLocked()
}

// Flush writes out everything held.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	return b.err
}

// Close writes out everything held; later writes go out at once.
func (b *Writer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.closed = true
	return b.err
}

func (b *Writer) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil && b.err == nil {
		b.err = err
	}
	if cap(b.buf) > 4*b.size {
		b.buf = nil // a burst's buffer is not kept
		return
	}
	b.buf = b.buf[:0]
}

// Handler returns h (which writes to w) wrapped so that a record of level
// Warn or more is written out at once.
func Handler(h slog.Handler, w *Writer) slog.Handler {
	return flushing{Handler: h, w: w}
}

type flushing struct {
	slog.Handler
	w *Writer
}

func (f flushing) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		f.w.Flush()
	}
	return err
}

func (f flushing) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushing{Handler: f.Handler.WithAttrs(attrs), w: f.w}
}

func (f flushing) WithGroup(name string) slog.Handler {
	return flushing{Handler: f.Handler.WithGroup(name), w: f.w}
}
