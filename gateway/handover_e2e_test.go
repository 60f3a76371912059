package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

// The handover features end to end: a real gateway, a real Graph API
// client and the fake Graph API of e2e_test.go, with an injected clock.

const pageInboxID = "263902037430900"

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

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
	waitFor(t, fmt.Sprintf("%d events of %s handled", n, user), func() bool {
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
func handoverHarness(t *testing.T, set *engine.Set, tweak func(*gateway.Config)) (*harness, *fakeClock, *reports) {
	t.Helper()
	clock, reps := newFakeClock(), &reports{}
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

func callsTo(f *fakeGraph, path string) []graphCall {
	var out []graphCall
	for _, c := range f.Calls() {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
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
	waitFor(t, "u2's echo", func() bool { return len(h.graph.texts("u2")) == 1 })

	// A rule with paused: any still fires for u1.
	h.mustPost(envelope("messaging", textEvent("u1", "bot")))
	waitFor(t, "the bot keyword's reply", func() bool { return len(h.graph.texts("u1")) == 1 })
	if got := h.graph.texts("u1"); got[0] != "The bot is back." {
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
	waitFor(t, "the echo after the pause", func() bool { return len(h.graph.texts("u1")) == 2 })
	if got := h.graph.texts("u1")[1]; got != "[bot] hello again" {
		t.Fatalf("after the pause u1 got %q", got)
	}
}

func TestWhichEchoesPause(t *testing.T) {
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
			h, _, reps := handoverHarness(t, parseRules(t, pauseRules), func(c *gateway.Config) { c.AppID = tt.appID })
			h.mustPost(envelope("messaging", echoEvent("e1", tt.echoBy, "some text")))
			h.mustPost(envelope("messaging", textEvent("e1", "hello")))
			if got := reps.handled(t, "e1", 2)[1].Paused; got != tt.paused {
				t.Errorf("paused = %v, want %v", got, tt.paused)
			}
			if tt.paused == (len(h.graph.texts("e1")) > 0) {
				t.Errorf("sent %q with paused=%v", h.graph.texts("e1"), tt.paused)
			}
		})
	}
}

func TestHandBackEndsThePause(t *testing.T) {
	h, _, reps := handoverHarness(t, parseRules(t, pauseRules), nil)
	h.mustPost(envelope("standby", echoEvent("u1", zendeskID, "Agent here")))
	if owner := reps.handled(t, "u1", 1)[0].Owner; owner != "zendesk" {
		t.Errorf("owner after an agent's echo on standby = %q, want zendesk", owner)
	}
	h.mustPost(envelope("messaging", passEvent("u1", testAppID, int(nextTS()))))
	waitFor(t, "the welcome back", func() bool { return len(h.graph.texts("u1")) == 1 })
	h.mustPost(envelope("messaging", textEvent("u1", "thanks")))
	waitFor(t, "the echo", func() bool { return len(h.graph.texts("u1")) == 2 })
	if got := h.graph.texts("u1"); got[0] != "Welcome back." || got[1] != "[bot] thanks" {
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
	waitFor(t, "the returned rule's reply", func() bool { return len(h.graph.texts("u1")) == 2 })
	takes := callsTo(h.graph, "/me/take_thread_control")
	if len(takes) != 1 || recipientOf(takes[0]) != "u1" || !strings.Contains(fmt.Sprint(takes[0].Body["metadata"]), "2h") {
		t.Fatalf("take_thread_control calls = %v, want one for u1 saying 2h", takes)
	}
	if got := h.graph.texts("u1")[1]; got != "I'm back. returned on "+pageID {
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
	waitFor(t, "the sentinel", func() bool { return len(h.graph.texts("u1")) == 3 })
	if n := len(callsTo(h.graph, "/me/take_thread_control")); n != 1 {
		t.Errorf("%d take_thread_control calls, want 1", n)
	}
}

func TestReturnReadsTheRulesInForce(t *testing.T) {
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
	waitFor(t, "the take", func() bool { return len(callsTo(h.graph, "/me/take_thread_control")) == 1 })
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
	h, clock, reps := handoverHarness(t, parseRules(t, returnRules), nil)
	h.graph.mu.Lock()
	h.graph.script["/me/take_thread_control"] = []fakeAnswer{
		{400, `{"error":{"message":"(#27) Take thread control is not supported","type":"OAuthException","code":27,"fbtrace_id":"T27"}}`},
	}
	h.graph.mu.Unlock()
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
	waitFor(t, "the second take", func() bool { return len(callsTo(h.graph, "/me/take_thread_control")) == 2 })
	waitFor(t, "the returned reply", func() bool {
		got := h.graph.texts("u1")
		return len(got) == 2 && strings.HasPrefix(got[1], "I'm back.")
	})
}

func TestRequestPolicy(t *testing.T) {
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
			h, _, reps := handoverHarness(t, parseRules(t, fmt.Sprintf(base, tt.policy)), nil)
			h.mustPost(envelope("messaging", requestEvent("r1", pageInboxID)))
			owner := reps.handled(t, "r1", 1)[0].Owner
			h.mustPost(envelope("messaging", textEvent("r1", "sentinel")))
			reps.handled(t, "r1", 2)
			passes := callsTo(h.graph, "/me/pass_thread_control")
			if len(passes) != tt.wantPasses {
				t.Fatalf("%d passes, want %d", len(passes), tt.wantPasses)
			}
			if len(passes) == 1 && (passes[0].Body["target_app_id"] != pageInboxID || recipientOf(passes[0]) != "r1") {
				t.Errorf("pass = %v, want to the Page Inbox for r1", passes[0].Body)
			}
			if got := h.graph.texts("r1"); strings.Join(got, "|") != strings.Join(tt.wantTexts, "|") {
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
	type call struct {
		path    string
		text    string
		control string // control_type/app_id of a Send API thread_control
		target  string
		meta    string
	}
	describe := func(c graphCall) call {
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
	h, _, reps := handoverHarness(t, parseRules(t, fmt.Sprintf(dialectRules, "handover: {dialect: routing}")), nil)
	h.graph.mu.Lock()
	h.graph.script["/me/messages"] = []fakeAnswer{
		{400, `{"error":{"message":"(#10) another app is controlling this thread now.","type":"OAuthException","code":10,"error_subcode":2018300,"fbtrace_id":"Towner"}}`},
	}
	h.graph.mu.Unlock()
	h.mustPost(envelope("messaging", textEvent("n1", "agent")))
	rep := reps.handled(t, "n1", 1)[0]
	if len(rep.Actions) != 2 || rep.Actions[0].Error == "" || rep.Actions[1].Error == "" {
		t.Fatalf("actions = %+v, want the reply and the pass to fail together", rep.Actions)
	}
	if rep.Owner != "other" {
		t.Errorf("owner = %q, want other after 2018300", rep.Owner)
	}
	if n := len(callsTo(h.graph, "/me/pass_thread_control")); n != 0 {
		t.Errorf("%d pass_thread_control calls after an ownership error, want 0", n)
	}
}

// tokenGraph sits in front of the fake Graph API and records which token
// each call carried, for which recipient; then the fake Graph API (which
// knows one token) answers.
type tokenGraph struct {
	mu    sync.Mutex
	seen  []tokenUse
	inner *fakeGraph
}

type tokenUse struct {
	token, path, user string
}

func (g *tokenGraph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Recipient struct {
			ID string `json:"id"`
		} `json:"recipient"`
	}
	_ = json.Unmarshal(body, &req)
	q := r.URL.Query()
	use := tokenUse{token: q.Get("access_token"), path: strings.TrimPrefix(r.URL.Path, "/v26.0"), user: req.Recipient.ID}
	if use.user == "" {
		use.user = q.Get("recipient")
	}
	g.mu.Lock()
	g.seen = append(g.seen, use)
	inner := g.inner
	g.mu.Unlock()
	q.Set("access_token", testToken)
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	r2.Body = io.NopCloser(bytes.NewReader(body))
	inner.serve(w, r2)
}

func (g *tokenGraph) uses() []tokenUse {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]tokenUse(nil), g.seen...)
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
	tg := &tokenGraph{}
	front := httptest.NewServer(tg)
	t.Cleanup(front.Close)
	h, _, reps := handoverHarness(t, set, func(c *gateway.Config) {
		c.Platform = messenger.NewClient(messenger.Options{
			BaseURL:     front.URL + "/v26.0",
			Tokens:      messenger.PagesAndDefault{Pages: messenger.PageTokens{pageA: tokA, pageB: tokB, igAcct: tokI}},
			AppSecret:   []byte(testSecret),
			BaseBackoff: time.Millisecond,
			MaxAttempts: 1,
			Logger:      slog.New(slog.DiscardHandler),
		})
	})
	tg.mu.Lock()
	tg.inner = h.graph
	tg.mu.Unlock()

	// Several users on each Page and on the Instagram account, in parallel.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			h.mustPost(pageEnvelope("page", pageA, "messaging", pageText(pageA, fmt.Sprintf("a%d", i), "hello")))
			h.mustPost(pageEnvelope("page", pageB, "messaging", pageText(pageB, fmt.Sprintf("b%d", i), "agent")))
			h.mustPost(pageEnvelope("instagram", igAcct, "messaging", pageText(igAcct, fmt.Sprintf("i%d", i), "hi from IG")))
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
	for _, u := range tg.uses() {
		want := tokenOf[u.user[:1]]
		if u.token != want {
			t.Errorf("%s for %s carried the token of another page", u.path, u.user)
		}
		counts[u.user[:1]+" "+u.path]++
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
	if got := h.graph.texts("a0"); len(got) != 1 || got[0] != "Shop A here" {
		t.Errorf("page a answered %q, want the page-scoped rule", got)
	}
	if got := h.graph.texts("i0"); len(got) != 1 || got[0] != "[bot] hi from IG" {
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
	const igAcct = "17841400000000001"
	h, _, reps := handoverHarness(t, parseRules(t, pauseRules), nil)
	h.mustPost(pageEnvelope("instagram", igAcct, "messaging", pageText(igAcct, "ig1", "hello from instagram")))
	waitFor(t, "the answer", func() bool { return len(h.graph.texts("ig1")) == 1 })
	if got := h.graph.texts("ig1")[0]; got != "[bot] hello from instagram" {
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
				waitFor(t, "the answer", func() bool { return len(h.graph.texts(fmt.Sprintf("rot%d", i))) == 1 })
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
		answers    []fakeAnswer
		wantLookup int
		wantTexts  []string
	}{
		{"owned by us", reading, []fakeAnswer{{200, `{"data":[{"thread_owner":{"app_id":"` + testAppID + `","expiration":1764086400}}]}`}},
			1, []string{"owner is self", "owner is self"}},
		{"idle", reading, []fakeAnswer{{200, `{"data":[]}`}},
			1, []string{"owner is idle", "owner is idle"}},
		{"another app", reading, []fakeAnswer{{200, `{"data":[{"thread_owner":{"app_id":"` + pageInboxID + `"}}]}`}},
			1, []string{"owner is page_inbox", "owner is page_inbox"}},
		{"lookup fails: asked again a minute later, not at once", reading,
			[]fakeAnswer{{400, `{"error":{"message":"bad","type":"OAuthException","code":100,"fbtrace_id":"Tx"}}`}, {200, `{"data":[]}`}},
			2, []string{"owner is ", "owner is ", "owner is idle"}},
		{"no rule reads the owner", notReading, nil, 0, []string{"someone asks", "someone asks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, clock, reps := handoverHarness(t, parseRules(t, tt.rules), nil)
			h.graph.mu.Lock()
			h.graph.script["/me/thread_owner"] = tt.answers
			h.graph.mu.Unlock()
			for i := range tt.wantTexts {
				if i == 2 {
					clock.Advance(time.Minute)
				}
				h.mustPost(envelope("messaging", requestEvent("o1", pageInboxID)))
				reps.handled(t, "o1", i+1)
			}
			if n := len(callsTo(h.graph, "/me/thread_owner")); n != tt.wantLookup {
				t.Errorf("%d thread_owner lookups, want %d", n, tt.wantLookup)
			}
			if got := h.graph.texts("o1"); strings.Join(got, "|") != strings.Join(tt.wantTexts, "|") {
				t.Errorf("texts = %q, want %q", got, tt.wantTexts)
			}
		})
	}
}

func TestOwnershipExpiresAfter24Hours(t *testing.T) {
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
	if got := h.graph.texts("x1"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("texts = %q, want %q", got, want)
	}
}
