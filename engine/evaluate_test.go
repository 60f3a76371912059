package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/messenger"
)

// eqCond is an indexed test condition: a field equals one of keys.
type eqCond struct {
	field Field
	keys  []string
}

func (c *eqCond) Key() string {
	return map[Field]string{FieldText: "text", FieldPostback: "postback", FieldQuickReply: "quick_reply"}[c.field]
}

func (c *eqCond) Holds(s *Subject) bool {
	switch c.field {
	case FieldText:
		return s.Event.Kind == KindMessage && slices.Contains(c.keys, s.Normalized)
	case FieldPostback:
		return s.Event.Kind == KindPostback && slices.Contains(c.keys, s.Event.Payload)
	case FieldQuickReply:
		return s.Event.HasQuickReply && slices.Contains(c.keys, s.Event.QuickReply)
	}
	return false
}

func (c *eqCond) Describe() string      { return "wants " + strings.Join(c.keys, " or ") }
func (c *eqCond) IndexField() Field     { return c.field }
func (c *eqCond) IndexKeys() []string   { return c.keys }
func text(keys ...string) *eqCond       { return &eqCond{FieldText, keys} }
func postback(keys ...string) *eqCond   { return &eqCond{FieldPostback, keys} }
func quickReply(keys ...string) *eqCond { return &eqCond{FieldQuickReply, keys} }
func contains(word string) *predCond    { return &predCond{"contains", word, nil} }
func group(name, word string) *predCond { return &predCond{"regex", word, &name} }
func (c *predCond) Describe() string    { return "wants the word " + c.word }
func (c *predCond) Key() string         { return c.key }
func rule(name string, cs ...Condition) *Rule {
	return &Rule{Name: name, Events: []Kind{KindMessage}, Conditions: cs, Actions: []actions.Action{&stepAction{}}}
}

// predCond is a plain (not indexed) test condition: the normalized text
// holds a word. With a group name it records the word as a named group.
type predCond struct {
	key   string
	word  string
	group *string
}

func (c *predCond) Holds(s *Subject) bool {
	if s.Event.Kind != KindMessage || !slices.Contains(strings.Fields(s.Normalized), c.word) {
		return false
	}
	if c.group != nil {
		if s.Groups == nil {
			s.Groups = map[string]string{}
		}
		s.Groups[*c.group] = c.word
	}
	return true
}

// stepAction plans a step that records what the action saw.
type stepAction struct{ fail bool }

func (a *stepAction) Kind() string { return "test" }

func (a *stepAction) Plan(d *Data) (actions.Step, error) {
	if a.fail {
		return nil, errors.New("cannot render")
	}
	return &testStep{fields: map[string]any{
		"rule": d.Rule, "text": d.Text, "payload": d.Payload, "event": d.Event, "groups": fmt.Sprint(d.Groups),
		"owner": d.Owner, "vars": fmt.Sprint(d.Vars), "metadata": d.Metadata, "transcript": strings.Join(d.Transcript, "|"),
	}}, nil
}

// Data is a short name for the actions' template data in these tests.
type Data = actions.Data

// nilAction plans nothing (like echo for a message without text).
type nilAction struct{}

func (nilAction) Kind() string                     { return "nothing" }
func (nilAction) Plan(*Data) (actions.Step, error) { return nil, nil }

type testStep struct{ fields map[string]any }

func (s *testStep) Kind() string           { return "test" }
func (s *testStep) Fields() map[string]any { return s.fields }
func (s *testStep) Effect() actions.Effect { return actions.Effect{} }
func (s *testStep) Execute(context.Context, actions.Platform, messenger.Recipient) error {
	return nil
}

func msg(s string) *Event { return &Event{Kind: KindMessage, Text: s, SenderID: "u1", PageID: "p1"} }

