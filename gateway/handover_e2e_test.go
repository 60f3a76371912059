package gateway_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

// The handover features end to end: a real gateway, a real Graph API
// client and the harness's fakegraph server, with a fakeclock the test
// moves.

const pageInboxID = "263902037430900"

func parseRules(t *testing.T, src string) *engine.Set {
	t.Helper()
	f, err := rules.Parse("handover.yaml", []byte(src))
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	return f.Set
}

// reports collects the gateway's reports.
type reports struct {
	mu   sync.Mutex
	list []gateway.Report
}

func (r *reports) add(rep gateway.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rep)
}

func (r *reports) all() []gateway.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Report(nil), r.list...)
}

// handled waits until n events of user have been handled and returns the
// reports of that user.
func (r *reports) handled(t *testing.T, user string, n int) []gateway.Report {
	t.Helper()
	var mine []gateway.Report
	poll.Until(t, fmt.Sprintf("%d events of %s handled", n, user), func() bool {
		mine = mine[:0]
		for _, rep := range r.all() {
			if rep.UserID == user {
				mine = append(mine, rep)
			}
		}
		return len(mine) >= n
	})
	return mine
}

// handoverHarness is the e2e harness with a fake clock and a report log.
func handoverHarness(t *testing.T, set *engine.Set, tweak func(*gateway.Config)) (*harness, *fakeclock.Clock, *reports) {
	t.Helper()
	clock, reps := fakeclock.New(fakeclock.Start), &reports{}
	h := newHarness(t, set, func(c *gateway.Config) {
		c.Now = clock.Now
		c.OnHandled = reps.add
		c.TimerInterval = time.Hour // the tests run the timer with CheckReturns
		if tweak != nil {
			tweak(c)
		}
	})
	return h, clock, reps
}

var tsSeq atomic.Int64

func nextTS() int64 { return 1764000000000 + tsSeq.Add(1000) }

func echoEvent(user, appID, text string) string {
	app := ""
	if appID != "" {
		app = fmt.Sprintf(`,"app_id":%s`, appID)
	}
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"is_echo":true%s,"text":%q}}`,
		pageID, user, nextTS(), nextMID(), app, text)
}

func requestEvent(user, appID string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"request_thread_control":{"requested_owner_app_id":%s,"metadata":"an admin moved it"}}`,
		user, pageID, nextTS(), appID)
}

const pauseRules = `version: 1
apps: {zendesk: 200646160103180, page_inbox: 263902037430900}
handover: {pause_on_human: 30m}
rules:
  - name: bot-keyword
    match: {text: bot}
    paused: any
    do: [reply: "The bot is back."]
  - name: back-from-agent
    match: {event: pass_thread_control}
    do: [reply: "Welcome back."]
  - name: echo
    do: [echo: "[bot] "]
`

func TestHumanEchoPausesThatUserOnly(t *testing.T) {
	t.Parallel()
	h, clock, reps := handoverHarness(t, parseRules(t, pauseRules), nil)

	// A person answers u1 from the Page Inbox: the bot is paused for u1.
	h.mustPost(envelope("messaging", echoEvent("u1", pageInboxID, "Hi, Anna here")))
	h.mustPost(envelope("messaging", textEvent("u1", "hello")))
	got := reps.handled(t, "u1", 2)
	if !got[1].Paused || len(got[1].Rules) != 0 {
		t.Fatalf("u1's message while paused: paused=%v rules=%v, want paused and no rule", got[1].Paused, got[1].Rules)
	}
	// u2 is not paused.
	h.mustPost(envelope("messaging", textEvent("u2", "hello")))
	poll.Until(t, "u2's echo", func() bool { return len(h.graph.Texts("u2")) == 1 })

	// A rule with paused: any still fires for u1.
	h.mustPost(envelope("messaging", textEvent("u1", "bot")))
	poll.Until(t, "the bot keyword's reply", func() bool { return len(h.graph.Texts("u1")) == 1 })
	if got := h.graph.Texts("u1"); got[0] != "The bot is back." {
		t.Fatalf("u1 got %q", got)
	}

	// 29 minutes later u1 is still paused; after 30 the bot answers again.
	clock.Advance(29 * time.Minute)
	h.mustPost(envelope("messaging", textEvent("u1", "still there?")))
	if rep := reps.handled(t, "u1", 4)[3]; !rep.Paused || len(rep.Rules) != 0 {
		t.Fatalf("after 29m: paused=%v rules=%v, want still paused", rep.Paused, rep.Rules)
	}
	clock.Advance(time.Minute)
	h.mustPost(envelope("messaging", textEvent("u1", "hello again")))
	poll.Until(t, "the echo after the pause", func() bool { return len(h.graph.Texts("u1")) == 2 })
	if got := h.graph.Texts("u1")[1]; got != "[bot] hello again" {
		t.Fatalf("after the pause u1 got %q", got)
	}
}

