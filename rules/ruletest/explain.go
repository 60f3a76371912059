package ruletest

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
)

// Explanation says what a rule set does with one event and why: the rules
// that fire with the actions they would run, rendered, and for every rule
// looked at before, why it did not fire. It is the JSON of
// `threadgate explain --json` and of `POST /-/explain`.
type Explanation struct {
	// Rules names the rules file explained, when the caller knows it.
	Rules *RulesRef `json:"rules,omitempty"`
	// Event is the event explained, with its conversation's state.
	Event EventInfo `json:"event"`
	// Fired lists the rules that fire, in order.
	Fired []FiredRule `json:"fired"`
	// Trace lists every rule looked at, in file order, fired or not.
	Trace []TraceStep `json:"trace"`
	// NotTried counts the rules after the last one looked at: a rule that
	// fired without continue: true ended the evaluation.
	NotTried int `json:"not_tried"`
	// WhenErrors lists `when` expressions that failed; each counted as false.
	WhenErrors []string `json:"when_errors,omitempty"`
}

// RulesRef names a version of a rules file.
type RulesRef struct {
	Path string `json:"path"`
	Hash string `json:"hash"`
}

// EventInfo describes the event of an explanation.
type EventInfo struct {
	Kind        string    `json:"kind"`
	Text        string    `json:"text,omitempty"`
	Payload     string    `json:"payload,omitempty"`
	QuickReply  string    `json:"quick_reply,omitempty"`
	Attachments []string  `json:"attachment,omitempty"`
	Metadata    string    `json:"metadata,omitempty"`
	Standby     bool      `json:"standby"`
	Owner       string    `json:"owner"`
	Paused      bool      `json:"paused"`
	At          time.Time `json:"at"`
}

// FiredRule is a rule that fires and what it would do.
type FiredRule struct {
	Rule    string   `json:"rule"`
	Line    int      `json:"line"`
	Actions []Action `json:"actions"`
	// Errors lists actions that failed to render; they would not run.
	Errors []string `json:"errors,omitempty"`
}

// Action is one action rendered for the event.
type Action struct {
	Kind   string         `json:"kind"`
	Fields map[string]any `json:"fields"`
}

// TraceStep says why one rule did or did not fire.
type TraceStep struct {
	Rule  string `json:"rule"`
	Line  int    `json:"line"`
	Fired bool   `json:"fired"`
	// Reason says which match key failed, or what `when` gave; empty
	// when the rule fired.
	Reason string `json:"reason,omitempty"`
}

// Explain evaluates the input against the rule set, recording why each
// rule looked at did or did not fire. now is the clock when the input gives
// none. Call in.Validate first.
func Explain(set *engine.Set, in Input, now time.Time) Explanation {
	ei := engineInput(set, &in, now)
	d := set.Explain(ei)
	line := make(map[string]int, len(set.Rules()))
	for _, r := range set.Rules() {
		line[r.Name] = r.Line
	}
	ev := ei.Event
	x := Explanation{
		Event: EventInfo{
			Kind: string(ev.Kind), Text: ev.Text, Payload: ev.Payload, QuickReply: ev.QuickReply,
			Attachments: ev.Attachments, Metadata: ev.Metadata, Standby: ev.Standby,
			Owner: ei.State.Owner, Paused: ei.State.Paused, At: ei.Now,
		},
		Fired: []FiredRule{},
		Trace: make([]TraceStep, 0, len(d.Trace)),
	}
	for _, f := range d.Fired {
		fr := FiredRule{Rule: f.Rule.Name, Line: f.Rule.Line, Actions: []Action{}}
		for _, s := range f.Steps {
			fr.Actions = append(fr.Actions, Action{Kind: s.Kind(), Fields: s.Fields()})
		}
		for _, err := range f.Errors {
			fr.Errors = append(fr.Errors, err.Error())
		}
		x.Fired = append(x.Fired, fr)
	}
	for _, t := range d.Trace {
		x.Trace = append(x.Trace, TraceStep{Rule: t.Rule, Line: line[t.Rule], Fired: t.Fired, Reason: t.Reason})
	}
	x.NotTried = len(set.Rules()) - len(d.Trace)
	for _, we := range d.WhenErrors {
		x.WhenErrors = append(x.WhenErrors, we.Error())
	}
	return x
}

