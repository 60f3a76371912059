package actions

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/messenger"
)

func TestDecodeReply(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString("    - {title: t, payload: p}\n")
		}
		return b.String()
	}
	runDecodeCases(t, []decodeCase{
		{name: "short form", src: `reply: "Connecting you with an agent."`},
		{name: "short form template", src: `reply: "You're back with the {{ .Vars.brand }} bot."`},
		{name: "text only", src: `reply: {text: hi}`},
		{name: "quick replies", src: `
reply:
  text: "Order {{ .Groups.order }}: want a person to check it?"
  quick_replies:
    - {title: "Yes please", payload: AGENT}
    - {title: "No thanks", payload: NO_AGENT}
`},
		{name: "numeric payload", src: `reply: {text: hi, quick_replies: [{title: "1", payload: 12}]}`},
		{name: "thirteen quick replies", src: "reply:\n  text: hi\n  quick_replies:\n" + many(13)},
		{name: "buttons", src: `
reply:
  text: How can we help?
  buttons:
    - {title: Talk to a person, payload: TALK_TO_AGENT}
    - {title: Opening hours, url: "https://example.com/hours"}
    - {title: Status, url: "http://status.example.com"}
`},
		{name: "buttons and quick replies", src: `
reply:
  text: How can we help?
  buttons: [{title: Agent, payload: AGENT}]
  quick_replies: [{title: Later, payload: LATER}]
`},
		{name: "button text at its limit", src: `reply: {text: "` + strings.Repeat("é", 640) + `", buttons: [{title: a, payload: b}]}`},
		{name: "empty text", src: `reply: ""`, want: []string{"1:8: reply: the text is empty"}},
		{name: "null", src: `reply:`, want: []string{"1:7: reply: expected a string, got nothing (null)"}},
		{name: "list", src: `reply: [hi]`, want: []string{"1:8: reply: expected a text, or a mapping with text (or image, video, audio, file, cards), quick_replies and buttons, got a list"}},
		{name: "number", src: `reply: 3`, want: []string{"1:8: reply: expected a string, got a number (put it in quotes)"}},
		{name: "short form too long", src: `reply: "` + strings.Repeat("x", 2001) + `"`, want: []string{"1:8: reply: the text is 2001 characters long, the limit is 2000"}},
		{name: "misspelt text", src: `reply: {txt: hi}`, want: []string{
			"1:8: reply: text is required (or image, video, audio, file or cards)",
			`1:9: reply: unknown key "txt", expected one of: text, quick_replies, buttons, image, video, audio, file, cards`,
		}},
		{name: "empty mapping text", src: `reply: {text: ""}`, want: []string{"1:15: reply.text: the text is empty"}},
		{name: "button text over its limit", src: `reply: {text: "` + strings.Repeat("x", 641) + `", buttons: [{title: a, payload: b}]}`, want: []string{
			"1:15: reply.text: the text is 641 characters long, the limit is 640",
		}},
		{name: "every mistake at once", src: `
reply:
  text: "Hi {{ .Txt }}"
  quick_replies:
    - {title: "A title that is far too long", payload: A}
    - {title: B}
    - {payload: C, image: x}
    - just text
    - {title: 7, payload: ""}
  buttons:
    - {title: Both, payload: P, url: "https://example.com"}
    - {title: Link, url: "ftp://example.com"}
    - {url: "https://example.com"}
`, want: []string{
			"3:16: reply.text: unknown field .Txt, a template can read " + fieldList,
			"5:15: reply.quick_replies[0].title: 28 characters long, the limit is 20",
			"6:7: reply.quick_replies[1]: payload is required",
			"7:7: reply.quick_replies[2]: title is required",
			`7:20: reply.quick_replies[2]: unknown key "image", expected one of: title, payload`,
			"8:7: reply.quick_replies[3]: expected a mapping, got a string",
			"9:15: reply.quick_replies[4].title: expected a string, got a number (put it in quotes)",
			"9:27: reply.quick_replies[4].payload: is empty",
			"11:33: reply.buttons[0]: give either payload (a postback button) or url (a link), not both",
			`12:26: reply.buttons[1].url: expected an http:// or https:// address, got "ftp://example.com"`,
			"13:7: reply.buttons[2]: title is required",
		}},
		{name: "too many", src: "reply:\n  text: hi\n  quick_replies:\n" + many(14) + "  buttons:\n" + strings.Repeat("    - {title: t, payload: p}\n", 4), want: []string{
			"4:5: reply.quick_replies: 14 quick replies, at most 13 are allowed",
			"19:5: reply.buttons: 4 buttons, at most 3 are allowed",
		}},
		{name: "empty lists", src: `reply: {text: hi, quick_replies: [], buttons: []}`, want: []string{
			"1:34: reply.quick_replies: the list is empty, give at least one or remove the key",
			"1:47: reply.buttons: the list is empty, give at least one or remove the key",
		}},
		{name: "not lists", src: `reply: {text: hi, quick_replies: {title: a}, buttons: x}`, want: []string{
			"1:34: reply.quick_replies: expected a list of quick replies, got a mapping",
			"1:55: reply.buttons: expected a list of buttons, got a string",
		}},
		{name: "button without target", src: `reply: {text: hi, buttons: [{title: a}]}`, want: []string{
			"1:29: reply.buttons[0]: give payload (a postback button) or url (a link)",
		}},
		{name: "payload too long", src: `reply: {text: hi, quick_replies: [{title: a, payload: "` + strings.Repeat("p", 1001) + `"}]}`, want: []string{
			"1:55: reply.quick_replies[0].payload: 1001 characters long, the limit is 1000",
		}},
	})
}

