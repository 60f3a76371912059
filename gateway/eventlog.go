package gateway

import (
	"context"
	"log/slog"
	"runtime"
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
// whose source is the caller skip frames up (runtime.Callers' count).
func (e *eventLogger) record(level slog.Level, msg string, skip int) slog.Record {
	if e.sender == "" {
		e.sender = e.g.senderTag(e.user)
	}
	var pcs [1]uintptr
	runtime.Callers(skip, pcs[:])
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	r.AddAttrs(slog.String("kind", e.kind), slog.Bool("standby", e.standby), slog.String("sender", e.sender))
	return r
}

// log writes a line with key-value args as slog.Logger.Log takes them.
// Called by Debug, Info, Warn and Error only: the source is their caller.
func (e *eventLogger) log(level slog.Level, msg string, args []any) {
	if !e.enabled(level) {
		return
	}
	r := e.record(level, msg, 4) // Callers, record, log, Info: its caller
	r.Add(args...)
	_ = e.g.log.Handler().Handle(context.Background(), r)
}

// logAttrs writes a line with attrs, as slog.Logger.LogAttrs does. The
// caller checks enabled first, so that a disabled line builds nothing.
func (e *eventLogger) logAttrs(level slog.Level, msg string, attrs ...slog.Attr) {
	if !e.enabled(level) {
		return
	}
	r := e.record(level, msg, 3) // Callers, record, logAttrs: its caller
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
