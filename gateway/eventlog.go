package gateway

import (
	"context"
	"log/slog"
)

// eventLogger logs lines about one event with the event's attributes (kind,
// channel, sender tag). It builds its slog.Logger only when a line is
// actually written: slog.Logger.With pre-renders the attributes, which would
// cost on every event even at a level that drops every line.
type eventLogger struct {
	g       *Gateway
	kind    string
	standby bool
	user    string
	l       *slog.Logger
}

func (g *Gateway) eventLog(kind string, standby bool, user string) *eventLogger {
	return &eventLogger{g: g, kind: kind, standby: standby, user: user}
}

func (e *eventLogger) at(level slog.Level) *slog.Logger {
	if !e.g.log.Enabled(context.Background(), level) {
		return nil
	}
	if e.l == nil {
		e.l = e.g.log.With("kind", e.kind, "standby", e.standby, "sender", e.g.senderTag(e.user))
	}
	return e.l
}

// Debug logs at debug level.
func (e *eventLogger) Debug(msg string, args ...any) {
	if l := e.at(slog.LevelDebug); l != nil {
		l.Debug(msg, args...)
	}
}

// Info logs at info level.
func (e *eventLogger) Info(msg string, args ...any) {
	if l := e.at(slog.LevelInfo); l != nil {
		l.Info(msg, args...)
	}
}

// Warn logs at warn level.
func (e *eventLogger) Warn(msg string, args ...any) {
	if l := e.at(slog.LevelWarn); l != nil {
		l.Warn(msg, args...)
	}
}

// Error logs at error level.
func (e *eventLogger) Error(msg string, args ...any) {
	if l := e.at(slog.LevelError); l != nil {
		l.Error(msg, args...)
	}
}