func TestWhichEchoesPause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		appID  string // the gateway's APP_ID
		echoBy string // the echo's app_id ("" for none)
		paused bool
	}{
		{"our own echo", testAppID, testAppID, false},
		{"page inbox", testAppID, pageInboxID, true},
		{"another app", testAppID, zendeskID, true},
		{"no app_id", testAppID, "", true},
		{"no APP_ID, page inbox", "", pageInboxID, true},
		{"no APP_ID, an app of the rules file", "", zendeskID, true},
		{"no APP_ID, an unknown app", "", testAppID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _, reps := handoverHarness(t, parseRules(t, pauseRules), func(c *gateway.Config) { c.AppID = tt.appID })
			h.mustPost(envelope("messaging", echoEvent("e1", tt.echoBy, "some text")))
			h.mustPost(envelope("messaging", textEvent("e1", "hello")))
			if got := reps.handled(t, "e1", 2)[1].Paused; got != tt.paused {
				t.Errorf("paused = %v, want %v", got, tt.paused)
			}
			if tt.paused == (len(h.graph.Texts("e1")) > 0) {
				t.Errorf("sent %q with paused=%v", h.graph.Texts("e1"), tt.paused)
			}
		})
	}
}

func TestHandBackEndsThePause(t *testing.T) {
	t.Parallel()
	h, _, reps := handoverHarness(t, parseRules(t, pauseRules), nil)
	h.mustPost(envelope("standby", echoEvent("u1", zendeskID, "Agent here")))
	if owner := reps.handled(t, "u1", 1)[0].Owner; owner != "zendesk" {
		t.Errorf("owner after an agent's echo on standby = %q, want zendesk", owner)
	}
	h.mustPost(envelope("messaging", passEvent("u1", testAppID, int(nextTS()))))
	poll.Until(t, "the welcome back", func() bool { return len(h.graph.Texts("u1")) == 1 })
	h.mustPost(envelope("messaging", textEvent("u1", "thanks")))
	poll.Until(t, "the echo", func() bool { return len(h.graph.Texts("u1")) == 2 })
	if got := h.graph.Texts("u1"); got[0] != "Welcome back." || got[1] != "[bot] thanks" {
		t.Fatalf("got %q", got)
	}
}

const returnRules = `version: 1
apps: {zendesk: 200646160103180}
handover: {return_after_idle: 2h}
rules:
  - name: agent
    match: {text: agent}
    do:
      - reply: "Connecting you."
      - pass_thread_control: zendesk
  - name: welcome-back
    match: {event: returned}
    do: [reply: "I'm back. {{ .Event }} on {{ .PageID }}"]
  - name: echo
    do: [echo: "[bot] "]
`

