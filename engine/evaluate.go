package engine

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/threadgate/threadgate/actions"
)

// Input is everything one evaluation reads.
type Input struct {
	// Event is the event to decide on.
	Event *Event
	// State is what is known of the conversation.
	State State
	// Now is the clock that `now()` and business hours read.
	Now time.Time
}

// Decision is the outcome of evaluating one event.
type Decision struct {
	// Fired lists the rules that fired, in order, with their planned steps.
	Fired []Firing
	// Trace explains every rule looked at, in order; only Explain fills it.
	Trace []RuleTrace
	// WhenErrors lists `when` expressions that failed at run time; each
	// counted as false. The gateway logs them with the rule's name.
	WhenErrors []*WhenError
}

// Firing is one rule that fired and what it plans to do.
type Firing struct {
	// Rule is the rule that fired.
	Rule *Rule
	// Groups are the named groups of its regex, if any.
	Groups map[string]string
	// Steps are its actions rendered for the event, in order.
	Steps []actions.Step
	// Errors holds rendering errors; the action that failed to render is
	// left out of Steps.
	Errors []error
}

// RuleTrace says why a rule did or did not fire.
type RuleTrace struct {
	// Rule is the rule's name.
	Rule string
	// Fired is true when the rule fired.
	Fired bool
	// Reason explains a rule that did not fire: which match key failed, or
	// what `when` evaluated to. Empty when the rule fired.
	Reason string
}

// Evaluate decides what to do with one event: the first rule (in file order)
// whose event kind, channel, match keys and `when` all hold fires; with
// `continue: true` evaluation goes on to later rules.
func (s *Set) Evaluate(in Input) Decision {
	return s.evaluate(in, false)
}

// Explain is Evaluate that also records, for every rule it looked at, why the
// rule did or did not fire. It looks at the rules one by one, without the
// index, and reaches the same decision as Evaluate.
func (s *Set) Explain(in Input) Decision {
	return s.evaluate(in, true)
}

// WhenError is a `when` expression that failed at run time. Its message
// names the rule, the position in the expression and the kind of error,
// never the values the expression read: those are the user's text, and
// the message is logged.
type WhenError struct {
	// Rule is the rule's name.
	Rule string
	// Line and Column locate the failure in the expression (from 1; 0 when
	// unknown).
	Line, Column int
	// Kind says what went wrong, from a fixed vocabulary (see whenErrKinds).
	Kind string
	// err is expr's error, which may quote the user's text.
	err error
}

// Error describes the failure without the values involved.
func (e *WhenError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("rule %q: when: %s at %d:%d", e.Rule, e.Kind, e.Line, e.Column)
	}
	return fmt.Sprintf("rule %q: when: %s", e.Rule, e.Kind)
}

// Detail returns expr's own message, which may quote the user's text: for
// explain output shown to the person who wrote the event, never for logs.
func (e *WhenError) Detail() string { return e.err.Error() }

// Unwrap returns expr's error.
func (e *WhenError) Unwrap() error { return e.err }

// whenErrKinds are the kinds of run-time errors of `when` expressions, each
// the fixed start of expr's message (or of the message of a function that
// threadgate adds).
var whenErrKinds = []string{
	"invalid operation", "index out of range", "cannot use", "cannot fetch", "cannot convert",
	"integer divide by zero", "runtime error", "interface conversion", "unknown time zone",
	"business hours",
}

// newWhenError classifies a run-time error of rule's `when` expression.
func newWhenError(rule string, err error) *WhenError {
	we := &WhenError{Rule: rule, Kind: "evaluation failed", err: err}
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		we.Line, we.Column, msg = fe.Line, fe.Column+1, fe.Message
	}
	for _, k := range whenErrKinds {
		if strings.HasPrefix(msg, k) {
			we.Kind = k
			break
		}
	}
	return we
}

