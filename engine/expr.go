package engine

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr"
)

// Env is the environment of `when` expressions. Its field tags are the
// variable names a rules author writes.
type Env struct {
	Text     string            `expr:"text"`
	Payload  string            `expr:"payload"`
	Event    string            `expr:"event"`
	SenderID string            `expr:"sender_id"`
	PageID   string            `expr:"page_id"`
	Metadata string            `expr:"metadata"`
	Groups   map[string]string `expr:"groups"`
	Vars     map[string]any    `expr:"vars"`
	Standby  bool              `expr:"standby"`
	Owner    string            `expr:"owner"`
	Paused   bool              `expr:"paused"`

	// Now returns the evaluation's clock.
	Now func() time.Time `expr:"now"`
	// BusinessHours reports whether now is within a weekly schedule such as
	// "Mon-Fri 09:00-18:00" (several ranges separated by commas) in a time zone.
	BusinessHours func(spec, tz string) (bool, error) `expr:"business_hours"`
}

// MaxExprNodes bounds the size of one `when` expression.
const MaxExprNodes = 2000

// CompileWhen compiles and type-checks a `when` expression. The returned
// error, when not nil, is expr's *file.Error with a position in src.
func CompileWhen(src string) (*When, error) {
	p, err := expr.Compile(src,
		expr.Env(Env{}),
		expr.AsBool(),
		expr.MaxNodes(MaxExprNodes),
		expr.Function("hour", func(params ...any) (any, error) {
			t, loc, err := timeIn(params)
			if err != nil {
				return nil, err
			}
			return t.In(loc).Hour(), nil
		}, new(func(time.Time, string) int)),
		expr.Function("weekday", func(params ...any) (any, error) {
			t, loc, err := timeIn(params)
			if err != nil {
				return nil, err
			}
			return int(t.In(loc).Weekday()), nil
		}, new(func(time.Time, string) int)),
	)
	if err != nil {
		return nil, err
	}
	return &When{Source: src, Program: p}, nil
}

func timeIn(params []any) (time.Time, *time.Location, error) {
	t, _ := params[0].(time.Time)
	tz, _ := params[1].(string)
	loc, err := Location(tz)
	return t, loc, err
}

var locations sync.Map // string → *time.Location

// Location loads a time zone by IANA name ("Europe/Paris"), caching it.
func Location(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	locations.Store(name, l)
	return l, nil
}

// Schedule is a parsed business-hours spec: for each weekday, the minute
// ranges [from, to) that are open.
type Schedule [7][][2]int

var (
	schedules     sync.Map     // string → *Schedule
	scheduleCount atomic.Int64 // entries in schedules
)

// maxCachedSchedules bounds the schedule cache: a spec built from event
// data (business_hours(text, "UTC")) must not grow it without end.
const maxCachedSchedules = 1024

var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// ParseSchedule parses a spec such as "Mon-Fri 09:00-18:00, Sat 10:00-14:00".
// Day ranges may wrap (Fri-Mon); times are 24-hour HH:MM, 24:00 allowed as an end.
func ParseSchedule(spec string) (*Schedule, error) {
	if s, ok := schedules.Load(spec); ok {
		return s.(*Schedule), nil
	}
	var sch Schedule
	parts := strings.Split(spec, ",")
	for _, part := range parts {
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, fmt.Errorf("business hours %q: expected \"Mon-Fri 09:00-18:00\"", spec)
		}
		days, err := parseDays(f[0])
		if err != nil {
			return nil, fmt.Errorf("business hours %q: %w", spec, err)
		}
		from, to, err := parseTimes(f[1])
		if err != nil {
			return nil, fmt.Errorf("business hours %q: %w", spec, err)
		}
		for _, d := range days {
			sch[d] = append(sch[d], [2]int{from, to})
		}
	}
	if scheduleCount.Load() < maxCachedSchedules {
		if _, loaded := schedules.LoadOrStore(spec, &sch); !loaded {
			scheduleCount.Add(1)
		}
	}
	return &sch, nil
}

func parseDays(s string) ([]int, error) {
	a, b, isRange := strings.Cut(strings.ToLower(s), "-")
	from, ok := dayNames[a]
	if !ok {
		return nil, fmt.Errorf("unknown day %q, expected Mon, Tue, Wed, Thu, Fri, Sat or Sun", a)
	}
	if !isRange {
		return []int{from}, nil
	}
	to, ok := dayNames[b]
	if !ok {
		return nil, fmt.Errorf("unknown day %q, expected Mon, Tue, Wed, Thu, Fri, Sat or Sun", b)
	}
	var out []int
	for d := from; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == to {
			return out, nil
		}
	}
}

func parseTimes(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("expected a time range like 09:00-18:00, got %q", s)
	}
	from, err := parseClock(a)
	if err != nil {
		return 0, 0, err
	}
	to, err := parseClock(b)
	if err != nil {
		return 0, 0, err
	}
	if to <= from {
		return 0, 0, fmt.Errorf("time range %q ends before it starts", s)
	}
	return from, to, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("expected a time like 09:00, got %q", s)
	}
	return hh*60 + mm, nil
}

// Open reports whether t falls within the schedule.
func (s *Schedule) Open(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	for _, r := range s[int(t.Weekday())] {
		if m >= r[0] && m < r[1] {
			return true
		}
	}
	return false
}

// NewEnv returns the expression environment for one evaluation.
func NewEnv(s *Subject, st State, vars map[string]any, now time.Time) *Env {
	ev := s.Event
	return &Env{
		Text:     ev.Text,
		Payload:  payloadOf(ev),
		Event:    string(ev.Kind),
		SenderID: ev.SenderID,
		PageID:   ev.PageID,
		Metadata: ev.Metadata,
		Groups:   s.Groups,
		Vars:     vars,
		Standby:  ev.Standby,
		Owner:    st.Owner,
		Paused:   st.Paused,
		Now:      func() time.Time { return now },
		BusinessHours: func(spec, tz string) (bool, error) {
			sch, err := ParseSchedule(spec)
			if err != nil {
				return false, err
			}
			loc, err := Location(tz)
			if err != nil {
				return false, err
			}
			return sch.Open(now.In(loc)), nil
		},
	}
}

// payloadOf is the payload a template or expression sees: the postback's, or
// the quick reply's.
func payloadOf(ev *Event) string {
	if ev.Kind == KindPostback {
		return ev.Payload
	}
	return ev.QuickReply
}