func TestIdleThreadComesBackOnce(t *testing.T) {
	t.Parallel()
	h, clock, reps := handoverHarness(t, parseRules(t, returnRules), nil)
	h.mustPost(envelope("messaging", textEvent("u1", "agent")))
	reps.handled(t, "u1", 1)

	// The user writes on standby after an hour: the clock starts again.
	clock.Advance(time.Hour)
	h.mustPost(envelope("standby", textEvent("u1", "hello?")))
	reps.handled(t, "u1", 2)
	clock.Advance(90 * time.Minute)
	if n := h.gw.CheckReturns(); n != 0 {
		t.Fatalf("1h30m after the user wrote, %d returns queued, want 0", n)
	}
	// An agent writes: the clock starts again too.
	h.mustPost(envelope("standby", echoEvent("u1", zendeskID, "looking into it")))
	reps.handled(t, "u1", 3)
	clock.Advance(119 * time.Minute)
	if n := h.gw.CheckReturns(); n != 0 {
		t.Fatalf("1h59m after the agent wrote, %d returns queued, want 0", n)
	}
	clock.Advance(time.Minute)
	if n := h.gw.CheckReturns(); n != 1 {
		t.Fatalf("2h after the agent wrote, %d returns queued, want 1", n)
	}
	poll.Until(t, "the returned rule's reply", func() bool { return len(h.graph.Texts("u1")) == 2 })
	takes := h.graph.CallsTo(fakegraph.PathTake)
	if len(takes) != 1 || takes[0].User != "u1" || !strings.Contains(fmt.Sprint(takes[0].Body["metadata"]), "2h") {
		t.Fatalf("take_thread_control calls = %v, want one for u1 saying 2h", takes)
	}
	if got := h.graph.Texts("u1")[1]; got != "I'm back. returned on "+pageID {
		t.Errorf("returned reply = %q", got)
	}
	rep := reps.handled(t, "u1", 4)[3]
	if rep.Kind != "returned" || rep.Owner != "self" || len(rep.Rules) != 1 || rep.Rules[0] != "welcome-back" {
		t.Errorf("report = %+v, want the returned rule with owner self", rep)
	}

	// It fires once: later ticks find nothing to take back.
	for range 3 {
		clock.Advance(3 * time.Hour)
		if n := h.gw.CheckReturns(); n != 0 {
			t.Fatalf("after the return, %d more returns queued", n)
		}
	}
	h.mustPost(envelope("messaging", textEvent("u1", "sentinel")))
	poll.Until(t, "the sentinel", func() bool { return len(h.graph.Texts("u1")) == 3 })
	if n := len(h.graph.CallsTo(fakegraph.PathTake)); n != 1 {
		t.Errorf("%d take_thread_control calls, want 1", n)
	}
}

func TestReturnReadsTheRulesInForce(t *testing.T) {
	t.Parallel()
	var current atomic.Pointer[engine.Set]
	current.Store(parseRules(t, returnRules))
	h, clock, reps := handoverHarness(t, nil, func(c *gateway.Config) {
		c.Rules = func() *engine.Set { return current.Load() }
	})
	h.mustPost(envelope("messaging", textEvent("u1", "agent")))
	reps.handled(t, "u1", 1)
	clock.Advance(time.Hour)
	if n := h.gw.CheckReturns(); n != 0 {
		t.Fatalf("%d returns after 1h with return_after_idle: 2h", n)
	}
	// A reload shortens the delay: the thread already waiting follows it.
	current.Store(parseRules(t, strings.Replace(returnRules, "return_after_idle: 2h", "return_after_idle: 30m", 1)))
	if n := h.gw.CheckReturns(); n != 1 {
		t.Fatalf("%d returns after the reload, want 1", n)
	}
	poll.Until(t, "the take", func() bool { return len(h.graph.CallsTo(fakegraph.PathTake)) == 1 })
	// A reload that turns it off stops the watching.
	current.Store(parseRules(t, strings.Replace(returnRules, "return_after_idle: 2h", "return_after_idle: 0", 1)))
	h.mustPost(envelope("messaging", textEvent("u2", "agent")))
	reps.handled(t, "u2", 1)
	clock.Advance(23 * time.Hour)
	if n := h.gw.CheckReturns(); n != 0 {
		t.Fatalf("%d returns with return_after_idle off", n)
	}
}

