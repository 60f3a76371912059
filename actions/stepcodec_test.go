package actions

import (
	"context"
	"reflect"
	"testing"

	"github.com/threadgate/threadgate/messenger"
)

// Every kind's steps go through EncodeStep and DecodeStep unchanged: the
// same kind, fields and effect, and the same message sent.
func TestStepEncodingRoundTrips(t *testing.T) {
	buttons := &replyStep{msg: &messenger.Message{
		QuickReplies: []messenger.QuickReply{{ContentType: "text", Title: "Yes", Payload: "YES"}},
		Attachment: &messenger.Attachment{Type: "template", Payload: messenger.TemplatePayload{
			TemplateType: "button", Text: "Pick one",
			Buttons: []messenger.Button{{Type: "postback", Title: "A", Payload: "A"}, {Type: "web_url", Title: "Site", URL: "https://example.com"}},
		}},
	}}
	tests := []struct {
		name string
		step Step
	}{
		{"echo", newTextStep("echo", "[bot] hi")},
		{"reply", newTextStep("reply", "Hello ✓")},
		{"reply", &replyStep{msg: &messenger.Message{Text: "Pick", QuickReplies: []messenger.QuickReply{{ContentType: "text", Title: "A", Payload: "1"}}}}},
		{"reply", buttons},
		{"pass_thread_control", PassThreadControl("zendesk", "200646160103180", "wants a human")},
		{"pass_thread_control", PassThreadControl("inbox", "263902037430900", "")},
		{"take_thread_control", TakeThreadControl("back")},
		{"request_thread_control", &controlStep{kind: requestThreadControl, metadata: "please"}},
		{"release_thread_control", &controlStep{kind: releaseThreadControl}},
		{"sender_action", senderAction(messenger.TypingOn)},
		{"sender_action", senderAction(messenger.MarkSeen)},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := EncodeStep(tt.step)
			if err != nil {
				t.Fatal(err)
			}
			if enc.Kind != tt.name {
				t.Fatalf("kind %q, want %q", enc.Kind, tt.name)
			}
			got, err := DecodeStep(enc)
			if err != nil {
				t.Fatalf("DecodeStep(%s): %v", enc.Data, err)
			}
			if got.Kind() != tt.step.Kind() || !reflect.DeepEqual(got.Fields(), tt.step.Fields()) || got.Effect() != tt.step.Effect() {
				t.Errorf("round trip of %s: got %s %v %+v, want %s %v %+v", enc.Data,
					got.Kind(), got.Fields(), got.Effect(), tt.step.Kind(), tt.step.Fields(), tt.step.Effect())
			}
			// The decoded step makes the same Platform calls.
			to := messenger.Recipient{PageID: "p", UserID: "u"}
			var want, have recorder
			if err := tt.step.Execute(context.Background(), &want, to); err != nil {
				t.Fatal(err)
			}
			if err := got.Execute(context.Background(), &have, to); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(have.calls, want.calls) {
				t.Errorf("decoded step calls %+v, want %+v", have.calls, want.calls)
			}
		})
		covered[tt.name] = true
	}
	for _, s := range Specs() {
		if !covered[s.Name] {
			t.Errorf("kind %s has no round-trip case", s.Name)
		}
		if s.DecodeStep == nil {
			t.Errorf("kind %s has no DecodeStep", s.Name)
		}
	}
}

func TestDecodeStepRefusesBadInput(t *testing.T) {
	tests := []EncodedStep{
		{Kind: "nope", Data: []byte(`{}`)},
		{Kind: "reply", Data: []byte(`{"text":""}`)},
		{Kind: "echo", Data: []byte(`[`)},
		{Kind: "sender_action", Data: []byte(`{"action":"dance"}`)},
		{Kind: "release_thread_control", Data: []byte(`{"metadata":"x"}`)},
	}
	for _, e := range tests {
		if s, err := DecodeStep(e); err == nil {
			t.Errorf("DecodeStep(%s %s) = %v, want an error", e.Kind, e.Data, s)
		}
	}
}