func names(d Decision) []string {
	var out []string
	for _, f := range d.Fired {
		out = append(out, f.Rule.Name)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	handover := &Rule{Name: "back", Events: []Kind{KindPassThreadControl}, Actions: []actions.Action{&stepAction{}}}
	standby := &Rule{Name: "standby", Events: []Kind{KindMessage}, Standby: true, Conditions: []Condition{contains("bot")}, Actions: []actions.Action{&stepAction{}}}
	button := &Rule{Name: "button", Events: []Kind{KindPostback}, Conditions: []Condition{postback("AGENT")}, Actions: []actions.Action{&stepAction{}}}
	chip := &Rule{Name: "chip", Events: []Kind{KindMessage}, Conditions: []Condition{quickReply("YES")}, Actions: []actions.Action{&stepAction{}}}
	cont := rule("seen")
	cont.Continue = true
	paused := rule("paused-ok", contains("resume"))
	paused.EvenWhenPaused = true
	set := NewSet([]*Rule{
		cont,
		rule("agent", text("chat with agent", "talk to a human")),
		rule("agent-again", text("chat with agent")), // shadowed by "agent"
		rule("refund", contains("refund")),
		rule("order", group("order", "order")),
		button, chip, handover, standby, paused,
		rule("echo"),
	}, nil, nil, Handover{})

	tests := []struct {
		name  string
		ev    *Event
		state State
		want  []string
	}{
		{"phrase after normalizing", msg("  Chat with AGENT! "), State{}, []string{"seen", "agent"}},
		{"second phrase", msg("talk to a human"), State{}, []string{"seen", "agent"}},
		{"plain rule", msg("I want a refund"), State{}, []string{"seen", "refund"}},
		{"nothing specific: catch-all", msg("hello"), State{}, []string{"seen", "echo"}},
		{"postback", &Event{Kind: KindPostback, Payload: "AGENT"}, State{}, []string{"button"}},
		{"unknown postback", &Event{Kind: KindPostback, Payload: "OTHER"}, State{}, nil},
		{"quick reply", &Event{Kind: KindMessage, Text: "Yes", QuickReply: "YES", HasQuickReply: true}, State{}, []string{"seen", "chip"}},
		{"quick reply text is not the payload", msg("YES"), State{}, []string{"seen", "echo"}},
		{"handover", &Event{Kind: KindPassThreadControl}, State{}, []string{"back"}},
		{"take is not pass", &Event{Kind: KindTakeThreadControl}, State{}, nil},
		{"standby matches only standby rules", &Event{Kind: KindMessage, Text: "back to bot", Standby: true}, State{}, []string{"standby"}},
		{"standby without a rule", &Event{Kind: KindMessage, Text: "hello", Standby: true}, State{}, nil},
		{"paused: only rules that allow it", msg("please resume"), State{Paused: true}, []string{"paused-ok"}},
		{"paused: nothing", msg("chat with agent"), State{Paused: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Event: tt.ev, State: tt.state, Now: time.Unix(0, 0)}
			got := set.Evaluate(in)
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("Evaluate fired %v, want %v", names(got), tt.want)
			}
			ex := set.Explain(in)
			if !reflect.DeepEqual(names(ex), tt.want) {
				t.Errorf("Explain fired %v, want %v", names(ex), tt.want)
			}
			if got.Trace != nil {
				t.Errorf("Evaluate filled Trace")
			}
		})
	}
}

func TestEvaluateNilEvent(t *testing.T) {
	set := NewSet([]*Rule{rule("echo")}, nil, nil, Handover{})
	if d := set.Evaluate(Input{}); len(d.Fired) != 0 {
		t.Errorf("a nil event fired %v", names(d))
	}
	if d := NewSet(nil, nil, nil, Handover{}).Evaluate(Input{Event: msg("hi")}); len(d.Fired) != 0 {
		t.Errorf("an empty set fired %v", names(d))
	}
}

