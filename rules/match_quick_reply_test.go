package rules

import (
	"reflect"
	"testing"

	"github.com/threadgate/threadgate/engine"
)

func TestQuickReplyMatch(t *testing.T) {
	t.Parallel()
	qr := func(p string) *engine.Event {
		return &engine.Event{Kind: engine.KindMessage, Text: "Yes please", QuickReply: p, HasQuickReply: true}
	}
	tests := []struct {
		name  string
		value string
		ev    *engine.Event
		want  bool
	}{
		{"equal", `AGENT`, qr("AGENT"), true},
		{"exact case", `AGENT`, qr("agent"), false},
		{"one of a list", `[AGENT, NO_AGENT]`, qr("NO_AGENT"), true},
		{"text is not the payload", `AGENT`, message("AGENT"), false},
		{"a postback is not a quick reply", `AGENT`, &engine.Event{Kind: engine.KindPostback, Payload: "AGENT"}, false},
		{"the title does not count", `Yes please`, qr("AGENT"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compileMatch(t, "quick_reply", tt.value)
			if got := c.Holds(subject(tt.ev)); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
	ic, ok := compileMatch(t, "quick_reply", `[YES, NO]`).(engine.IndexedCondition)
	if !ok || ic.IndexField() != engine.FieldQuickReply || !reflect.DeepEqual(ic.IndexKeys(), []string{"YES", "NO"}) {
		t.Errorf("quick_reply index: %v %v", ok, ic)
	}
	compileMatchErrors(t, "quick_reply", `""`)
}
