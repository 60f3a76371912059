package gateway

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"
)

// eventLogger logs lines about one event, each starting with the event's
// attributes: kind, standby and sender (a tag of the user's ID). A line
// whose level is disabled costs a level check and nothing else. An enabled
// line goes to the handler as one record built on the stack, with no child
// logger: slog.Logger.With would render the event's attributes again for
// every event, and they are written on one line or two.
type eventLogger struct {
	g       *Gateway
	kind    string
	standby bool
	user    string
	// sender is the user's tag, computed for the first line written.
	sender string
}

// enabled reports whether a line at level would be written.
func (e *eventLogger) enabled(level slog.Level) bool {
	return e.g.log.Enabled(context.Background(), level)
}

// record returns a record of a line at level, with the event's attributes,
// whose source is pc.
func (e *eventLogger) record(level slog.Level, msg string, pc uintptr) slog.Record {
	if e.sender == "" {
		e.sender = e.g.senderTag(e.user)
	}
	r := slog.NewRecord(time.Now(), level, msg, pc)
	r.AddAttrs(slog.String("kind", e.kind), slog.Bool("standby", e.standby), slog.String("sender", e.sender))
	return r
}

// log writes a line with key-value args as slog.Logger.Log takes them.
// Called by Debug, Info, Warn and Error only: the source is their caller.
func (e *eventLogger) log(level slog.Level, msg string, args []any) {
	if !e.enabled(level) {
		return
	}
	r := e.record(level, msg, callerPC(4)) // Callers, callerPC, log, Info: its caller
	r.Add(args...)
	_ = e.g.log.Handler().Handle(context.Background(), r)
}

// logAttrs writes a line with attrs whose source is pc, as
// slog.Logger.LogAttrs does. The caller checks enabled first, so that a
// disabled line builds nothing.
func (e *eventLogger) logAttrs(level slog.Level, pc uintptr, msg string, attrs ...slog.Attr) {
	if !e.enabled(level) {
		return
	}
	r := e.record(level, msg, pc)
	r.AddAttrs(attrs...)
	_ = e.g.log.Handler().Handle(context.Background(), r)
}

// Debug logs at debug level.
func (e *eventLogger) Debug(msg string, args ...any) { e.log(slog.LevelDebug, msg, args) }

// Info logs at info level.
func (e *eventLogger) Info(msg string, args ...any) { e.log(slog.LevelInfo, msg, args) }

// Warn logs at warn level.
func (e *eventLogger) Warn(msg string, args ...any) { e.log(slog.LevelWarn, msg, args) }

// Error logs at error level.
func (e *eventLogger) Error(msg string, args ...any) { e.log(slog.LevelError, msg, args) }

// callerPC returns the program counter skip frames up (runtime.Callers'
// count), a line's source.
func callerPC(skip int) uintptr {
	var pcs [1]uintptr
	runtime.Callers(skip, pcs[:])
	return pcs[0]
}

// sitePC is the source of a line written from one place for every event,
// looked up the first time: runtime.Callers walks the stack, which cost
// the per-event line about 1% of the gateway's CPU under load.
type sitePC struct{ pc atomic.Uintptr }

// get returns the PC of its caller's caller (the logging site) the first
// time, and the same value after.
func (s *sitePC) get() uintptr {
	if pc := s.pc.Load(); pc != 0 {
		return pc
	}
	pc := callerPC(3) // Callers, callerPC, get: its caller
	s.pc.Store(pc)
	return pc
}
