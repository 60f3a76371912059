package rules

import (
	"strings"
	"testing"

	"github.com/threadgate/threadgate/engine"
)

func TestContainsMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		ev    *engine.Event
		want  bool
	}{
		{`agent`, message("An AGENT please!"), true},
		{`agent`, message("reagents"), false},
		{`agent`, message("agents"), false},
		{`agent`, message("agent"), true},
		{`agent`, message("agent, now"), true},
		{`money back`, message("I want my MONEY   back."), true},
		{`money back`, message("money backup"), false},
		{`[refund, money back]`, message("a refund?"), true},
		{`[refund, money back]`, message("refunds"), false},
		{`straße`, message("Die STRASSE"), true},
		{`"Agent!"`, message("my agent is"), true}, // the phrase is normalized too
		{`agent`, &engine.Event{Kind: engine.KindPostback, Text: "agent"}, false},
		{`agent`, &engine.Event{Kind: engine.KindPassThreadControl, Metadata: "agent"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.value+" in "+tt.ev.Text, func(t *testing.T) {
			c := compileMatch(t, "contains", tt.value)
			if _, indexed := c.(engine.IndexedCondition); indexed {
				t.Errorf("contains must not be indexed: it does not need the whole text to be equal")
			}
			if got := c.Holds(subject(tt.ev)); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestContainsErrors(t *testing.T) {
	t.Parallel()
	got := compileMatchErrors(t, "contains", `["", "?"]`)
	if len(got) != 2 || !strings.Contains(got[1], `"?" has no words`) {
		t.Errorf("errors = %q", got)
	}
}