func TestFailedReturnWaitsAgain(t *testing.T) {
	t.Parallel()
	h, clock, reps := handoverHarness(t, parseRules(t, returnRules), nil)
	h.graph.Script(fakegraph.Match{Path: fakegraph.PathTake},
		fakegraph.GraphError{Status: 400, Code: 27, Message: "(#27) Take thread control is not supported", FBTraceID: "T27"}.Answer())
	h.mustPost(envelope("messaging", textEvent("u1", "agent")))
	reps.handled(t, "u1", 1)
	clock.Advance(2 * time.Hour)
	if n := h.gw.CheckReturns(); n != 1 {
		t.Fatalf("%d returns queued, want 1", n)
	}
	// The failed return is reported; then the user writes on standby.
	if rep := reps.handled(t, "u1", 2)[1]; rep.Kind != "returned" || len(rep.Actions) != 1 || rep.Actions[0].Error == "" {
		t.Fatalf("report of the failed return = %+v", rep)
	}
	h.mustPost(envelope("standby", textEvent("u1", "sentinel")))
	reps.handled(t, "u1", 3)
	clock.Advance(time.Hour)
	if n := h.gw.CheckReturns(); n != 0 {
		t.Fatalf("%d returns an hour after a failed one, want 0", n)
	}
	clock.Advance(2 * time.Hour)
	if n := h.gw.CheckReturns(); n != 1 {
		t.Fatalf("%d returns 2h after the user wrote, want 1", n)
	}
	poll.Until(t, "the second take", func() bool { return len(h.graph.CallsTo(fakegraph.PathTake)) == 2 })
	poll.Until(t, "the returned reply", func() bool {
		got := h.graph.Texts("u1")
		return len(got) == 2 && strings.HasPrefix(got[1], "I'm back.")
	})
}

func TestRequestPolicy(t *testing.T) {
	t.Parallel()
	const base = `version: 1
apps: {zendesk: 200646160103180, page_inbox: 263902037430900}
%s
rules:
  - name: inbox-asks
    match: {event: request_thread_control}
    do:
      - reply: "A colleague takes over."
      - pass_thread_control: page_inbox
  - name: echo
    do: [echo: "[bot] "]
`
	tests := []struct {
		policy     string
		wantPasses int
		wantTexts  []string
		wantOwner  string
	}{
		{"", 1, []string{"A colleague takes over.", "[bot] sentinel"}, "page_inbox"},
		{"handover: {on_request: rules}", 1, []string{"A colleague takes over.", "[bot] sentinel"}, "page_inbox"},
		{"handover: {on_request: grant}", 1, []string{"[bot] sentinel"}, "page_inbox"},
		{"handover: {on_request: ignore}", 0, []string{"[bot] sentinel"}, "self"},
	}
	for _, tt := range tests {
		t.Run("policy "+tt.policy, func(t *testing.T) {
			t.Parallel()
			h, _, reps := handoverHarness(t, parseRules(t, fmt.Sprintf(base, tt.policy)), nil)
			h.mustPost(envelope("messaging", requestEvent("r1", pageInboxID)))
			owner := reps.handled(t, "r1", 1)[0].Owner
			h.mustPost(envelope("messaging", textEvent("r1", "sentinel")))
			reps.handled(t, "r1", 2)
			passes := h.graph.CallsTo(fakegraph.PathPass)
			if len(passes) != tt.wantPasses {
				t.Fatalf("%d passes, want %d", len(passes), tt.wantPasses)
			}
			if len(passes) == 1 && (passes[0].Field("target_app_id") != pageInboxID || passes[0].User != "r1") {
				t.Errorf("pass = %v, want to the Page Inbox for r1", passes[0].Body)
			}
			if got := h.graph.Texts("r1"); strings.Join(got, "|") != strings.Join(tt.wantTexts, "|") {
				t.Errorf("texts = %q, want %q", got, tt.wantTexts)
			}
			if tt.wantOwner != "self" && owner != tt.wantOwner {
				t.Errorf("owner after the request = %q, want %q", owner, tt.wantOwner)
			}
		})
	}
}