func TestPlanReply(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		d       *Data
		want    map[string]any
		wantMsg *messenger.Message
		wantErr string
	}{
		{
			name:    "short form",
			src:     `reply: "Connecting you with an agent."`,
			d:       &Data{Text: "chat with agent"},
			want:    map[string]any{"text": "Connecting you with an agent."},
			wantMsg: &messenger.Message{Text: "Connecting you with an agent."},
		},
		{
			name:    "template",
			src:     `reply: "You're back with the {{ .Vars.brand }} bot."`,
			d:       &Data{Vars: map[string]any{"brand": "Acme"}},
			want:    map[string]any{"text": "You're back with the Acme bot."},
			wantMsg: &messenger.Message{Text: "You're back with the Acme bot."},
		},
		{
			name: "quick replies",
			src:  `reply: {text: "Order {{ .Groups.order }}?", quick_replies: [{title: "Yes please", payload: AGENT}, {title: "No", payload: 12}]}`,
			d:    &Data{Groups: map[string]string{"order": "1234"}},
			want: map[string]any{
				"text": "Order 1234?",
				"quick_replies": []any{
					map[string]any{"title": "Yes please", "payload": "AGENT"},
					map[string]any{"title": "No", "payload": "12"},
				},
			},
			wantMsg: &messenger.Message{Text: "Order 1234?", QuickReplies: []messenger.QuickReply{
				{ContentType: "text", Title: "Yes please", Payload: "AGENT"},
				{ContentType: "text", Title: "No", Payload: "12"},
			}},
		},
		{
			name: "buttons and quick replies",
			src:  `reply: {text: "How can we help?", buttons: [{title: Agent, payload: AGENT}, {title: Hours, url: "https://example.com/h"}], quick_replies: [{title: Later, payload: LATER}]}`,
			d:    &Data{},
			want: map[string]any{
				"text":          "How can we help?",
				"buttons":       []any{map[string]any{"title": "Agent", "payload": "AGENT"}, map[string]any{"title": "Hours", "url": "https://example.com/h"}},
				"quick_replies": []any{map[string]any{"title": "Later", "payload": "LATER"}},
			},
			wantMsg: &messenger.Message{
				QuickReplies: []messenger.QuickReply{{ContentType: "text", Title: "Later", Payload: "LATER"}},
				Attachment: &messenger.Attachment{Type: "template", Payload: messenger.TemplatePayload{
					TemplateType: "button",
					Text:         "How can we help?",
					Buttons: []messenger.Button{
						{Type: "postback", Title: "Agent", Payload: "AGENT"},
						{Type: "web_url", Title: "Hours", URL: "https://example.com/h"},
					},
				}},
			},
		},
		{
			name:    "rendered empty",
			src:     `reply: "{{ .Groups.order }}"`,
			d:       &Data{},
			wantErr: "reply: the text rendered empty",
		},
		{
			name:    "rendered over the button text limit",
			src:     `reply: {text: "{{ .Text }}", buttons: [{title: a, payload: b}]}`,
			d:       &Data{Text: strings.Repeat("x", 641)},
			wantErr: "reply.text: the rendered text is 641 characters long, the limit is 640",
		},
		{
			name:    "rendered over the text limit",
			src:     `reply: "{{ .Text }}{{ .Text }}"`,
			d:       &Data{Text: strings.Repeat("x", 1001)},
			wantErr: "reply: the rendered text is 2002 characters long, the limit is 2000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := planCase(t, tt.src, tt.d, tt.wantErr)
			if !ok {
				return
			}
			if s.Kind() != "reply" {
				t.Errorf("Kind() = %q", s.Kind())
			}
			if !reflect.DeepEqual(s.Fields(), tt.want) {
				t.Errorf("Fields():\n got %v\nwant %v", s.Fields(), tt.want)
			}
			calls, err := execute(t, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := []call{{Method: "SendMessage", To: testTo, Msg: tt.wantMsg}}
			if !reflect.DeepEqual(calls, want) {
				t.Fatalf("calls:\n got %+v\nwant %+v", calls, want)
			}
		})
	}
}

func TestExecuteReplyError(t *testing.T) {
	for _, src := range []string{`reply: hi`, `reply: {text: hi, quick_replies: [{title: a, payload: b}]}`} {
		s, err := plan(t, src, &Data{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = execute(t, s, map[string]error{"SendMessage": errGraph})
		if !errors.Is(err, errGraph) {
			t.Fatalf("%s: error %v does not wrap the platform's", src, err)
		}
		mustContain(t, err, "reply: ")
	}
}