func TestContinue(t *testing.T) {
	a, b, c := rule("a", contains("x")), rule("b", text("x y")), rule("c")
	a.Continue, b.Continue = true, false
	set := NewSet([]*Rule{a, b, c}, nil, nil, Handover{})
	for _, tt := range []struct {
		text string
		want []string
	}{
		{"x y", []string{"a", "b"}}, // b ends evaluation: c does not fire
		{"x", []string{"a", "c"}},   // b does not fire, c does
		{"z", []string{"c"}},
	} {
		if got := names(set.Evaluate(Input{Event: msg(tt.text)})); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q fired %v, want %v", tt.text, got, tt.want)
		}
	}
	// Every rule continuing: all that hold fire, in file order.
	c.Continue, b.Continue = true, true
	if got := names(set.Evaluate(Input{Event: msg("x y")})); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("all continuing fired %v", got)
	}
}

func TestFiring(t *testing.T) {
	r := rule("order", group("order", "order"))
	r.Actions = []actions.Action{&stepAction{}, nilAction{}, &stepAction{fail: true}, &stepAction{}}
	set := NewSet([]*Rule{r}, map[string]string{"zendesk": "42"}, map[string]any{"brand": "Acme"}, Handover{})
	d := set.Evaluate(Input{
		Event: &Event{Kind: KindMessage, Text: "my order", QuickReply: "QR", HasQuickReply: true},
		State: State{Owner: "zendesk", Transcript: []string{"a", "b"}},
	})
	if len(d.Fired) != 1 {
		t.Fatalf("fired %v", names(d))
	}
	f := d.Fired[0]
	if len(f.Steps) != 2 {
		t.Errorf("Steps = %d, want 2 (nil steps and failed renders are left out)", len(f.Steps))
	}
	if len(f.Errors) != 1 || !strings.Contains(f.Errors[0].Error(), `rule "order": test: cannot render`) {
		t.Errorf("Errors = %v", f.Errors)
	}
	if f.Groups["order"] != "order" {
		t.Errorf("Groups = %v", f.Groups)
	}
	want := map[string]any{
		"rule": "order", "text": "my order", "payload": "QR", "event": "message", "groups": "map[order:order]",
		"owner": "zendesk", "vars": "map[brand:Acme]", "metadata": "", "transcript": "a|b",
	}
	if got := f.Steps[0].Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("data = %v\nwant %v", got, want)
	}
	// A postback's payload is the postback's; groups are an empty map.
	pb := &Rule{Name: "pb", Events: []Kind{KindPostback}, Actions: []actions.Action{&stepAction{}}}
	d = NewSet([]*Rule{pb}, nil, nil, Handover{}).Evaluate(Input{Event: &Event{Kind: KindPostback, Payload: "P", Metadata: "m"}})
	if got := d.Fired[0].Steps[0].Fields(); got["payload"] != "P" || got["groups"] != "map[]" {
		t.Errorf("postback data = %v", got)
	}
	if set.AppName("42") != "zendesk" || set.AppName("43") != "" {
		t.Errorf("AppName: %q %q", set.AppName("42"), set.AppName("43"))
	}
	if set.Rule("order") != r || set.Rule("nope") != nil {
		t.Errorf("Rule lookup failed")
	}
}