// scratch is what one evaluation works with and does not return: the
// subject the conditions read and the data the actions render. Neither
// outlives the evaluation (conditions and actions are told not to keep
// them), so they are pooled rather than allocated for every event.
type scratch struct {
	sub  Subject
	data actions.Data
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// firstFiring holds the first rule that fires and its first steps in one
// allocation: most events fire one rule with a step or two.
type firstFiring struct {
	fired [1]Firing
	steps [4]actions.Step
}

func (s *Set) evaluate(in Input, explain bool) Decision {
	var d Decision
	ev := in.Event
	if ev == nil {
		return d
	}
	sc := scratchPool.Get().(*scratch)
	defer func() {
		*sc = scratch{} // keep no event's text in the pool
		scratchPool.Put(sc)
	}()
	sub := &sc.sub
	sub.Event = ev
	if ev.Kind == KindMessage {
		sub.Normalized = Normalize(ev.Text)
	}
	var order []int
	if explain {
		order = make([]int, len(s.rules))
		for i := range order {
			order[i] = i
		}
	} else {
		var buf [16]int
		order = s.candidates(sub, buf[:])
	}
	for _, i := range order {
		r := s.rules[i]
		sub.Groups = nil
		reason, werr := s.check(r, sub, in)
		if werr != nil {
			d.WhenErrors = append(d.WhenErrors, werr)
		}
		if explain {
			d.Trace = append(d.Trace, RuleTrace{Rule: r.Name, Fired: reason == "", Reason: reason})
		}
		if reason != "" {
			continue
		}
		var steps []actions.Step
		if d.Fired == nil && len(r.Actions) <= len(firstFiring{}.steps) {
			ff := new(firstFiring)
			d.Fired, steps = ff.fired[:0], ff.steps[:0]
		} else if len(r.Actions) > 0 {
			steps = make([]actions.Step, 0, len(r.Actions))
		}
		d.Fired = append(d.Fired, s.fire(r, sub, in, &sc.data, steps))
		if !r.Continue {
			break
		}
	}
	return d
}

// check returns "" when the rule fires for the subject, else why not.
func (s *Set) check(r *Rule, sub *Subject, in Input) (string, *WhenError) {
	ev := sub.Event
	if !r.appliesTo(ev.Kind) {
		return fmt.Sprintf("event: is %s, the rule wants %s", ev.Kind, kindList(r.Events)), nil
	}
	if r.Standby != ev.Standby {
		if ev.Standby {
			return "standby: the event came on the standby channel (another app owns the thread) and the rule does not say standby: true", nil
		}
		return "standby: the rule wants standby events and this one came on the main channel", nil
	}
	if in.State.Paused && !r.EvenWhenPaused {
		return "paused: the bot is paused for this user and the rule does not say paused: any", nil
	}
	for _, c := range r.Conditions {
		if !c.Holds(sub) {
			return fmt.Sprintf("%s: %s", c.Key(), c.Describe()), nil
		}
	}
	if r.When != nil {
		out, err := expr.Run(r.When.Program, NewEnv(sub, in.State, s.vars, in.Now))
		if err != nil {
			we := newWhenError(r.Name, err)
			return fmt.Sprintf("when: failed (%s), counts as false", we.Detail()), we
		}
		if b, ok := out.(bool); !ok || !b {
			return fmt.Sprintf("when: %s is false", r.When.Source), nil
		}
	}
	return "", nil
}

// fire renders the actions of a rule that fired into steps (appended to
// steps, which may have room for them), with data as the scratch the
// actions read.
func (s *Set) fire(r *Rule, sub *Subject, in Input, data *actions.Data, steps []actions.Step) Firing {
	f := Firing{Rule: r, Groups: sub.Groups, Steps: steps}
	s.fillData(data, r, sub, in)
	for _, a := range r.Actions {
		st, err := a.Plan(data)
		if err != nil {
			f.Errors = append(f.Errors, fmt.Errorf("rule %q: %s: %w", r.Name, a.Kind(), err))
			continue
		}
		if st != nil {
			f.Steps = append(f.Steps, st)
		}
	}
	if len(f.Steps) == 0 {
		f.Steps = nil // as before: no steps is a nil list
	}
	return f
}

// noGroups is what templates read as .Groups when the rule has no regex
// groups. It is shared and never written: templates only read their data.
var noGroups = map[string]string{}

// fillData sets what the templates of a rule that fired read.
func (s *Set) fillData(d *actions.Data, r *Rule, sub *Subject, in Input) {
	ev := sub.Event
	groups := sub.Groups
	if groups == nil {
		groups = noGroups
	}
	*d = actions.Data{
		Text:       ev.Text,
		Payload:    payloadOf(ev),
		Event:      string(ev.Kind),
		SenderID:   ev.SenderID,
		PageID:     ev.PageID,
		Rule:       r.Name,
		Groups:     groups,
		Metadata:   ev.Metadata,
		Vars:       s.vars,
		Owner:      in.State.Owner,
		Transcript: in.State.Transcript,
		User:       ev.User,
	}
}

func kindList(ks []Kind) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = string(k)
	}
	return strings.Join(parts, " or ")
}
