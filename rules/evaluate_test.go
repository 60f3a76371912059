package rules

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
)

func mustParse(t testing.TB, src string) *File {
	t.Helper()
	f, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return f
}

// fired returns "rule: kind field" for every step of every fired rule.
func fired(d engine.Decision) []string {
	var out []string
	for _, f := range d.Fired {
		if len(f.Steps) == 0 {
			out = append(out, f.Rule.Name)
		}
		for _, st := range f.Steps {
			fields := st.Fields()
			keys := sortedKeys(fields)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s=%v", k, fields[k]))
			}
			out = append(out, fmt.Sprintf("%s: %s %s", f.Rule.Name, st.Kind(), strings.Join(parts, " ")))
		}
	}
	return out
}

const deskRules = `
version: 1
apps:
  zendesk: 200646160103180
vars:
  brand: Acme
rules:
  - name: seen
    do: [sender_action: mark_seen]
    continue: true
  - name: agent
    match:
      text: [chat with agent, talk to a human]
    do:
      - reply: "Connecting you."
      - pass_thread_control: {target: zendesk, metadata: "asked: {{ .Text }}"}
  - name: agent-button
    match: {postback: TALK_TO_AGENT}
    do: [pass_thread_control: zendesk]
  - name: order
    match:
      regex: '(?i)order\s*#?(?P<order>\d{4,})'
    do: [reply: "Order {{ .Groups.order }} for {{ .Vars.brand }}"]
  - name: yes
    match: {quick_reply: "YES"}
    do: [reply: "Great"]
  - name: refund
    match: {contains: refund}
    do: [reply: "Refunds"]
  - name: photo
    match: {attachment: [image, sticker]}
    do: [reply: "Nice picture"]
  - name: back
    match: {event: pass_thread_control}
    do: [reply: "Back with the bot"]
  - name: standby-bot
    match: {standby: true, contains: bot}
    do: [take_thread_control: {}]
  - name: echo
    do: [echo: "[bot] "]
`