func mustWhen(t testing.TB, src string) *When {
	t.Helper()
	w, err := CompileWhen(src)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestExplainReasons(t *testing.T) {
	pb := &Rule{Name: "button", Events: []Kind{KindPostback}, Conditions: []Condition{postback("X")}, Actions: []actions.Action{&stepAction{}}}
	sb := &Rule{Name: "standby", Events: []Kind{KindMessage}, Standby: true, Actions: []actions.Action{&stepAction{}}}
	phrase := rule("phrase", text("chat with agent"))
	late := rule("late")
	late.When = mustWhen(t, `hour(now(), "UTC") >= 18`)
	broken := rule("broken")
	broken.When = mustWhen(t, `hour(now(), text) >= 0`)
	set := NewSet([]*Rule{pb, sb, phrase, late, broken, rule("echo")}, nil, nil, Handover{})
	d := set.Explain(Input{Event: msg("hello"), Now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)})
	want := []RuleTrace{
		{"button", false, "event: is message, the rule wants postback"},
		{"standby", false, "standby: the rule wants standby events and this one came on the main channel"},
		{"phrase", false, `text: wants chat with agent`},
		{"late", false, `when: hour(now(), "UTC") >= 18 is false`},
		{"broken", false, ""}, // checked below
		{"echo", true, ""},
	}
	if len(d.Trace) != len(want) {
		t.Fatalf("Trace = %+v", d.Trace)
	}
	for i, w := range want {
		got := d.Trace[i]
		if w.Rule == "broken" {
			if got.Fired || !strings.HasPrefix(got.Reason, "when: failed (") || !strings.HasSuffix(got.Reason, "counts as false") {
				t.Errorf("trace[%d] = %+v, want a failed when", i, got)
			}
			continue
		}
		if got != w {
			t.Errorf("trace[%d] = %+v, want %+v", i, got, w)
		}
	}
	if len(d.WhenErrors) != 1 || d.WhenErrors[0].Rule != "broken" || d.WhenErrors[0].Error() != `rule "broken": when: unknown time zone at 1:1` {
		t.Errorf("WhenErrors = %v", d.WhenErrors)
	}
	// Evaluate reports the same runtime error.
	if e := set.Evaluate(Input{Event: msg("hello")}); len(e.WhenErrors) != 1 || !reflect.DeepEqual(names(e), []string{"echo"}) {
		t.Errorf("Evaluate: WhenErrors %v, fired %v", e.WhenErrors, names(e))
	}
	sbd := NewSet([]*Rule{rule("echo")}, nil, nil, Handover{}).Explain(Input{Event: &Event{Kind: KindMessage, Text: "x", Standby: true}})
	if r := sbd.Trace[0].Reason; !strings.HasPrefix(r, "standby: the event came on the standby channel") {
		t.Errorf("standby reason = %q", r)
	}
	pd := set.Explain(Input{Event: msg("x"), State: State{Paused: true}})
	if r := pd.Trace[2].Reason; !strings.HasPrefix(r, "paused: ") {
		t.Errorf("paused reason = %q", r)
	}
}

// TestEvaluateMatchesExplain builds random rule sets and events and checks
// that the indexed Evaluate and the linear Explain reach the same decision.
func TestEvaluateMatchesExplain(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "d"}
	pick := func() string { return words[rng.IntN(len(words))] }
	phrase := func() string {
		if rng.IntN(2) == 0 {
			return pick()
		}
		return pick() + " " + pick()
	}
	kinds := []Kind{KindMessage, KindPostback, KindPassThreadControl}
	whens := []string{`text != "a"`, `hour(now(), payload) >= 0`, `standby || !standby`}
	compiled := map[string]*When{}
	for _, w := range whens {
		compiled[w] = mustWhen(t, w)
	}
	for iter := 0; iter < 400; iter++ {
		var rs []*Rule
		for i := 0; i < 1+rng.IntN(25); i++ {
			r := &Rule{Name: fmt.Sprintf("r%d", i), Actions: []actions.Action{&stepAction{}}}
			r.Events = []Kind{kinds[rng.IntN(len(kinds))]}
			if rng.IntN(4) == 0 {
				r.Events = append(r.Events, kinds[rng.IntN(len(kinds))])
			}
			r.Standby = rng.IntN(6) == 0
			r.EvenWhenPaused = rng.IntN(3) == 0
			r.Continue = rng.IntN(3) == 0
			for j := 0; j < rng.IntN(3); j++ {
				switch rng.IntN(5) {
				case 0:
					r.Conditions = append(r.Conditions, text(phrase(), phrase()))
				case 1:
					r.Conditions = append(r.Conditions, postback(pick()))
				case 2:
					r.Conditions = append(r.Conditions, quickReply(pick(), pick()))
				case 3:
					r.Conditions = append(r.Conditions, contains(pick()))
				case 4:
					r.Conditions = append(r.Conditions, group("g", pick()))
				}
			}
			if rng.IntN(4) == 0 {
				r.When = compiled[whens[rng.IntN(len(whens))]]
			}
			rs = append(rs, r)
		}
		set := NewSet(rs, nil, nil, Handover{})
		for e := 0; e < 20; e++ {
			ev := &Event{Kind: kinds[rng.IntN(len(kinds))], Standby: rng.IntN(5) == 0}
			switch ev.Kind {
			case KindMessage:
				ev.Text = strings.ToUpper(phrase()) + "!"
				if rng.IntN(3) == 0 {
					ev.QuickReply, ev.HasQuickReply = pick(), true
				}
			case KindPostback:
				ev.Payload = pick()
				if rng.IntN(4) == 0 {
					ev.Payload = "UTC"
				}
			}
			in := Input{Event: ev, State: State{Paused: rng.IntN(5) == 0}, Now: time.Unix(int64(rng.IntN(1e9)), 0)}
			a, b := set.Evaluate(in), set.Explain(in)
			if !reflect.DeepEqual(names(a), names(b)) {
				t.Fatalf("iteration %d, event %+v: Evaluate fired %v, Explain fired %v", iter, ev, names(a), names(b))
			}
			for i := range a.Fired {
				if !reflect.DeepEqual(a.Fired[i].Groups, b.Fired[i].Groups) {
					t.Fatalf("groups differ: %v vs %v", a.Fired[i].Groups, b.Fired[i].Groups)
				}
			}
			if len(a.WhenErrors) != len(b.WhenErrors) {
				t.Fatalf("when errors differ: %v vs %v", a.WhenErrors, b.WhenErrors)
			}
			// The linear reference: the first rules that hold, by hand.
			var want []string
			for _, r := range rs {
				if reason, _ := set.check(r, &Subject{Event: ev, Normalized: normalizedFor(ev)}, in); reason == "" {
					want = append(want, r.Name)
					if !r.Continue {
						break
					}
				}
			}
			if !reflect.DeepEqual(names(a), want) {
				t.Fatalf("Evaluate fired %v, the rules in order say %v", names(a), want)
			}
		}
	}
}

