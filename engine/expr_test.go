package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr string
	}{
		{"Mon-Fri 09:00-18:00", ""},
		{"mon-fri 09:00-18:00, Sat 10:00-14:00", ""},
		{"Fri-Mon 00:00-24:00", ""},
		{"Sun 08:30-09:15", ""},
		{"Mon-Fri", `expected "Mon-Fri 09:00-18:00"`},
		{"Mon-Fry 09:00-18:00", `unknown day "fry"`},
		{"Mun 09:00-18:00", `unknown day "mun"`},
		{"Mon 9-18", "expected a time like 09:00"},
		{"Mon 09:00", "expected a time range"},
		{"Mon 18:00-09:00", "ends before it starts"},
		{"Mon 09:00-09:00", "ends before it starts"},
		{"Mon 09:60-10:00", "expected a time like 09:00"},
		{"Mon 24:30-25:00", "expected a time like 09:00"},
		{"Mon 09:00-18:00,", `expected "Mon-Fri 09:00-18:00"`},
		{"", `expected "Mon-Fri 09:00-18:00"`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := ParseSchedule(tt.spec)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSchedule: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseSchedule error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestScheduleOpen(t *testing.T) {
	tests := []struct {
		spec string
		at   string // a UTC time; 2026-01-05 is a Monday
		want bool
	}{
		{"Mon-Fri 09:00-18:00", "2026-01-05T09:00:00Z", true},
		{"Mon-Fri 09:00-18:00", "2026-01-05T08:59:59Z", false},
		{"Mon-Fri 09:00-18:00", "2026-01-05T17:59:00Z", true},
		{"Mon-Fri 09:00-18:00", "2026-01-05T18:00:00Z", false},
		{"Mon-Fri 09:00-18:00", "2026-01-09T12:00:00Z", true},  // Friday
		{"Mon-Fri 09:00-18:00", "2026-01-10T12:00:00Z", false}, // Saturday
		{"Mon-Fri 09:00-18:00", "2026-01-04T12:00:00Z", false}, // Sunday
		{"Fri-Mon 00:00-24:00", "2026-01-04T23:59:00Z", true},  // wraps over the weekend
		{"Fri-Mon 00:00-24:00", "2026-01-06T12:00:00Z", false}, // Tuesday
		{"Mon 09:00-12:00, Mon 14:00-18:00", "2026-01-05T13:00:00Z", false},
		{"Mon 09:00-12:00, Mon 14:00-18:00", "2026-01-05T15:00:00Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.spec+" at "+tt.at, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Open(mustTime(t, tt.at)); got != tt.want {
				t.Errorf("Open = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompileWhenErrors(t *testing.T) {
	tests := []struct {
		src  string
		line int
		col  int // as expr reports it, from 0
		msg  string
	}{
		{`txt == "hi"`, 1, 0, "unknown name txt"},
		{`text == `, 1, 7, "unexpected token"},
		{"text != \"\" &&\n  nope", 2, 2, "unknown name nope"},
		{`hour(now()) > 3`, 1, 0, "not enough arguments"},
		{`hour(now(), 3) > 3`, 1, 12, "cannot use int as argument"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := CompileWhen(tt.src)
			var fe *file.Error
			if !errors.As(err, &fe) {
				t.Fatalf("CompileWhen error = %v (%T), want *file.Error", err, err)
			}
			if !strings.Contains(fe.Message, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", fe.Message, tt.msg)
			}
			if fe.Line != tt.line || fe.Column != tt.col {
				t.Errorf("position = %d:%d, want %d:%d", fe.Line, fe.Column, tt.line, tt.col)
			}
		})
	}
	if _, err := CompileWhen(`hour(now(), "UTC")`); err == nil {
		t.Errorf("a non-boolean expression compiled")
	}
	if _, err := CompileWhen(strings.Repeat("text == \"a\" || ", 1000) + "true"); err == nil {
		t.Errorf("an expression over MaxExprNodes compiled")
	}
}

// run evaluates a `when` expression for an event at a given time.
func run(t *testing.T, src string, ev *Event, now time.Time) (bool, error) {
	t.Helper()
	w, err := CompileWhen(src)
	if err != nil {
		t.Fatalf("CompileWhen(%q): %v", src, err)
	}
	sub := &Subject{Event: ev, Groups: map[string]string{"order": "1234"}}
	out, err := expr.Run(w.Program, NewEnv(sub, State{Owner: "self"}, map[string]any{"brand": "Acme", "n": 3}, now))
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		t.Fatalf("%q gave %T, want bool", src, out)
	}
	return b, nil
}

func TestWhenClock(t *testing.T) {
	// 2026-01-05 07:30 UTC is a Monday, 08:30 in Paris and 02:30 in New York.
	now := mustTime(t, "2026-01-05T07:30:00Z")
	ev := &Event{Kind: KindMessage, Text: "hello", SenderID: "u1", PageID: "p1"}
	tests := []struct {
		src  string
		want bool
	}{
		{`hour(now(), "UTC") == 7`, true},
		{`hour(now(), "Europe/Paris") == 8`, true},
		{`hour(now(), "America/New_York") == 2`, true},
		{`weekday(now(), "UTC") == 1`, true},
		{`weekday(now(), "Pacific/Kiritimati") == 1`, true}, // UTC+14: still Monday, 21:30
		{`weekday(now(), "Pacific/Pago_Pago") == 0`, true},  // UTC-11: Sunday evening
		{`business_hours("Mon-Fri 09:00-18:00", "Europe/Paris")`, false},
		{`business_hours("Mon-Fri 08:00-18:00", "Europe/Paris")`, true},
		{`business_hours("Sun 20:00-24:00", "Pacific/Pago_Pago")`, true},
		{`now().Year() == 2026 && now().Unix() == 1767598200`, true},
		{`text == "hello" && event == "message" && sender_id == "u1" && page_id == "p1"`, true},
		{`groups.order == "1234" && vars.brand == "Acme" && vars.n == 3`, true},
		{`owner == "self" && !paused && !standby && payload == ""`, true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := run(t, tt.src, ev, now)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got != tt.want {
				t.Errorf("= %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWhenRuntimeErrors(t *testing.T) {
	now := mustTime(t, "2026-01-05T07:30:00Z")
	tests := []struct {
		src  string
		text string
		msg  string
	}{
		{`hour(now(), text) > 3`, "Mars/Olympus", `unknown time zone "Mars/Olympus"`},
		{`business_hours(text, "UTC")`, "whenever", `business hours "whenever"`},
		{`business_hours("Mon 09:00-10:00", text)`, "Nowhere/City", `unknown time zone "Nowhere/City"`},
		{`int(text) > 3`, "abc", `invalid operation: int(abc)`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := run(t, tt.src, &Event{Kind: KindMessage, Text: tt.text}, now)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestLocationCache(t *testing.T) {
	a, err := Location("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Location("Europe/Paris")
	if err != nil || a != b {
		t.Errorf("second Location = %p, %v; want the cached %p", b, err, a)
	}
	if _, err := Location("Not/AZone"); err == nil {
		t.Errorf("Location accepted an unknown zone")
	}
}

func TestScheduleCacheIsBounded(t *testing.T) {
	for i := 0; i < maxCachedSchedules+50; i++ {
		spec := fmt.Sprintf("Mon 00:00-%02d:%02d", 1+i/60, i%60) // distinct valid specs
		if _, err := ParseSchedule(spec); err != nil {
			t.Fatal(err)
		}
	}
	if n := scheduleCount.Load(); n > maxCachedSchedules {
		t.Errorf("%d schedules cached, the bound is %d", n, maxCachedSchedules)
	}
	// Specs past the bound still parse.
	s, err := ParseSchedule("Tue 10:00-10:01")
	if err != nil || !s.Open(mustTime(t, "2026-01-06T10:00:30Z")) {
		t.Errorf("ParseSchedule past the bound: %v", err)
	}
}