// WriteText prints the explanation for a person; path names the rules file
// in rule positions (path:line).
func (x *Explanation) WriteText(w io.Writer, path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "event: %s\n\n", x.Event.describe())
	width := 0
	for _, t := range x.Trace {
		width = max(width, len(fmt.Sprintf("%s:%d", path, t.Line)))
	}
	nameWidth := 0
	for _, t := range x.Trace {
		nameWidth = min(max(nameWidth, len(t.Rule)), 32)
	}
	fired := 0
	for _, t := range x.Trace {
		pos := fmt.Sprintf("%s:%d", path, t.Line)
		if !t.Fired {
			fmt.Fprintf(&b, "  %-*s  %-*s  no: %s\n", width, pos, nameWidth, t.Rule, t.Reason)
			continue
		}
		var fr FiredRule
		if fired < len(x.Fired) {
			fr = x.Fired[fired]
		}
		fired++
		fmt.Fprintf(&b, "  %-*s  %-*s  FIRES\n", width, pos, nameWidth, t.Rule)
		indent := strings.Repeat(" ", 2+width+2+nameWidth+2)
		if len(fr.Actions) == 0 && len(fr.Errors) == 0 {
			fmt.Fprintf(&b, "%s(nothing to do for this event)\n", indent)
		}
		for _, a := range fr.Actions {
			fmt.Fprintf(&b, "%s%s %s\n", indent, a.Kind, actions.Format(a.Fields))
		}
		for _, e := range fr.Errors {
			fmt.Fprintf(&b, "%sfailed to render, would not run: %s\n", indent, e)
		}
	}
	b.WriteByte('\n')
	switch {
	case len(x.Fired) == 0:
		b.WriteString("result: no rule fires; the bot does nothing with this event.\n")
	default:
		names := make([]string, len(x.Fired))
		for i, f := range x.Fired {
			names[i] = f.Rule
		}
		verb := "fires"
		if len(names) > 1 {
			verb = "fire"
		}
		fmt.Fprintf(&b, "result: %s %s", strings.Join(names, ", "), verb)
		if x.NotTried > 0 {
			last := names[len(names)-1]
			fmt.Fprintf(&b, "; the %s after it %s not tried (%s has no continue: true)", plural(x.NotTried, "rule", "rules"), isAre(x.NotTried), last)
		}
		b.WriteString(".\n")
	}
	for _, e := range x.WhenErrors {
		fmt.Fprintf(&b, "warning: %s; counted as false\n", e)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// describe says in one line what the event is.
func (e *EventInfo) describe() string {
	var b strings.Builder
	b.WriteString(e.Kind)
	switch {
	case e.Kind == string(engine.KindPostback) && e.Payload != "":
		fmt.Fprintf(&b, " with payload %s", strconv.Quote(e.Payload))
	case e.Kind == string(engine.KindMessage):
		if e.Text != "" {
			fmt.Fprintf(&b, " %s", strconv.Quote(e.Text))
		}
		if e.QuickReply != "" {
			fmt.Fprintf(&b, " with quick reply %s", strconv.Quote(e.QuickReply))
		}
		if len(e.Attachments) > 0 {
			fmt.Fprintf(&b, " with attachment %s", strings.Join(e.Attachments, ", "))
		}
	}
	if e.Metadata != "" {
		fmt.Fprintf(&b, " with metadata %s", strconv.Quote(e.Metadata))
	}
	channel := "main channel"
	if e.Standby {
		channel = "standby channel"
	}
	fmt.Fprintf(&b, " (%s, thread owner %s", channel, e.Owner)
	if e.Paused {
		b.WriteString(", bot paused")
	}
	fmt.Fprintf(&b, ", at %s)", e.At.Format(time.RFC3339))
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