func normalizedFor(ev *Event) string {
	if ev.Kind == KindMessage {
		return Normalize(ev.Text)
	}
	return ""
}

func TestMergeSorted(t *testing.T) {
	tests := []struct {
		lists [][]int
		want  []int
	}{
		{[][]int{{1, 3, 5}, {2, 3, 6}}, []int{1, 2, 3, 5, 6}},
		{[][]int{{}, {4}}, []int{4}},
		{[][]int{{0, 9}, {1}, {2, 9}, {9}}, []int{0, 1, 2, 9}},
	}
	for _, tt := range tests {
		if got := mergeSorted(nil, tt.lists); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("mergeSorted(%v) = %v, want %v", tt.lists, got, tt.want)
		}
	}
}

// A failing `when` is logged by the gateway: its error names the rule, the
// position and the kind of failure, never the user's text.
func TestWhenErrorCarriesNoUserText(t *testing.T) {
	const card = "4111 1111 1111 1111"
	tests := []struct {
		when, want string
	}{
		{`int(text) > 5`, `rule "r": when: invalid operation at 1:1`},
		{`float(text) > 1.5`, `rule "r": when: invalid operation at 1:1`},
		{`split(text, "x")[5] == "a"`, `rule "r": when: index out of range at 1:17`},
		{`business_hours(text, "UTC")`, `rule "r": when: business hours at 1:1`},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			w, err := CompileWhen(tt.when)
			if err != nil {
				t.Fatal(err)
			}
			r := rule("r")
			r.When = w
			d := NewSet([]*Rule{r}, nil, nil, Handover{}).Evaluate(Input{Event: msg(card)})
			if len(d.WhenErrors) != 1 {
				t.Fatalf("WhenErrors = %v, want one", d.WhenErrors)
			}
			we := d.WhenErrors[0]
			if got := we.Error(); got != tt.want || strings.Contains(got, "4111") {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !strings.Contains(we.Detail(), "4111") && tt.when != `split(text, "x")[5] == "a"` {
				t.Errorf("Detail() = %q, want expr's own message for explain", we.Detail())
			}
		})
	}
}
