package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/messenger"
)

// The seed's three cases, played against the real gateway running
// examples/rules.yaml.

func TestSeedEcho(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if ch := h.say("2401", "hello"); ch != channelMessaging {
		t.Fatalf("a new user's message went on %q, want messaging", ch)
	}
	isHello := func(r *ReportLog) bool { return r.Kind == "message" && r.Text == "hello" }
	s := h.waitFor("the bot's echo", func(s State) bool {
		return said(s, "2401", "bot", "[bot] hello") && report(s, "2401", isHello) != nil
	})
	rep := report(s, "2401", isHello)
	if rep == nil || !slices.Equal(rep.Rules, []string{"echo"}) {
		t.Fatalf("report = %+v, want rule echo", rep)
	}
	if len(rep.Trace) == 0 {
		t.Errorf("the report has no trace: the sandbox gateway runs with Explain")
	}
	// The bot's own send comes back as an echo from its app, on messaging.
	s = h.waitFor("the echo webhook", func(s State) bool { return len(webhooks(s, "2401", "echo")) == 1 })
	ev, standby := decodeEvent(t, webhooks(s, "2401", "echo")[0].Body)
	if standby || !ev.Message.IsEcho || ev.Message.AppID.String() != h.emu.BotAppID() || ev.Message.Text != "[bot] hello" {
		t.Errorf("echo = %+v (standby %v), want the bot's echo on messaging", ev.Message, standby)
	}
	if ev.Sender.ID.String() != h.emu.PageID() || ev.Recipient.ID.String() != "2401" {
		t.Errorf("echo goes from %s to %s, want from the Page to the user", ev.Sender.ID, ev.Recipient.ID)
	}
}

// handOver plays "chat with agent" and waits until the gateway has handled
// it completely.
func handOver(t *testing.T, h *harness, user string) {
	t.Helper()
	h.say(user, "chat with agent")
	h.waitFor("the handover to zendesk", func(s State) bool {
		return ownerIs(user, "zendesk")(s) && said(s, user, "bot", "Connecting you with an agent.") &&
			report(s, user, func(r *ReportLog) bool { return slices.Contains(r.Rules, "chat-with-agent") }) != nil
	})
}

func TestSeedHandover(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const user = "2402"
	handOver(t, h, user)
	to := messenger.Recipient{PageID: h.emu.PageID(), UserID: user}
	owner, err := h.client.ThreadOwner(context.Background(), to)
	if err != nil || owner != zendeskID {
		t.Fatalf("thread_owner = %q, %v; want %s", owner, err, zendeskID)
	}

	if ch := h.say(user, "are you there?"); ch != channelStandby {
		t.Fatalf("a message while zendesk owns the thread went on %q, want standby", ch)
	}
	s := h.waitFor("the gateway's report on the standby message", func(s State) bool {
		return report(s, user, func(r *ReportLog) bool { return r.Standby && r.Text == "are you there?" }) != nil
	})
	rep := report(s, user, func(r *ReportLog) bool { return r.Standby && r.Text == "are you there?" })
	if len(rep.Rules) != 0 || len(rep.Actions) != 0 {
		t.Errorf("a rule fired on standby: %+v", rep)
	}
	th := threadOf(s, user)
	if last := th.Items[len(th.Items)-1]; last.From != "user" || last.Text != "are you there?" {
		t.Errorf("the bot answered on standby: last item %+v", last)
	}

	err = h.client.SendMessage(context.Background(), to, &messenger.Message{Text: "me again"})
	if !messenger.IsNotThreadOwner(err) {
		t.Fatalf("a bot send while zendesk owns the thread: %v, want 10/2018300", err)
	}
	var ge *messenger.GraphError
	if !errors.As(err, &ge) || ge.Code != 10 || ge.Subcode != 2018300 || ge.HTTPStatus != 400 || ge.Type != "OAuthException" || ge.FBTraceID == "" {
		t.Errorf("graph error = %+v", ge)
	}
}