const dialectRules = `version: 1
apps: {zendesk: 200646160103180}
%s
rules:
  - name: agent
    match: {text: agent}
    do:
      - reply: "Connecting you."
      - pass_thread_control:
          target: zendesk
          metadata: "{{ .Transcript | join \" / \" }}"
  - name: button
    match: {text: button}
    do:
      - pass_thread_control: zendesk
  - name: bye
    match: {text: bye}
    do:
      - reply: "Bye!"
      - release_thread_control: {}
  - name: echo
    do: [echo: "[bot] "]
`

func TestDialects(t *testing.T) {
	t.Parallel()
	type call struct {
		path    string
		text    string
		control string // control_type/app_id of a Send API thread_control
		target  string
		meta    string
	}
	describe := func(c fakegraph.Call) call {
		out := call{path: c.Path}
		if m, ok := c.Body["message"].(map[string]any); ok {
			out.text, _ = m["text"].(string)
			out.meta, _ = m["metadata"].(string)
		}
		if tc, ok := c.Body["thread_control"].(map[string]any); ok {
			out.control = fmt.Sprint(tc["control_type"], "/", tc["app_id"])
		}
		out.target, _ = c.Body["target_app_id"].(string)
		if m, ok := c.Body["metadata"].(string); ok {
			out.meta = m
		}
		return out
	}
	legacy := []call{
		{path: "/me/messages", text: "[bot] hello"},
		{path: "/me/messages", text: "Connecting you."},
		{path: "/me/pass_thread_control", target: zendeskID, meta: "hello / agent"},
		{path: "/me/messages", text: "Bye!"},
		{path: "/me/release_thread_control"},
		{path: "/me/pass_thread_control", target: zendeskID},
	}
	routing := []call{
		{path: "/me/messages", text: "[bot] hello"},
		{path: "/me/messages", text: "Connecting you.", control: "pass/" + zendeskID, meta: "hello / agent"},
		{path: "/me/messages", text: "Bye!", control: "release/<nil>"},
		{path: "/me/pass_thread_control", target: zendeskID}, // nothing to ride on
	}
	tests := []struct {
		name     string
		settings string
		want     []call
	}{
		{"default is legacy", "", legacy},
		{"legacy", "handover: {dialect: legacy}", legacy},
		{"routing", "handover: {dialect: routing}", routing},
		{"routing for this page", "pages: {shop: {id: " + pageID + ", dialect: routing}}", routing},
		{"legacy for this page", "pages: {shop: {id: " + pageID + ", dialect: legacy}}\nhandover: {dialect: routing}", legacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _, reps := handoverHarness(t, parseRules(t, fmt.Sprintf(dialectRules, tt.settings)), nil)
			user := "d1"
			n := 0
			for _, text := range []string{"hello", "agent", "bye", "button"} {
				if text == "bye" {
					// The agent gives the thread back before the user says bye.
					h.mustPost(envelope("messaging", passEvent(user, testAppID, int(nextTS()))))
					n++
				}
				h.mustPost(envelope("messaging", textEvent(user, text)))
				n++
				reps.handled(t, user, n)
			}
			var got []call
			for _, c := range h.graph.Calls() {
				got = append(got, describe(c))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("calls:\n got %v\nwant %v", got, tt.want)
			}
			for _, r := range reps.all() {
				for _, a := range r.Actions {
					if a.Error != "" {
						t.Errorf("action %s failed: %s", a.Kind, a.Error)
					}
				}
			}
			if owner := reps.all()[len(reps.all())-1].Owner; owner != "zendesk" {
				t.Errorf("owner after the last pass = %q, want zendesk", owner)
			}
		})
	}
}

