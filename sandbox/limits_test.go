package sandbox

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/actions"
)

// The emulator's limits count characters, as `threadgate check` does: a
// text of two-byte characters at a limit is accepted, one character more
// is refused.

// chars returns n two-byte characters.
func chars(n int) string { return strings.Repeat("é", n) }

func TestLimitsCountCharacters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	message := func(user, msg string) string {
		return fmt.Sprintf(`{"recipient":{"id":%q},"messaging_type":"RESPONSE","message":%s}`, user, msg)
	}
	quickReply := func(payload string) string {
		return fmt.Sprintf(`{"text":"q","quick_replies":[{"content_type":"text","title":"t","payload":%q}]}`, payload)
	}
	button := func(payload string) string {
		return fmt.Sprintf(`{"attachment":{"type":"template","payload":{"template_type":"button","text":"Pick","buttons":[{"type":"postback","title":"A","payload":%q}]}}}`, payload)
	}
	metadata := func(user, s string) string { return fmt.Sprintf(`{"recipient":{"id":%q},"metadata":%q}`, user, s) }
	pass := func(user, s string) string {
		return fmt.Sprintf(`{"recipient":{"id":%q},"target_app_id":%q,"metadata":%q}`, user, zendeskID, s)
	}
	tests := []struct {
		name   string
		path   string
		body   func(user string) string
		status int
	}{
		{"pass metadata at the limit", "/me/pass_thread_control", func(u string) string { return pass(u, chars(actions.MaxMetadataLen)) }, 200},
		{"pass metadata over it", "/me/pass_thread_control", func(u string) string { return pass(u, chars(actions.MaxMetadataLen+1)) }, 400},
		{"take metadata at the limit", "/me/take_thread_control", func(u string) string { return metadata(u, chars(actions.MaxMetadataLen)) }, 200},
		{"take metadata over it", "/me/take_thread_control", func(u string) string { return metadata(u, chars(actions.MaxMetadataLen+1)) }, 400},
		{"request metadata at the limit", "/me/request_thread_control", func(u string) string { return metadata(u, chars(actions.MaxMetadataLen)) }, 200},
		{"request metadata over it", "/me/request_thread_control", func(u string) string { return metadata(u, chars(actions.MaxMetadataLen+1)) }, 400},
		{"message metadata at the limit", "/me/messages", func(u string) string {
			return message(u, fmt.Sprintf(`{"text":"hi","metadata":%q}`, chars(actions.MaxMetadataLen)))
		}, 200},
		{"message metadata over it", "/me/messages", func(u string) string {
			return message(u, fmt.Sprintf(`{"text":"hi","metadata":%q}`, chars(actions.MaxMetadataLen+1)))
		}, 400},
		{"text at the limit", "/me/messages", func(u string) string { return message(u, fmt.Sprintf(`{"text":%q}`, chars(actions.MaxTextLen))) }, 200},
		{"quick reply payload at the limit", "/me/messages", func(u string) string { return message(u, quickReply(chars(actions.MaxPayloadLen))) }, 200},
		{"quick reply payload over it", "/me/messages", func(u string) string { return message(u, quickReply(chars(actions.MaxPayloadLen+1))) }, 400},
		{"button payload at the limit", "/me/messages", func(u string) string { return message(u, button(chars(actions.MaxPayloadLen))) }, 200},
		{"button payload over it", "/me/messages", func(u string) string { return message(u, button(chars(actions.MaxPayloadLen+1))) }, 400},
	}
	for i, tt := range tests {
		user := fmt.Sprint(2600 + i) // a thread of its own, owned by the bot
		h.say(user, "hello")
		h.waitFor("the echo to "+user, func(s State) bool { return said(s, user, "bot", "[bot] hello") })
		status, out, _ := graphCall(t, h, http.MethodPost, tt.path, signed(testToken, testSecret, time.Now()), tt.body(user))
		if code, _, _, msg := graphErr(out); status != tt.status || (status != 200 && code != 100) {
			t.Errorf("%s: HTTP %d code %d %q, want %d", tt.name, status, code, msg, tt.status)
		}
	}
}

// TestUserAPILimitsCountCharacters taps a quick reply and a button whose
// payloads are at the limit in characters but over it in bytes.
func TestUserAPILimitsCountCharacters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const user = "2650"
	tests := []struct {
		path   string
		body   map[string]string
		status int
	}{
		{"/sandbox/api/users/" + user + "/messages", map[string]string{"quick_reply": chars(actions.MaxPayloadLen), "text": "Yes"}, 200},
		{"/sandbox/api/users/" + user + "/messages", map[string]string{"quick_reply": chars(actions.MaxPayloadLen + 1), "text": "Yes"}, 400},
		{"/sandbox/api/users/" + user + "/postbacks", map[string]string{"payload": chars(actions.MaxPayloadLen), "title": chars(maxPostbackTitle)}, 200},
		{"/sandbox/api/users/" + user + "/postbacks", map[string]string{"payload": chars(actions.MaxPayloadLen + 1), "title": "A"}, 400},
		{"/sandbox/api/users/" + user + "/postbacks", map[string]string{"payload": "P", "title": chars(maxPostbackTitle + 1)}, 400},
	}
	for _, tt := range tests {
		if status, out := h.do(http.MethodPost, tt.path, tt.body); status != tt.status {
			t.Errorf("POST %s with %d-character values: HTTP %d %v, want %d", tt.path, len([]rune(tt.body["payload"]+tt.body["quick_reply"])), status, out, tt.status)
		}
	}
}

// TestCheckedMetadataIsAccepted is the case of issue 10: handover
// metadata of 600 "é" (1200 bytes) passes the rules check, so the sandbox
// must accept it too.
func TestCheckedMetadataIsAccepted(t *testing.T) {
	t.Parallel()
	rules := fmt.Sprintf(`version: 1
apps: {zendesk: %s}
rules:
  - name: agent
    match: {text: agent}
    do:
      - pass_thread_control: {target: zendesk, metadata: %q}
`, zendeskID, chars(600))
	h := newHarness(t, harnessOptions{rules: []byte(rules)}) // fails when the rules do not load
	const user = "2660"
	h.say(user, "agent")
	isMessage := func(r *ReportLog) bool { return r.Kind == "message" }
	s := h.waitFor("the gateway's report", func(s State) bool { return report(s, user, isMessage) != nil })
	if th := threadOf(s, user); th.Owner != "zendesk" {
		t.Errorf("owner = %s, want zendesk", th.Owner)
	}
	for _, a := range report(s, user, isMessage).Actions {
		if a.Error != "" {
			t.Errorf("action %s failed: %s", a.Kind, a.Error)
		}
	}
}
