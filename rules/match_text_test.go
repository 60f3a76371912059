package rules

import (
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/engine"
)

func TestTextMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		ev    *engine.Event
		want  bool
	}{
		{`chat with agent`, message("  Chat with AGENT! "), true},
		{`"  Chat with AGENT! "`, message("chat with agent"), true},
		{`chat with agent`, message("chat   with\tagent"), true},
		{`chat with agent`, message("chat with agent please"), false},
		{`chat with agent`, message("chat with an agent"), false},
		{`[chat with agent, talk to a human]`, message("Talk to a human?"), true},
		{`[chat with agent, talk to a human]`, message("talk to a bot"), false},
		{`straße`, message("STRASSE"), true},
		{`STRASSE`, message("Straße!"), true},
		{`ΟΔΟΣ`, message("οδος"), true},
		{`café`, message("CAFE\u0301"), true},
		{`agent`, message("reagents"), false},
		{`agent`, message(""), false},
		// Text rules hold for messages only.
		{`agent`, &engine.Event{Kind: engine.KindPostback, Text: "agent", Payload: "agent"}, false},
		// Eleven phrases: looked up in a map rather than a list.
		{`[a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, "Chat With Agent"]`, message("chat with agent"), true},
		{`[a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, "Chat With Agent"]`, message("a11"), false},
	}
	for _, tt := range tests {
		t.Run(tt.value+" vs "+tt.ev.Text, func(t *testing.T) {
			c := compileMatch(t, "text", tt.value)
			if got := c.Holds(subject(tt.ev)); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTextIndexed(t *testing.T) {
	t.Parallel()
	c := compileMatch(t, "text", `["  Chat with AGENT! ", talk to a human, chat with agent]`)
	ic, ok := c.(engine.IndexedCondition)
	if !ok {
		t.Fatal("text is not an engine.IndexedCondition")
	}
	if ic.IndexField() != engine.FieldText {
		t.Errorf("IndexField = %v", ic.IndexField())
	}
	// Keys are normalized and without repeats, so the engine finds the rule
	// under the normalized text of a message.
	if want := []string{"chat with agent", "talk to a human"}; !reflect.DeepEqual(ic.IndexKeys(), want) {
		t.Errorf("IndexKeys = %q, want %q", ic.IndexKeys(), want)
	}
	if d := c.Describe(); !strings.Contains(d, `"chat with agent" or "talk to a human"`) {
		t.Errorf("Describe = %q", d)
	}
}

func TestTextErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  string
	}{
		{`"!!!"`, `match.text: "!!!" has no words once white space and punctuation are trimmed`},
		{`[]`, `match.text: the list is empty`},
		{`{a: b}`, `match.text: expected a string or a list of strings, got a mapping`},
		{`[hi, 3]`, `match.text: expected a string, got a number (put it in quotes)`},
		{`~`, `match.text: expected a string or a list of strings, got nothing (null)`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got := compileMatchErrors(t, "text", tt.value)
			if !strings.Contains(strings.Join(got, "\n"), tt.want) {
				t.Errorf("errors = %q, want one containing %q", got, tt.want)
			}
		})
	}
}