func TestRoutingPassWhenNotOwner(t *testing.T) {
	t.Parallel()
	h, _, reps := handoverHarness(t, parseRules(t, fmt.Sprintf(dialectRules, "handover: {dialect: routing}")), nil)
	h.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages},
		fakegraph.GraphError{Status: 400, Code: 10, Subcode: 2018300, Message: "(#10) another app is controlling this thread now.", FBTraceID: "Towner"}.Answer())
	h.mustPost(envelope("messaging", textEvent("n1", "agent")))
	rep := reps.handled(t, "n1", 1)[0]
	if len(rep.Actions) != 2 || rep.Actions[0].Error == "" || rep.Actions[1].Error == "" {
		t.Fatalf("actions = %+v, want the reply and the pass to fail together", rep.Actions)
	}
	if rep.Owner != "other" {
		t.Errorf("owner = %q, want other after 2018300", rep.Owner)
	}
	if n := len(h.graph.CallsTo(fakegraph.PathPass)); n != 0 {
		t.Errorf("%d pass_thread_control calls after an ownership error, want 0", n)
	}
}

// pageEnvelope is a webhook of one event for a Page or Instagram account.
func pageEnvelope(object, page, channel, event string) string {
	return fmt.Sprintf(`{"object":%q,"entry":[{"id":%q,"time":1764000000000,%q:[%s]}]}`, object, page, channel, event)
}

func pageText(page, user, text string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":%q}}`,
		user, page, nextTS(), nextMID(), text)
}

func TestManyPagesNeverMixTokens(t *testing.T) {
	t.Parallel()
	const (
		pageA, tokA  = "111111111111111", "token-of-page-a-0123456789"
		pageB, tokB  = "222222222222222", "token-of-page-b-9876543210"
		igAcct, tokI = "17841400000000000", "token-of-instagram-1357924680"
		pageC        = "333333333333333" // no token at all
	)
	set := parseRules(t, `version: 1
apps: {zendesk: 200646160103180}
pages:
  a: `+pageA+`
  b: {id: `+pageB+`, dialect: routing}
  ig: `+igAcct+`
rules:
  - name: agent
    match: {text: agent}
    do:
      - reply: "Connecting you."
      - pass_thread_control: zendesk
  - name: shop-a
    match: {page: a}
    do: [reply: "Shop A here"]
  - name: owner
    match: {event: request_thread_control}
    when: 'owner != ""'
    do: [reply: "owner is {{ .Owner }}"]
  - name: echo
    do: [echo: "[bot] "]
`)
	// This test's own fake Graph API knows the three tokens: it records
	// the token of every call, and refuses a call with any other.
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{tokA, tokB, tokI}, AppSecret: []byte(testSecret)})
	h, _, reps := handoverHarness(t, set, func(c *gateway.Config) {
		c.Platform = messenger.NewClient(messenger.Options{
			BaseURL:     graph.BaseURL(),
			Tokens:      messenger.PagesAndDefault{Pages: messenger.PageTokens{pageA: tokA, pageB: tokB, igAcct: tokI}},
			AppSecret:   []byte(testSecret),
			BaseBackoff: time.Millisecond,
			MaxAttempts: 1,
			Logger:      slog.New(slog.DiscardHandler),
		})
	})

	// Several users on each Page and on the Instagram account, in parallel.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for _, body := range []string{
				pageEnvelope("page", pageA, "messaging", pageText(pageA, fmt.Sprintf("a%d", i), "hello")),
				pageEnvelope("page", pageB, "messaging", pageText(pageB, fmt.Sprintf("b%d", i), "agent")),
				pageEnvelope("instagram", igAcct, "messaging", pageText(igAcct, fmt.Sprintf("i%d", i), "hi from IG")),
			} {
				if code := h.post(body); code != http.StatusOK {
					t.Errorf("webhook answered %d, want 200", code)
				}
			}
		})
	}
	wg.Wait()
	// A request about a thread nobody knows: the owner lookup uses the
	// Page's token too.
	h.mustPost(pageEnvelope("page", pageB, "messaging", fmt.Sprintf(`{"sender":{"id":"b9"},"recipient":{"id":%q},"timestamp":%d,"request_thread_control":{"requested_owner_app_id":%s}}`, pageB, nextTS(), pageInboxID)))
	// A Page without a token: nothing is sent, and no other Page's token is tried.
	h.mustPost(pageEnvelope("page", pageC, "messaging", pageText(pageC, "c1", "hello")))
	for _, u := range []string{"a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "i0", "i1", "i2", "i3", "b9", "c1"} {
		reps.handled(t, u, 1)
	}

	tokenOf := map[string]string{"a": tokA, "b": tokB, "i": tokI}
	counts := map[string]int{}
	for _, c := range graph.Calls() {
		if c.Token != tokenOf[c.User[:1]] {
			t.Errorf("%s for %s carried the token of another page", c.Path, c.User)
		}
		counts[c.User[:1]+" "+c.Path]++
	}
	wantCounts := map[string]int{
		"a /me/messages":     4, // Shop A here
		"b /me/messages":     5, // routing: the pass rides on the reply; plus the owner reply
		"i /me/messages":     4, // the Instagram echo
		"b /me/thread_owner": 1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(wantCounts) {
		t.Errorf("calls per page = %v, want %v", counts, wantCounts)
	}
	if got := graph.Texts("a0"); len(got) != 1 || got[0] != "Shop A here" {
		t.Errorf("page a answered %q, want the page-scoped rule", got)
	}
	if got := graph.Texts("i0"); len(got) != 1 || got[0] != "[bot] hi from IG" {
		t.Errorf("the Instagram account answered %q", got)
	}
	if rep := reps.handled(t, "c1", 1)[0]; len(rep.Actions) != 1 || !strings.Contains(rep.Actions[0].Error, "no access token") {
		t.Errorf("page without a token: %+v", rep.Actions)
	}
	logs := h.logs.String()
	for _, tok := range []string{tokA, tokB, tokI} {
		if strings.Contains(logs, tok) {
			t.Errorf("a page token reached the logs")
		}
	}
}