func TestSeedAgentDone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const user = "2403"
	handOver(t, h, user)

	h.agent("zendesk", "messages", map[string]string{"user": user, "text": "Hi, Anna here"})
	s := h.waitFor("the agent's echo handled", func(s State) bool {
		// The report can come before the webhook's answer is logged.
		return report(s, user, func(r *ReportLog) bool { return r.Kind == "echo" && r.Standby }) != nil &&
			len(webhooks(s, user, "echo")) >= 2
	})
	if !said(s, user, "agent", "Hi, Anna here") {
		t.Fatalf("the agent's reply is not in the conversation")
	}
	ev, standby := decodeEvent(t, webhooks(s, user, "echo")[1].Body)
	if !standby || ev.Message.AppID.String() != zendeskID || ev.Message.Text != "Hi, Anna here" {
		t.Errorf("agent echo = %+v (standby %v), want zendesk's echo on standby", ev.Message, standby)
	}

	h.agent("zendesk", "done", map[string]string{"user": user, "metadata": "resolved"})
	isBack := func(r *ReportLog) bool { return r.Kind == "pass_thread_control" }
	s = h.waitFor("the bot's welcome back", func(s State) bool {
		return ownerIs(user, "bot")(s) && report(s, user, isBack) != nil &&
			said(s, user, "bot", `You're back with the bot. Write "chat with agent" to talk to a person again.`)
	})
	passes := webhooks(s, user, "pass_thread_control")
	if len(passes) != 1 {
		t.Fatalf("got %d pass_thread_control webhooks, want 1", len(passes))
	}
	ev, standby = decodeEvent(t, passes[0].Body)
	p := ev.PassThreadControl
	if standby || p.NewOwnerAppID.String() != h.emu.BotAppID() || p.PreviousOwnerAppID.String() != zendeskID || p.Metadata != "resolved" {
		t.Errorf("pass_thread_control = %+v (standby %v)", p, standby)
	}
	if rep := report(s, user, isBack); rep == nil || !slices.Equal(rep.Rules, []string{"back-from-agent"}) {
		t.Errorf("report on the hand-back = %+v, want back-from-agent", rep)
	}

	if ch := h.say(user, "hello again"); ch != channelMessaging {
		t.Fatalf("after the hand-back the user's message went on %q", ch)
	}
	h.waitFor("the bot answering again", func(s State) bool { return said(s, user, "bot", "[bot] hello again") })
}

const choicesRules = `version: 1
apps:
  zendesk: 200646160103180
rules:
  - name: offer
    match: {text: help}
    do:
      - reply:
          text: "Want a person?"
          quick_replies:
            - {title: "Yes please", payload: AGENT}
            - {title: "No thanks", payload: NO_AGENT}
  - name: menu
    match: {text: menu}
    do:
      - reply:
          text: "Pick one"
          buttons:
            - {title: "Talk to a person", payload: TALK_TO_AGENT}
            - {title: "Help center", url: "https://help.example"}
  - name: agent-quick-reply
    match: {quick_reply: AGENT}
    do:
      - reply: "Passing you on."
      - pass_thread_control: zendesk
  - name: agent-button
    match: {postback: TALK_TO_AGENT}
    do:
      - reply: "A person will answer."
      - pass_thread_control: zendesk
  - name: standby-postback
    match: {event: postback, standby: true}
    do:
      - sender_action: typing_on
  - name: taken
    match: {event: take_thread_control}
    do:
      - sender_action: mark_seen
  - name: asked
    match: {event: request_thread_control}
    do:
      - pass_thread_control: zendesk
  - name: echo
    do:
      - echo: "[bot] "
`

