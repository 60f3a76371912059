package rules

import (
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/engine"
)

func TestPostbackMatch(t *testing.T) {
	t.Parallel()
	pb := func(p string) *engine.Event { return &engine.Event{Kind: engine.KindPostback, Payload: p} }
	tests := []struct {
		value string
		ev    *engine.Event
		want  bool
	}{
		{`TALK_TO_AGENT`, pb("TALK_TO_AGENT"), true},
		{`TALK_TO_AGENT`, pb("talk_to_agent"), false}, // exact, not normalized
		{`TALK_TO_AGENT`, pb(" TALK_TO_AGENT"), false},
		{`[MENU, GET_STARTED]`, pb("GET_STARTED"), true},
		{`[MENU, GET_STARTED]`, pb(""), false},
		{`'{"a":1}'`, pb(`{"a":1}`), true},
		{`TALK_TO_AGENT`, &engine.Event{Kind: engine.KindMessage, Text: "TALK_TO_AGENT", QuickReply: "TALK_TO_AGENT", HasQuickReply: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.value+" vs "+tt.ev.Payload, func(t *testing.T) {
			c := compileMatch(t, "postback", tt.value)
			if got := c.Holds(subject(tt.ev)); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
	ic, ok := compileMatch(t, "postback", `[A, B, A]`).(engine.IndexedCondition)
	if !ok || ic.IndexField() != engine.FieldPostback || !reflect.DeepEqual(ic.IndexKeys(), []string{"A", "B"}) {
		t.Errorf("postback index: %v %v", ok, ic)
	}
}

func TestPostbackErrors(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]string{
		`""`:     `match.postback: the payload is empty`,
		`12`:     `match.postback: expected a string or a list of strings, got a number`,
		`[a, ~]`: `match.postback: expected a string, got nothing (null)`,
	} {
		got := compileMatchErrors(t, "postback", value)
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("%s: errors = %q, want %q", value, got, want)
		}
	}
}