func TestInstagramWebhookIsAnswered(t *testing.T) {
	t.Parallel()
	const igAcct = "17841400000000001"
	h, _, reps := handoverHarness(t, parseRules(t, pauseRules), nil)
	h.mustPost(pageEnvelope("instagram", igAcct, "messaging", pageText(igAcct, "ig1", "hello from instagram")))
	poll.Until(t, "the answer", func() bool { return len(h.graph.Texts("ig1")) == 1 })
	if got := h.graph.Texts("ig1")[0]; got != "[bot] hello from instagram" {
		t.Errorf("answer = %q", got)
	}
	// An Instagram echo of a person's message (the Instagram Inbox) pauses too.
	echo := fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":"ig1"},"timestamp":%d,"message":{"mid":%q,"is_echo":true,"app_id":1217981644879628,"text":"agent here"}}`, igAcct, nextTS(), nextMID())
	h.mustPost(pageEnvelope("instagram", igAcct, "messaging", echo))
	h.mustPost(pageEnvelope("instagram", igAcct, "messaging", pageText(igAcct, "ig1", "still there?")))
	if rep := reps.handled(t, "ig1", 3)[2]; !rep.Paused || len(rep.Rules) != 0 {
		t.Errorf("after the Instagram Inbox wrote: paused=%v rules=%v", rep.Paused, rep.Rules)
	}
}

func TestRotatedSecretIsAccepted(t *testing.T) {
	t.Parallel()
	const newSecret, oldSecret = "the-new-app-secret", "the-old-app-secret"
	h, _, _ := handoverHarness(t, parseRules(t, pauseRules), func(c *gateway.Config) {
		c.Secrets = [][]byte{[]byte(newSecret), []byte(oldSecret)}
	})
	tests := []struct {
		name   string
		secret string
		want   int
	}{
		{"current secret", newSecret, 200},
		{"previous secret", oldSecret, 200},
		{"another secret", "not-a-secret-we-know", 401},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := envelope("messaging", textEvent(fmt.Sprintf("rot%d", i), "hello"))
			if got := h.postSigned(body, messenger.Sign([]byte(tt.secret), []byte(body))); got != tt.want {
				t.Errorf("status = %d, want %d", got, tt.want)
			}
			if tt.want == 200 {
				poll.Until(t, "the answer", func() bool { return len(h.graph.Texts(fmt.Sprintf("rot%d", i))) == 1 })
			}
		})
	}
	for _, s := range []string{newSecret, oldSecret} {
		if strings.Contains(h.logs.String(), s) {
			t.Error("a secret reached the logs")
		}
	}
}