func TestEvaluateRules(t *testing.T) {
	t.Parallel()
	f := mustParse(t, deskRules)
	tests := []struct {
		name string
		ev   *engine.Event
		want []string
	}{
		{"phrase", message("  Chat with AGENT! "), []string{
			"seen: sender_action action=mark_seen",
			"agent: reply text=Connecting you.",
			"agent: pass_thread_control app_id=200646160103180 metadata=asked:   Chat with AGENT!  target=zendesk",
		}},
		{"regex with a group", message("where is order #4567"), []string{
			"seen: sender_action action=mark_seen",
			"order: reply text=Order 4567 for Acme",
		}},
		{"quick reply", &engine.Event{Kind: engine.KindMessage, Text: "Yes!", QuickReply: "YES", HasQuickReply: true}, []string{
			"seen: sender_action action=mark_seen",
			"yes: reply text=Great",
		}},
		{"contains", message("I'd like a REFUND."), []string{
			"seen: sender_action action=mark_seen",
			"refund: reply text=Refunds",
		}},
		{"contains needs whole words", message("refunds"), []string{
			"seen: sender_action action=mark_seen",
			"echo: echo text=[bot] refunds",
		}},
		{"sticker", &engine.Event{Kind: engine.KindMessage, Attachments: []string{"sticker"}}, []string{
			"seen: sender_action action=mark_seen",
			"photo: reply text=Nice picture",
		}},
		{"attachment without text: echo sends nothing", &engine.Event{Kind: engine.KindMessage, Attachments: []string{"audio"}}, []string{
			"seen: sender_action action=mark_seen",
			"echo",
		}},
		{"postback", &engine.Event{Kind: engine.KindPostback, Payload: "TALK_TO_AGENT"}, []string{
			"agent-button: pass_thread_control app_id=200646160103180 metadata= target=zendesk",
		}},
		{"unknown postback: the catch-all is for messages", &engine.Event{Kind: engine.KindPostback, Payload: "OTHER"}, nil},
		{"hand-back", &engine.Event{Kind: engine.KindPassThreadControl, Metadata: "done"}, []string{
			"back: reply text=Back with the bot",
		}},
		{"take_thread_control event: no rule", &engine.Event{Kind: engine.KindTakeThreadControl}, nil},
		{"standby", &engine.Event{Kind: engine.KindMessage, Text: "back to the bot", Standby: true}, []string{
			"standby-bot: take_thread_control metadata=",
		}},
		{"standby without a standby rule", &engine.Event{Kind: engine.KindMessage, Text: "hello", Standby: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := engine.Input{Event: tt.ev, Now: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}
			got := fired(f.Set.Evaluate(in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Evaluate:\n  got  %q\n  want %q", got, tt.want)
			}
			if ex := fired(f.Set.Explain(in)); !reflect.DeepEqual(ex, got) {
				t.Errorf("Explain disagrees:\n  %q\n  %q", ex, got)
			}
		})
	}
}

func TestFirstMatchAndContinue(t *testing.T) {
	t.Parallel()
	f := mustParse(t, `
version: 1
rules:
  - name: loud
    match: {regex: '^[A-Z ]+$'}
    do: [reply: loud]
    continue: true
  - name: first
    match: {text: hello}
    do: [reply: first]
  - name: second
    match: {text: hello}
    do: [reply: second]
  - name: hello-words
    match: {contains: hello}
    do: [reply: words]
    continue: true
  - name: last
    do: [reply: last]
`)
	tests := []struct {
		text string
		want []string
	}{
		{"hello", []string{"first"}},         // first of two equal rules
		{"HELLO", []string{"loud", "first"}}, // continue goes on to the next that holds
		{"hello there", []string{"hello-words", "last"}},
		{"SAY HELLO", []string{"loud", "hello-words", "last"}},
		{"bye", []string{"last"}},
	}
	for _, tt := range tests {
		d := f.Set.Evaluate(engine.Input{Event: message(tt.text)})
		var got []string
		for _, fi := range d.Fired {
			got = append(got, fi.Rule.Name)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q fired %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestWhenWithClock(t *testing.T) {
	t.Parallel()
	f := mustParse(t, `
version: 1
rules:
  - name: open
    match: {text: agent}
    when: 'business_hours("Mon-Fri 09:00-18:00", "Europe/Paris")'
    do: [reply: open]
  - name: night
    match: {text: agent}
    when: 'hour(now(), "Europe/Paris") >= 22 || hour(now(), "Europe/Paris") < 6'
    do: [reply: night]
  - name: weekend
    match: {text: agent}
    when: weekday(now(), "Europe/Paris") == 0 || weekday(now(), "Europe/Paris") == 6
    do: [reply: weekend]
  - name: new-year
    match: {text: agent}
    when: now().YearDay() == 1
    do: [reply: new-year]
  - name: closed
    match: {text: agent}
    do: [reply: closed]
`)
	tests := []struct {
		at   string
		want string
	}{
		{"2026-01-05T09:00:00+01:00", "open"},    // Monday 09:00 in Paris
		{"2026-01-05T07:59:00Z", "closed"},       // Monday 08:59 in Paris
		{"2026-01-05T17:00:00Z", "closed"},       // Monday 18:00 in Paris: closed
		{"2026-07-06T07:30:00Z", "open"},         // Monday 09:30 in Paris, summer time
		{"2026-01-05T23:30:00+01:00", "night"},   // Monday night
		{"2026-01-10T12:00:00+01:00", "weekend"}, // Saturday noon
		{"2026-01-04T22:00:00+01:00", "night"},   // the spec's "out of hours" example, a Sunday night
		{"2026-01-01T12:00:00Z", "open"},         // New Year's Day is a Thursday: open comes first
	}
	for _, tt := range tests {
		now, err := time.Parse(time.RFC3339, tt.at)
		if err != nil {
			t.Fatal(err)
		}
		d := f.Set.Evaluate(engine.Input{Event: message("agent"), Now: now})
		if len(d.Fired) != 1 || d.Fired[0].Rule.Name != tt.want {
			t.Errorf("at %s fired %v, want %s", tt.at, fired(d), tt.want)
		}
	}
	d := f.Set.Evaluate(engine.Input{Event: message("agent"), Now: time.Date(2026, 1, 1, 20, 0, 0, 0, time.UTC)})
	if len(d.Fired) != 1 || d.Fired[0].Rule.Name != "new-year" {
		t.Errorf("new year's evening fired %v", fired(d))
	}
}

func TestWhenRuntimeError(t *testing.T) {
	t.Parallel()
	f := mustParse(t, `
version: 1
rules:
  - name: zone-from-text
    when: hour(now(), text) >= 0
    do: [reply: zone]
  - name: fallback
    do: [reply: fallback]
`)
	d := f.Set.Evaluate(engine.Input{Event: message("Not/AZone"), Now: time.Unix(0, 0)})
	if got := fired(d); !reflect.DeepEqual(got, []string{"fallback: reply text=fallback"}) {
		t.Errorf("fired %q: a failing when must count as false", got)
	}
	if len(d.WhenErrors) != 1 || d.WhenErrors[0].Rule != "zone-from-text" {
		t.Fatalf("WhenErrors = %v", d.WhenErrors)
	}
	if msg := d.WhenErrors[0].Error(); !strings.Contains(msg, `rule "zone-from-text": when:`) || !strings.Contains(msg, "unknown time zone") {
		t.Errorf("WhenError = %q", msg)
	}
	d = f.Set.Evaluate(engine.Input{Event: message("UTC"), Now: time.Unix(0, 0)})
	if len(d.WhenErrors) != 0 || d.Fired[0].Rule.Name != "zone-from-text" {
		t.Errorf("a valid zone: fired %v, errors %v", fired(d), d.WhenErrors)
	}
}

// TestRandomRuleSets generates rules files from a small vocabulary and checks
// that the indexed Evaluate and the linear Explain fire the same rules with
// the same steps.
func TestRandomRuleSets(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	words := []string{"agent", "help", "order", "Stra\u00dfe", "strasse"}
	payloads := []string{"A", "B", "C"}
	pick := func(l []string) string { return l[rng.IntN(len(l))] }
	phrase := func() string {
		if rng.IntN(2) == 0 {
			return pick(words)
		}
		return pick(words) + " " + pick(words)
	}
	for iter := 0; iter < 150; iter++ {
		var b strings.Builder
		b.WriteString("version: 1\nrules:\n")
		n := 1 + rng.IntN(30)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  - name: r%d\n", i)
			var match []string
			switch rng.IntN(8) {
			case 0:
				match = append(match, fmt.Sprintf("text: [%q, %q]", phrase(), phrase()))
			case 1:
				match = append(match, fmt.Sprintf("contains: %q", pick(words)))
			case 2:
				match = append(match, fmt.Sprintf("postback: [%s, %s]", pick(payloads), pick(payloads)))
			case 3:
				match = append(match, fmt.Sprintf("quick_reply: %s", pick(payloads)))
				if rng.IntN(2) == 0 {
					match = append(match, fmt.Sprintf("text: %q", phrase()))
				}
			case 4:
				match = append(match, `regex: '(?i)(?P<w>`+strings.ToLower(pick(words))+`)'`)
			case 5:
				match = append(match, "event: [pass_thread_control, request_thread_control]")
			case 6:
				match = append(match, "standby: true", fmt.Sprintf("contains: %q", pick(words)))
			}
			if len(match) > 0 {
				fmt.Fprintf(&b, "    match: {%s}\n", strings.Join(match, ", "))
			}
			if rng.IntN(5) == 0 {
				b.WriteString("    when: 'hour(now(), \"UTC\") >= 12'\n")
			}
			if rng.IntN(3) == 0 {
				b.WriteString("    continue: true\n")
			}
			fmt.Fprintf(&b, "    do: [reply: \"r%d {{ .Groups.w }}\"]\n", i)
		}
		f := mustParse(t, b.String())
		for e := 0; e < 25; e++ {
			var ev *engine.Event
			switch rng.IntN(4) {
			case 0, 1:
				ev = message(strings.ToUpper(phrase()) + "?")
				if rng.IntN(3) == 0 {
					ev.QuickReply, ev.HasQuickReply = pick(payloads), true
				}
				ev.Standby = rng.IntN(4) == 0
			case 2:
				ev = &engine.Event{Kind: engine.KindPostback, Payload: pick(payloads)}
			case 3:
				ev = &engine.Event{Kind: engine.Kinds[2+rng.IntN(3)]}
			}
			in := engine.Input{Event: ev, Now: time.Unix(int64(rng.IntN(1e9)), 0)}
			a, x := f.Set.Evaluate(in), f.Set.Explain(in)
			if !reflect.DeepEqual(fired(a), fired(x)) {
				t.Fatalf("iteration %d, event %+v:\nEvaluate %q\nExplain  %q\nrules:\n%s", iter, ev, fired(a), fired(x), b.String())
			}
			// Explain's trace ends at the last rule that fired without continue.
			if len(x.Fired) > 0 && !x.Fired[len(x.Fired)-1].Rule.Continue {
				last := x.Trace[len(x.Trace)-1]
				if !last.Fired || last.Rule != x.Fired[len(x.Fired)-1].Rule.Name {
					t.Fatalf("trace ends with %+v", last)
				}
			}
		}
	}
}