func TestQuickRepliesAndButtons(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{rules: []byte(choicesRules)})
	const user = "2404"
	h.say(user, "help")
	s := h.waitFor("the quick replies", func(s State) bool { return said(s, user, "bot", "Want a person?") })
	th := threadOf(s, user)
	offered := th.Items[len(th.Items)-1].QuickReplies
	if len(offered) != 2 || offered[0] != (Choice{Type: "text", Title: "Yes please", Payload: "AGENT"}) {
		t.Fatalf("quick replies = %+v", offered)
	}
	// A tap with only the payload: the emulator fills in the title as text.
	h.inject("/sandbox/api/users/"+user+"/messages", map[string]string{"quick_reply": "AGENT"})
	s = h.waitFor("the quick reply's rule", func(s State) bool { return ownerIs(user, "zendesk")(s) && said(s, user, "bot", "Passing you on.") })
	msgs := webhooks(s, user, "message")
	ev, _ := decodeEvent(t, msgs[len(msgs)-1].Body)
	if ev.Message.QuickReply == nil || ev.Message.QuickReply.Payload != "AGENT" || ev.Message.Text != "Yes please" {
		t.Errorf("quick reply message = %+v", ev.Message)
	}

	// Buttons, tapped while zendesk owns the thread: the standby copy has
	// no payload.
	h.agent("zendesk", "done", map[string]string{"user": user})
	h.waitFor("the hand-back", ownerIs(user, "bot"))
	h.say(user, "menu")
	s = h.waitFor("the buttons", func(s State) bool { return said(s, user, "bot", "Pick one") })
	th = threadOf(s, user)
	buttons := th.Items[len(th.Items)-1].Buttons
	if len(buttons) != 2 || buttons[0].Payload != "TALK_TO_AGENT" || buttons[1].URL != "https://help.example" {
		t.Fatalf("buttons = %+v", buttons)
	}
	if ch := h.inject("/sandbox/api/users/"+user+"/postbacks", map[string]string{"payload": "TALK_TO_AGENT"}); ch != channelMessaging {
		t.Fatalf("postback went on %q", ch)
	}
	s = h.waitFor("the button's rule", func(s State) bool {
		return ownerIs(user, "zendesk")(s) && said(s, user, "bot", "A person will answer.")
	})
	pbs := webhooks(s, user, "postback")
	ev, _ = decodeEvent(t, pbs[0].Body)
	if ev.Postback.Payload != "TALK_TO_AGENT" || ev.Postback.Title != "Talk to a person" || ev.Postback.MID == "" {
		t.Errorf("postback = %+v", ev.Postback)
	}
	if ch := h.inject("/sandbox/api/users/"+user+"/postbacks", map[string]string{"payload": "TALK_TO_AGENT"}); ch != channelStandby {
		t.Fatalf("postback while zendesk owns the thread went on %q", ch)
	}
	s = h.waitFor("the standby postback handled", func(s State) bool {
		return report(s, user, func(r *ReportLog) bool { return r.Kind == "postback" && r.Standby }) != nil
	})
	pbs = webhooks(s, user, "postback")
	ev, standby := decodeEvent(t, pbs[1].Body)
	if !standby || ev.Postback.Payload != "" || ev.Postback.Title != "Talk to a person" {
		t.Errorf("standby postback = %+v (standby %v), want a title and no payload", ev.Postback, standby)
	}
	// The typing indicator the standby rule tried is refused: zendesk owns
	// the thread.
	rep := report(s, user, func(r *ReportLog) bool { return r.Kind == "postback" && r.Standby })
	if len(rep.Actions) != 1 || !strings.Contains(rep.Actions[0].Error, "2018300") {
		t.Errorf("standby rule actions = %+v, want sender_action refused with 2018300", rep.Actions)
	}
}

func TestAgentTakeRequestRelease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{rules: []byte(choicesRules)})
	const user = "2405"
	h.say(user, "hi")
	h.waitFor("the echo", func(s State) bool { return said(s, user, "bot", "[bot] hi") })

	// zendesk takes the thread from the bot: the bot receives
	// take_thread_control on messaging, and its rule's mark_seen is refused.
	h.agent("zendesk", "take", map[string]string{"user": user, "metadata": "mine now"})
	s := h.waitFor("the take handled", func(s State) bool {
		return report(s, user, func(r *ReportLog) bool { return r.Kind == "take_thread_control" }) != nil
	})
	ev, standby := decodeEvent(t, webhooks(s, user, "take_thread_control")[0].Body)
	tc := ev.TakeThreadControl
	if standby || tc.PreviousOwnerAppID.String() != h.emu.BotAppID() || tc.NewOwnerAppID.String() != zendeskID || tc.Metadata != "mine now" {
		t.Errorf("take_thread_control = %+v (standby %v)", tc, standby)
	}
	if th := threadOf(s, user); th.Owner != "zendesk" {
		t.Errorf("owner after take = %s", th.Owner)
	}

	// zendesk hands back, then asks again: the bot receives
	// request_thread_control and its rule passes the thread.
	h.agent("zendesk", "done", map[string]string{"user": user})
	h.waitFor("the hand-back", ownerIs(user, "bot"))
	h.agent("zendesk", "request", map[string]string{"user": user})
	s = h.waitFor("the request honoured", func(s State) bool {
		return ownerIs(user, "zendesk")(s) && report(s, user, func(r *ReportLog) bool { return r.Kind == "request_thread_control" }) != nil
	})
	ev, _ = decodeEvent(t, webhooks(s, user, "request_thread_control")[0].Body)
	if ev.RequestThreadControl.RequestedOwnerAppID.String() != zendeskID {
		t.Errorf("request_thread_control = %+v", ev.RequestThreadControl)
	}

	// zendesk releases: the thread is idle, thread_owner says so, and the
	// next message goes to the bot on messaging.
	h.agent("zendesk", "release", map[string]string{"user": user})
	to := messenger.Recipient{PageID: h.emu.PageID(), UserID: user}
	if owner, err := h.client.ThreadOwner(context.Background(), to); err != nil || owner != "" {
		t.Fatalf("thread_owner of an idle thread = %q, %v", owner, err)
	}
	if ch := h.say(user, "anyone?"); ch != channelMessaging {
		t.Fatalf("message to an idle thread went on %q", ch)
	}
	h.waitFor("the bot answering", func(s State) bool { return ownerIs(user, "bot")(s) && said(s, user, "bot", "[bot] anyone?") })
}

func TestAgentErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const user = "2406"
	h.say(user, "hello")
	h.waitFor("the echo", func(s State) bool { return said(s, user, "bot", "[bot] hello") })
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		want   string
	}{
		{"agent not owner", "/sandbox/api/agents/zendesk/messages", map[string]string{"user": user, "text": "hi"}, http.StatusConflict, "another app is controlling"},
		{"done not owner", "/sandbox/api/agents/zendesk/done", map[string]string{"user": user}, http.StatusConflict, "not the thread owner"},
		{"unknown app", "/sandbox/api/agents/nobody/take", map[string]string{"user": user}, http.StatusNotFound, "no app nobody"},
		{"unknown action", "/sandbox/api/agents/zendesk/dance", map[string]string{"user": user}, http.StatusNotFound, "no agent action"},
		{"unknown user", "/sandbox/api/agents/zendesk/take", map[string]string{"user": "999"}, http.StatusNotFound, "No matching user"},
		{"bad psid", "/sandbox/api/users/no%20spaces/messages", map[string]string{"text": "x"}, http.StatusBadRequest, "PSID"},
		{"empty message", "/sandbox/api/users/" + user + "/messages", map[string]string{}, http.StatusBadRequest, "non-empty"},
		{"postback without payload", "/sandbox/api/users/" + user + "/postbacks", map[string]string{"title": "x"}, http.StatusBadRequest, "payload"},
		{"not json", "/sandbox/api/users/" + user + "/messages", "text", http.StatusBadRequest, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := h.do(http.MethodPost, tt.path, tt.body)
			if status != tt.status || !strings.Contains(out["error"].(string), tt.want) {
				t.Errorf("HTTP %d %v, want %d and an error with %q", status, out, tt.status, tt.want)
			}
		})
	}
}

func TestPageInboxTakesWhenReplying(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const user = "2407"
	h.say(user, "hello")
	h.waitFor("the echo", func(s State) bool { return said(s, user, "bot", "[bot] hello") })
	h.agent("page_inbox", "messages", map[string]string{"user": user, "text": "Staff here"})
	s := h.waitFor("the inbox's reply handled", func(s State) bool {
		return ownerIs(user, "page_inbox")(s) && report(s, user, func(r *ReportLog) bool { return r.Kind == "echo" && r.Standby }) != nil
	})
	ev, _ := decodeEvent(t, webhooks(s, user, "take_thread_control")[0].Body)
	if ev.TakeThreadControl.NewOwnerAppID.String() != PageInboxAppID {
		t.Errorf("take = %+v", ev.TakeThreadControl)
	}
}

func TestConversationAndStateRoutes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const user = "2408"
	h.say(user, "hello")
	h.waitFor("the echo", func(s State) bool { return said(s, user, "bot", "[bot] hello") })
	status, out := h.do(http.MethodGet, "/sandbox/api/conversations/"+user, nil)
	if status != http.StatusOK || out["owner"] != "bot" || len(out["items"].([]any)) != 2 {
		t.Errorf("conversation: HTTP %d %v", status, out)
	}
	if status, _ := h.do(http.MethodGet, "/sandbox/api/conversations/404", nil); status != http.StatusNotFound {
		t.Errorf("unknown conversation: HTTP %d", status)
	}
	status, out = h.do(http.MethodGet, "/sandbox/api/state", nil)
	if status != http.StatusOK || out["bot_app_id"] != DefaultBotAppID || out["page_id"] != DefaultPageID {
		t.Fatalf("state: HTTP %d %v", status, out)
	}
	if r, _ := out["rules"].(map[string]any); r["hash"] != h.file.Hash {
		t.Errorf("state rules = %v, want the RulesInfo hook's value", out["rules"])
	}
	var apps []string
	for _, a := range out["apps"].([]any) {
		apps = append(apps, a.(map[string]any)["name"].(string))
	}
	if !slices.Equal(apps, []string{"page_inbox", "zendesk"}) {
		t.Errorf("apps = %v", apps)
	}
	// The inspector never shows the token or the proof.
	raw, _ := json.Marshal(out)
	for _, secret := range []string{testToken, "appsecret_proof", string(testSecret)} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the state shows %q", secret)
		}
	}
}