func TestOwnerLookupIsCached(t *testing.T) {
	t.Parallel()
	const reading = `version: 1
apps: {zendesk: 200646160103180, page_inbox: 263902037430900}
rules:
  - name: who
    match: {event: request_thread_control}
    when: 'owner != "zendesk"'
    do: [reply: "owner is {{ .Owner }}"]
`
	const notReading = `version: 1
apps: {page_inbox: 263902037430900}
rules:
  - name: who
    match: {event: request_thread_control}
    do: [reply: "someone asks"]
`
	tests := []struct {
		name       string
		rules      string
		answers    []fakegraph.Answer
		wantLookup int
		wantTexts  []string
	}{
		{"owned by us", reading, []fakegraph.Answer{{Body: `{"data":[{"thread_owner":{"app_id":"` + testAppID + `","expiration":1764086400}}]}`}},
			1, []string{"owner is self", "owner is self"}},
		{"idle", reading, []fakegraph.Answer{{Body: `{"data":[]}`}},
			1, []string{"owner is idle", "owner is idle"}},
		{"another app", reading, []fakegraph.Answer{{Body: `{"data":[{"thread_owner":{"app_id":"` + pageInboxID + `"}}]}`}},
			1, []string{"owner is page_inbox", "owner is page_inbox"}},
		{"lookup fails: asked again a minute later, not at once", reading,
			[]fakegraph.Answer{fakegraph.GraphError{Status: 400, Code: 100, Message: "bad", FBTraceID: "Tx"}.Answer(), {Body: `{"data":[]}`}},
			2, []string{"owner is ", "owner is ", "owner is idle"}},
		{"no rule reads the owner", notReading, nil, 0, []string{"someone asks", "someone asks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, clock, reps := handoverHarness(t, parseRules(t, tt.rules), nil)
			h.graph.Script(fakegraph.Match{Path: fakegraph.PathThreadOwner}, tt.answers...)
			for i := range tt.wantTexts {
				if i == 2 {
					clock.Advance(time.Minute)
				}
				h.mustPost(envelope("messaging", requestEvent("o1", pageInboxID)))
				reps.handled(t, "o1", i+1)
			}
			if n := len(h.graph.CallsTo(fakegraph.PathThreadOwner)); n != tt.wantLookup {
				t.Errorf("%d thread_owner lookups, want %d", n, tt.wantLookup)
			}
			if got := h.graph.Texts("o1"); strings.Join(got, "|") != strings.Join(tt.wantTexts, "|") {
				t.Errorf("texts = %q, want %q", got, tt.wantTexts)
			}
		})
	}
}

func TestOwnershipExpiresAfter24Hours(t *testing.T) {
	t.Parallel()
	h, clock, reps := handoverHarness(t, parseRules(t, `version: 1
apps: {zendesk: 200646160103180}
rules:
  - name: agent
    match: {text: agent}
    do: [pass_thread_control: zendesk]
  - name: who
    match: {event: request_thread_control}
    do: [reply: "owner is {{ .Owner }}"]
`), nil)
	h.mustPost(envelope("messaging", textEvent("x1", "agent")))
	h.mustPost(envelope("messaging", requestEvent("x1", pageInboxID)))
	reps.handled(t, "x1", 2)
	clock.Advance(23 * time.Hour)
	h.mustPost(envelope("messaging", requestEvent("x1", pageInboxID)))
	reps.handled(t, "x1", 3)
	clock.Advance(time.Hour)
	h.mustPost(envelope("messaging", requestEvent("x1", pageInboxID)))
	reps.handled(t, "x1", 4)
	want := []string{"owner is zendesk", "owner is zendesk", "owner is idle"}
	if got := h.graph.Texts("x1"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("texts = %q, want %q", got, want)
	}
}
