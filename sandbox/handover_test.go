package sandbox

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/fakeclock"
)

// The handover settings (handover:, pages:) played against the real
// gateway and the emulator, with one clock for both.

const sandboxHandoverRules = `version: 1
apps:
  zendesk: 200646160103180
  page_inbox: 263902037430900
handover:
  pause_on_human: 30m
  return_after_idle: 2h
  on_request: %s
  dialect: %s
rules:
  - name: chat-with-agent
    match: {text: chat with agent}
    do:
      - reply: "Connecting you with an agent."
      - pass_thread_control:
          target: zendesk
          metadata: "asked: {{ .Transcript | join \" / \" }}"
  - name: bot-keyword
    match: {standby: true, text: bot}
    paused: any
    do:
      - take_thread_control: {metadata: "the customer asked for the bot"}
  - name: welcome-back
    match: {event: [returned, take_thread_control]}
    do: [reply: "The bot is back."]
  - name: echo
    do: [echo: "[bot] "]
`

func handoverRules(policy, dialect string) []byte {
	return []byte(strings.NewReplacer("on_request: %s", "on_request: "+policy, "dialect: %s", "dialect: "+dialect).Replace(sandboxHandoverRules))
}

func reportIs(user string, match func(*ReportLog) bool) func(State) bool {
	return func(s State) bool { return report(s, user, match) != nil }
}

func TestSandboxInboxReplyPausesTheBot(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{rules: handoverRules("rules", "legacy")})
	const user = "3001"
	h.say(user, "hi")
	h.waitFor("the echo", func(s State) bool { return said(s, user, "bot", "[bot] hi") })

	// Staff answer from the Page Inbox: it takes the thread, and the echo
	// of the person's message pauses the bot for this user.
	h.agent("page_inbox", "messages", map[string]string{"user": user, "text": "Hi, Anna here"})
	h.waitFor("the inbox owns the thread", ownerIs(user, "page_inbox"))
	h.say(user, "hello?")
	s := h.waitFor("the paused report", reportIs(user, func(r *ReportLog) bool { return r.Text == "hello?" }))
	if rep := report(s, user, func(r *ReportLog) bool { return r.Text == "hello?" }); !rep.Paused || len(rep.Rules) != 0 || !rep.Standby {
		t.Fatalf("report of a standby message while paused = %+v", rep)
	}

	// "bot" still works (paused: any): the bot takes the thread back, which
	// ends the pause.
	h.say(user, "bot")
	h.waitFor("the bot owns the thread again", ownerIs(user, "bot"))
	h.say(user, "thanks")
	h.waitFor("the echo after the pause", func(s State) bool { return said(s, user, "bot", "[bot] thanks") })
}

func TestSandboxIdleThreadComesBack(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(fakeclock.Start)
	h := newHarness(t, harnessOptions{rules: handoverRules("rules", "legacy"), now: clock.Now})
	const user = "3002"
	h.say(user, "chat with agent")
	h.waitFor("the handover", func(s State) bool {
		return ownerIs(user, "zendesk")(s) && report(s, user, func(r *ReportLog) bool { return slices.Contains(r.Rules, "chat-with-agent") }) != nil
	})
	clock.Advance(119 * time.Minute)
	h.gw.CheckReturns()
	clock.Advance(time.Minute)
	h.gw.CheckReturns()
	s := h.waitFor("the bot back", func(s State) bool {
		return ownerIs(user, "bot")(s) && said(s, user, "bot", "The bot is back.") &&
			report(s, user, func(r *ReportLog) bool { return r.Kind == "returned" }) != nil
	})
	rep := report(s, user, func(r *ReportLog) bool { return r.Kind == "returned" })
	if rep == nil || !slices.Equal(rep.Rules, []string{"welcome-back"}) || rep.Owner != "self" {
		t.Fatalf("returned report = %+v", rep)
	}
	agentTold := false
	for _, l := range s.Log {
		if l.Kind == LogAgent && l.User == user && strings.Contains(l.Summary, "zendesk received take_thread_control") && strings.Contains(l.Summary, "2h") {
			agentTold = true
		}
	}
	if !agentTold {
		t.Errorf("zendesk was not told why it lost the thread:\n%s", dumpState(s))
	}
	// Once only.
	clock.Advance(5 * time.Hour)
	h.gw.CheckReturns()
	h.say(user, "sentinel")
	s = h.waitFor("the sentinel's echo", func(s State) bool { return said(s, user, "bot", "[bot] sentinel") })
	n := 0
	for _, it := range threadOf(s, user).Items {
		if it.Text == "The bot is back." {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the bot said it is back %d times, want once", n)
	}
}

func TestSandboxRequestPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy    string
		wantOwner string
	}{
		{"grant", "page_inbox"},
		{"ignore", "bot"},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			h := newHarness(t, harnessOptions{rules: handoverRules(tt.policy, "legacy")})
			const user = "3003"
			h.say(user, "hi")
			h.waitFor("the echo", func(s State) bool { return said(s, user, "bot", "[bot] hi") })
			h.agent("page_inbox", "request", map[string]string{"user": user, "metadata": "moved to the inbox"})
			s := h.waitFor("the request handled", reportIs(user, func(r *ReportLog) bool { return r.Kind == "request_thread_control" }))
			if !ownerIs(user, tt.wantOwner)(s) {
				t.Errorf("owner = %s, want %s", threadOf(s, user).Owner, tt.wantOwner)
			}
		})
	}
}

func TestSandboxRoutingDialect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{rules: handoverRules("rules", "routing")})
	const user = "3004"
	h.say(user, "hello")
	h.say(user, "chat with agent")
	s := h.waitFor("the handover", func(s State) bool {
		return ownerIs(user, "zendesk")(s) && said(s, user, "bot", "Connecting you with an agent.")
	})
	passEdge, carried := 0, 0
	for _, l := range s.Log {
		if l.Kind != LogGraph || l.User != user {
			continue
		}
		if strings.HasSuffix(l.Graph.Path, "/pass_thread_control") {
			passEdge++
		}
		if strings.HasSuffix(l.Graph.Path, "/messages") && strings.Contains(string(l.Graph.Params), `"thread_control"`) {
			carried++
		}
	}
	if passEdge != 0 || carried != 1 {
		t.Errorf("pass_thread_control calls %d, messages carrying thread_control %d; want 0 and 1", passEdge, carried)
	}
	found := false
	for _, it := range threadOf(s, user).Items {
		if it.From == "system" && strings.Contains(it.Text, "passed the thread to zendesk") && strings.Contains(it.Text, "asked: hello / chat with agent") {
			found = true
		}
	}
	if !found {
		t.Errorf("the pass note lacks the transcript metadata:\n%s", dumpState(s))
	}
}
