package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/conversation"
)

// lineKeys returns the keys of a JSON log line in their order, and its
// values.
func lineKeys(t *testing.T, line []byte) ([]string, map[string]any) {
	t.Helper()
	var values map[string]any
	if err := json.Unmarshal(line, &values); err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	var keys []string
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
			continue
		}
		if k, ok := tok.(string); ok && depth == 1 && dec.More() {
			keys = append(keys, k)
			// Skip the value: one token, or a whole array.
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
		}
	}
	return keys, values
}

// TestEventHandledLine checks the per-event line field by field, in the
// order operators read it (README, "Operate").
func TestEventHandledLine(t *testing.T) {
	const user = "2400000000000001"
	sum := sha256.Sum256([]byte(user))
	hashed := hex.EncodeToString(sum[:6])
	tests := []struct {
		name         string
		rawIDs       bool
		kind         string
		standby      bool
		fired, ran   []string
		renderErrors int
		outcome      string
		wantRule     string
		wantActions  []any
		wantOutcome  string
	}{
		{"one rule, one action", false, "message", false, []string{"echo"}, []string{"send_text"}, 0, "ok", "echo", []any{"send_text"}, "ok"},
		{"two rules", false, "postback", false, []string{"a", "b"}, []string{"send_text", "pass_thread_control"}, 0, "ok", "a,b", []any{"send_text", "pass_thread_control"}, "ok"},
		{"no rule fired", false, "message", true, nil, nil, 0, "ok", "", []any{}, "no_rule"},
		{"an action failed", false, "message", false, []string{"echo"}, []string{"send_text:error"}, 0, "ok", "echo", []any{"send_text:error"}, "error"},
		{"an action not rendered", false, "message", false, []string{"echo"}, nil, 1, "ok", "echo", []any{}, "error"},
		{"outcome kept", false, "message", false, []string{"echo"}, []string{"send_text"}, 0, "dead_letter", "echo", []any{"send_text"}, "dead_letter"},
		{"raw sender IDs", true, "echo", false, []string{"echo"}, []string{"send_text"}, 0, "ok", "echo", []any{"send_text"}, "ok"},
	}
	wantKeys := []string{"time", "level", "msg", "kind", "standby", "sender", "rule", "actions", "outcome", "duration_ms"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			g := New(Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), LogSenderIDs: tt.rawIDs})
			h := g.handling(conversation.Key{PageID: "111", UserID: user}, tt.kind, tt.standby)
			h.evaluated = true
			h.fired, h.ran, h.renderErrors = tt.fired, tt.ran, tt.renderErrors
			h.logHandled(tt.outcome)
			keys, v := lineKeys(t, buf.Bytes())
			if !reflect.DeepEqual(keys, wantKeys) {
				t.Errorf("keys = %v, want %v", keys, wantKeys)
			}
			wantSender := hashed
			if tt.rawIDs {
				wantSender = user
			}
			want := map[string]any{"level": "INFO", "msg": "event handled", "kind": tt.kind, "standby": tt.standby,
				"sender": wantSender, "rule": tt.wantRule, "actions": tt.wantActions, "outcome": tt.wantOutcome}
			for k, w := range want {
				if !reflect.DeepEqual(v[k], w) {
					t.Errorf("%s = %#v, want %#v", k, v[k], w)
				}
			}
			if d, ok := v["duration_ms"].(string); !ok || !strings.Contains(d, ".") {
				t.Errorf("duration_ms = %#v, want milliseconds as a string", v["duration_ms"])
			}
		})
	}
}

// TestEventLinesAtDisabledLevels checks that a line below the logger's
// level writes nothing and, for the per-event line, builds nothing.
func TestEventLinesAtDisabledLevels(t *testing.T) {
	var buf bytes.Buffer
	g := New(Config{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))})
	h := g.handling(conversation.Key{PageID: "111", UserID: "u1"}, "message", false)
	h.evaluated = true
	h.fired, h.ran = []string{"a", "b"}, []string{"send_text"}
	allocs := testing.AllocsPerRun(100, func() { h.logHandled("ok") })
	h.log.Warn("a warning", "n", 1)
	h.log.Info("some info")
	h.log.Debug("detail")
	if buf.Len() != 0 {
		t.Errorf("lines below the level were written: %s", buf.Bytes())
	}
	if allocs != 0 {
		t.Errorf("a disabled event line allocates %.0f times, want 0", allocs)
	}
	h.log.Error("an error", "n", 1)
	keys, v := lineKeys(t, buf.Bytes())
	if want := []string{"time", "level", "msg", "kind", "standby", "sender", "n"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	if v["msg"] != "an error" || v["n"] != 1.0 || v["kind"] != "message" {
		t.Errorf("line = %v", v)
	}
}

// TestEventLineSource checks that a line's source is the code that logged
// it, not this file's helpers.
func TestEventLineSource(t *testing.T) {
	var buf bytes.Buffer
	g := New(Config{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{AddSource: true}))})
	h := g.handling(conversation.Key{PageID: "111", UserID: "u1"}, "message", false)
	h.evaluated = true
	h.log.Info("from the test")
	h.logHandled("ok")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %s", len(lines), buf.Bytes())
	}
	for i, file := range []string{"eventlog_test.go", "handle.go"} {
		var line struct {
			Source struct{ File string } `json:"source"`
		}
		if err := json.Unmarshal(lines[i], &line); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(line.Source.File, "/"+file) {
			t.Errorf("line %d: source %q, want %s", i, line.Source.File, file)
		}
	}
}

// BenchmarkEventLogLine is the per-event "event handled" line at its
// default (the JSON handler at level info) and disabled (level warn),
// with the handling it belongs to.
func BenchmarkEventLogLine(b *testing.B) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		b.Run(level.String(), func(b *testing.B) {
			g := New(Config{Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))})
			key := conversation.Key{PageID: "111222333444555", UserID: "2400000000000001"}
			b.ReportAllocs()
			for b.Loop() {
				h := g.handling(key, "message", false)
				h.evaluated = true
				h.addFired("echo")
				h.addRan("send_text")
				h.logHandled("ok")
			}
		})
	}
}
