package rules

import (
	"reflect"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
)

// TestExampleBehaviour checks that the examples do what their comments say.
func TestExampleBehaviour(t *testing.T) {
	t.Parallel()
	monday10 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC) // 11:00 in Paris
	sunday := time.Date(2026, 1, 4, 21, 0, 0, 0, time.UTC)
	seen := "mark-seen: sender_action action=mark_seen"
	tests := []struct {
		file string
		ev   *engine.Event
		at   time.Time
		want []string
	}{
		{"../examples/rules.yaml", message("hello"), monday10, []string{"echo: echo text=[bot] hello"}},
		{"../examples/rules.yaml", message("  Chat with AGENT! "), monday10, []string{
			"chat-with-agent: reply text=Connecting you with an agent.",
			"chat-with-agent: pass_thread_control app_id=200646160103180 metadata= target=zendesk",
		}},
		{"../examples/rules.yaml", &engine.Event{Kind: engine.KindPassThreadControl}, monday10, []string{
			`back-from-agent: reply text=You're back with the bot. Write "chat with agent" to talk to a person again.`,
		}},
		{"../examples/support-desk.yaml", message("Agent please!"), monday10, []string{
			seen,
			"agent-open: reply text=Connecting you with an agent, one moment.",
			"agent-open: pass_thread_control app_id=200646160103180 metadata=The customer wrote: Agent please! target=zendesk",
		}},
		{"../examples/support-desk.yaml", message("agent please"), sunday, []string{
			seen,
			"agent-closed: reply text=Our team answers Monday to Friday, 9:00 to 18:00 (Paris time). Leave your question here and we'll come back to you.",
			"agent-closed: pass_thread_control app_id=263902037430900 metadata= target=page_inbox",
		}},
		{"../examples/support-desk.yaml", message("Order #123456 is late"), monday10, []string{
			seen,
			"order-number: sender_action action=typing_on",
			"order-number: reply quick_replies=[map[payload:ORDER_AGENT title:Yes please] map[payload:ORDER_OK title:No thanks]] text=Order 123456: would you like a person to check it?",
		}},
		{"../examples/support-desk.yaml", &engine.Event{Kind: engine.KindMessage, Attachments: []string{"image", "sticker"}}, monday10, []string{
			seen, "sticker: reply text=👍",
		}},
		{"../examples/support-desk.yaml", &engine.Event{Kind: engine.KindMessage, Text: "back to bot please", Standby: true}, monday10, []string{
			"back-to-bot: take_thread_control metadata=The customer asked for the bot",
		}},
		{"../examples/support-desk.yaml", message("hi"), monday10, []string{seen, "echo: echo text=[Acme bot] hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.ev.Text, func(t *testing.T) {
			f, err := Load(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got := fired(f.Set.Evaluate(engine.Input{Event: tt.ev, Now: tt.at}))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}
