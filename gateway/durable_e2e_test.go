package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/internal/syncbuf"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/retry"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/boltstore"
	"github.com/threadgate/threadgate/store/memstore"
)

// These tests drive the real gateway behind its real router over HTTP,
// against the fake Graph API with faults switched on and off: what was
// acknowledged (200) must be delivered once, in each user's order, or be a
// dead letter an operator can see, replay or drop.

const durableRules = `version: 1
apps: {zendesk: 200646160103180}
handover: {return_after_idle: 30m}
rules:
  - name: agent
    match: {text: agent}
    do:
      - reply: "Connecting you."
      - pass_thread_control: zendesk
  - name: echo
    do: [echo: "[bot] "]
`

// quickRetries is a retry policy with the gateway's shape and waits of
// milliseconds.
var quickRetries = retry.Policy{
	Transient:   retry.Backoff{Base: 2 * time.Millisecond, Cap: 10 * time.Millisecond},
	RateLimited: retry.Backoff{Base: 20 * time.Millisecond, Cap: 40 * time.Millisecond, Floor: 0.5},
	Budget:      time.Minute,
}

// delivered is a Platform in front of the Graph API client that records
// the messages the Graph API accepted (the client's view: a call the fake
// answered after the client gave up is not one), and panics on a text
// with "PANIC" when told to.
type delivered struct {
	actions.Platform
	mu     sync.Mutex
	texts  map[string][]string
	panics bool
}

func (d *delivered) SendMessage(ctx context.Context, to messenger.Recipient, msg *messenger.Message) error {
	if d.panics && strings.Contains(msg.Text, "PANIC") {
		panic("a test platform panics on " + msg.Text)
	}
	err := d.Platform.SendMessage(ctx, to, msg)
	if err == nil {
		d.mu.Lock()
		d.texts[to.UserID] = append(d.texts[to.UserID], msg.Text)
		d.mu.Unlock()
	}
	return err
}

// SendMessageWithControl lets the routing dialect carry a handover on a
// message, as the client does.
func (d *delivered) SendMessageWithControl(ctx context.Context, to messenger.Recipient, msg *messenger.Message, control *messenger.ThreadControl) error {
	err := d.Platform.(gateway.ControlSender).SendMessageWithControl(ctx, to, msg, control)
	if err == nil {
		d.mu.Lock()
		d.texts[to.UserID] = append(d.texts[to.UserID], msg.Text)
		d.mu.Unlock()
	}
	return err
}

// UserProfile asks the Graph API, as the client does.
func (d *delivered) UserProfile(ctx context.Context, to messenger.Recipient) (messenger.UserProfile, error) {
	return d.Platform.(gateway.UserProfiler).UserProfile(ctx, to)
}

func (d *delivered) of(user string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.texts[user]...)
}

// waitDelivered waits until the user got n messages and returns them.
func (d *delivered) waitDelivered(t *testing.T, user string, n int) []string {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d messages delivered to %s", n, user), func() bool { return len(d.of(user)) >= n })
	return d.of(user)
}

// counts is an Observer that counts dead letters and panics.
type counts struct {
	mu           sync.Mutex
	deadLettered map[string]int
	recovered    int
}

func (c *counts) WebhookRequest(string)   {}
func (c *counts) Event(string, bool)      {}
func (c *counts) DedupHit()               {}
func (c *counts) RuleFired(string)        {}
func (c *counts) Action(string, string)   {}
func (c *counts) Handover(string, string) {}
func (c *counts) DeadLettered(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadLettered[reason]++
}
func (c *counts) Recovered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recovered++
}
func (c *counts) get(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadLettered[reason]
}

type durable struct {
	t      *testing.T
	graph  *fakegraph.Server
	out    *delivered
	gw     *gateway.Gateway
	srv    *httptest.Server
	logs   *syncbuf.Buffer
	counts *counts
	cancel context.CancelFunc
}

type durableOptions struct {
	rules   string            // "": durableRules
	graph   *fakegraph.Server // nil: a new one
	store   store.Store       // nil: the gateway's memory store
	now     func() time.Time
	timeout time.Duration // of one Graph call; default 5 s
	panics  bool
	tweak   func(*gateway.Config)
}

func newDurable(t *testing.T, o durableOptions) *durable {
	t.Helper()
	d := &durable{t: t, graph: o.graph, logs: &syncbuf.Buffer{}, counts: &counts{deadLettered: map[string]int{}}}
	if d.graph == nil {
		d.graph = fakegraph.New(t, fakegraph.Options{})
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	log := slog.New(slog.NewJSONHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := messenger.NewClient(messenger.Options{
		BaseURL:     d.graph.BaseURL(),
		Tokens:      messenger.StaticToken(testToken),
		HTTPClient:  &http.Client{Timeout: o.timeout},
		MaxAttempts: 1,
		Logger:      log,
	})
	d.out = &delivered{Platform: client, texts: map[string][]string{}, panics: o.panics}
	if o.rules == "" {
		o.rules = durableRules
	}
	set := parseRules(t, o.rules)
	cfg := gateway.Config{
		Rules:         func() *engine.Set { return set },
		Platform:      d.out,
		AppID:         testAppID,
		Store:         o.store,
		Retry:         quickRetries,
		Logger:        log,
		Now:           o.now,
		Observer:      d.counts,
		TimerInterval: time.Hour, // tests call CheckReturns
	}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	d.gw = gateway.New(cfg)
	router := d.gw.Router()
	d.gw.MountDeadLetters(router, nil)
	d.srv = httptest.NewServer(router)
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if err := d.gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.srv.Close()
		cancel()
		if strings.Contains(d.logs.String(), testToken) {
			t.Errorf("the token reached the logs")
		}
	})
	return d
}

// post sends one webhook body and returns the status.
func (d *durable) post(body string) int {
	d.t.Helper()
	resp, err := http.Post(d.srv.URL+"/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (d *durable) mustPost(body string) {
	d.t.Helper()
	if code := d.post(body); code != http.StatusOK {
		d.t.Fatalf("webhook answered %d, want 200", code)
	}
}

// admin calls a /-/ endpoint and decodes its JSON answer into out.
func (d *durable) admin(method, path string, out any) int {
	d.t.Helper()
	req, _ := http.NewRequest(method, d.srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			d.t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
	return resp.StatusCode
}

type deadLetterList struct {
	DeadLetters []gateway.DeadLetterJSON `json:"dead_letters"`
	Count       int                      `json:"count"`
}

func (d *durable) deadLetters() deadLetterList {
	d.t.Helper()
	var l deadLetterList
	if code := d.admin(http.MethodGet, "/-/deadletters", &l); code != http.StatusOK {
		d.t.Fatalf("GET /-/deadletters: %d", code)
	}
	return l
}

func (d *durable) waitDeadLetters(n int) deadLetterList {
	d.t.Helper()
	var l deadLetterList
	poll.Until(d.t, fmt.Sprintf("%d dead letters", n), func() bool { l = d.deadLetters(); return l.Count >= n })
	return l
}

func want(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("[bot] %s%d", prefix, i)
	}
	return out
}

// A user's failing calls are retried until the Graph API heals, in order
// and once each, while that user's lane waits; another user is answered
// meanwhile, by the only worker, since a waiting lane holds none.
func TestTransientFailuresAreRetriedUntilHealed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer fakegraph.Answer
		class  string
	}{
		{"HTTP 500", fakegraph.Fail(500, 2, 0), "transient"},
		{"500 without a body", fakegraph.Answer{Status: 500, Body: "oops"}, "transient"},
		{"connection resets", fakegraph.Answer{Reset: true}, "transient"},
		{"rate limit 613", fakegraph.Fail(400, 613, 0), "rate-limited"},
		{"a hang past the call's timeout", fakegraph.Answer{Hang: true}, "transient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDurable(t, durableOptions{timeout: 300 * time.Millisecond, tweak: func(c *gateway.Config) { c.Workers = 1 }})
			clear := d.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages, User: "slow"}, tt.answer)
			const n = 4
			for i := range n {
				d.mustPost(envelope("messaging", textEvent("slow", fmt.Sprintf("s%d", i))))
			}
			for i := range n {
				d.mustPost(envelope("messaging", textEvent("fast", fmt.Sprintf("f%d", i))))
			}
			// The other user is answered while the first waits.
			if got := d.out.waitDelivered(t, "fast", n); fmt.Sprint(got) != fmt.Sprint(want("f", n)) {
				t.Fatalf("fast got %q, want %q", got, want("f", n))
			}
			// More than the attempts a call used to make (4).
			poll.Until(t, "6 attempts for slow", func() bool {
				return len(d.graph.CallsTo(fakegraph.PathMessages)) >= n+6
			})
			if got := d.out.of("slow"); len(got) != 0 {
				t.Fatalf("slow got %q during the outage", got)
			}
			clear()
			if got := d.out.waitDelivered(t, "slow", n); fmt.Sprint(got) != fmt.Sprint(want("s", n)) {
				t.Fatalf("slow got %q, want %q once each, in order", got, want("s", n))
			}
			if !strings.Contains(d.logs.String(), `"class":"`+tt.class+`"`) {
				t.Errorf("no retry logged with class %s", tt.class)
			}
			if n := d.counts.get(gateway.ReasonExhausted) + d.counts.get(gateway.ReasonPermanent); n != 0 {
				t.Errorf("%d dead letters", n)
			}
		})
	}
}

// A rule's reply went out, then its pass failed for a while: the retries
// send only the pass.
func TestRetryRunsOnlyTheStepThatFailed(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{})
	fail := fakegraph.Fail(500, 1, 0)
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathPass}, fail, fail, fail, fail, fail)
	d.mustPost(envelope("messaging", textEvent("u1", "agent")))
	passes := d.graph.WaitCalls(t, fakegraph.PathPass, 6)
	if len(passes) != 6 {
		t.Fatalf("%d pass calls, want 6 (5 failed, then one that succeeded)", len(passes))
	}
	if got := d.graph.Texts("u1"); fmt.Sprint(got) != "[Connecting you.]" {
		t.Fatalf("texts %q, want the reply once", got)
	}
	poll.Until(t, "the owner saved", func() bool {
		st, err := d.gw.State().Load(context.Background(), conversationKey("u1"))
		return err == nil && st.Owner.AppID == zendeskID
	})
}

// A permanent error makes a dead letter with the rule, the step and the
// Graph error; the endpoints list it, replay it (only the remaining steps
// run) and drop it.
func TestPermanentErrorsAreDeadLettersThatCanBeReplayedOrDropped(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{})
	token := fakegraph.GraphError{Status: 400, Code: 190, Subcode: 463, Type: "OAuthException", FBTraceID: "TRACE190"}.Answer()
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathPass, User: "u1"}, token)
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages, User: "u2"}, fakegraph.GraphError{Status: 400, Code: 100, Subcode: 2018001, FBTraceID: "TRACE100"}.Answer())
	mid := "m_perm_1"
	d.mustPost(envelope("messaging", textEventMID("u1", mid, "agent")))
	d.mustPost(envelope("messaging", textEvent("u2", "secret words")))
	l := d.waitDeadLetters(2)
	if l.Count != 2 || len(l.DeadLetters) != 2 {
		t.Fatalf("list = %+v", l)
	}
	first, second := l.DeadLetters[0], l.DeadLetters[1]
	if first.ID > second.ID {
		first, second = second, first
	}
	if first.MID != mid || first.PageID != pageID || first.Kind != "message" || first.Rule != "agent" || first.Step != 1 ||
		first.StepKind != "pass_thread_control" || first.Attempts != 1 || first.Graph == nil ||
		first.Graph.Code != 190 || first.Graph.Subcode != 463 || first.Graph.FBTraceID != "TRACE190" || first.Graph.HTTPStatus != 400 ||
		first.Graph.Type != "OAuthException" || first.User == "u1" || first.User == "" || first.ReplayOf != 0 {
		t.Errorf("dead letter = %+v %+v", first, first.Graph)
	}
	if _, err := time.Parse(time.RFC3339, first.FailedAt); err != nil {
		t.Errorf("failed_at %q: %v", first.FailedAt, err)
	}
	if second.Rule != "echo" || second.Step != 0 || second.StepKind != "echo" || second.Graph.Code != 100 {
		t.Errorf("second dead letter = %+v", second)
	}
	logs := d.logs.String()
	for _, w := range []string{`"msg":"event dead-lettered"`, `"rule":"agent"`, `"step":1`, `"code":190`, `"subcode":463`, `"fbtrace_id":"TRACE190"`} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs lack %s", w)
		}
	}
	if strings.Contains(logs, "secret words") {
		t.Error("the user's text reached the logs")
	}
	if n := d.counts.get(gateway.ReasonPermanent); n != 2 {
		t.Errorf("%d dead letters counted, want 2", n)
	}

	// Replay the first: only the pass runs again.
	var rep struct {
		Replayed uint64 `json:"replayed"`
		Seq      uint64 `json:"seq"`
	}
	if code := d.admin(http.MethodPost, fmt.Sprintf("/-/deadletters/%d/replay", first.ID), &rep); code != http.StatusOK || rep.Replayed != first.ID || rep.Seq <= first.Seq {
		t.Fatalf("replay: %d %+v", code, rep)
	}
	d.graph.WaitCalls(t, fakegraph.PathPass, 2)
	poll.Until(t, "the replayed event completed", func() bool { return d.deadLetters().Count == 1 })
	if got := d.graph.Texts("u1"); fmt.Sprint(got) != "[Connecting you.]" {
		t.Errorf("texts to u1 %q: the reply was sent again", got)
	}
	// A redelivery of the replayed event is not run again: the sentinel
	// behind it in the lane is the next message.
	d.mustPost(envelope("messaging", textEventMID("u1", mid, "agent")))
	d.mustPost(envelope("messaging", textEvent("u1", "sentinel")))
	d.out.waitDelivered(t, "u1", 2)
	if got := d.graph.Texts("u1"); fmt.Sprint(got) != "[Connecting you. [bot] sentinel]" {
		t.Errorf("texts to u1 %q, want the reply once, then the sentinel", got)
	}

	// Unknown IDs.
	var e struct {
		Error string `json:"error"`
	}
	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/-/deadletters/999/replay"},
		{http.MethodDelete, "/-/deadletters/999"},
		{http.MethodPost, fmt.Sprintf("/-/deadletters/%d/replay", first.ID)},
		{http.MethodDelete, "/-/deadletters/x"},
	} {
		if code := d.admin(req.method, req.path, &e); code != http.StatusNotFound || e.Error == "" {
			t.Errorf("%s %s: %d %q, want 404 with an error", req.method, req.path, code, e.Error)
		}
	}
	// Drop the second.
	var dropped struct {
		Dropped uint64 `json:"dropped"`
	}
	if code := d.admin(http.MethodDelete, fmt.Sprintf("/-/deadletters/%d", second.ID), &dropped); code != http.StatusOK || dropped.Dropped != second.ID {
		t.Fatalf("drop: %d %+v", code, dropped)
	}
	if l := d.deadLetters(); l.Count != 0 {
		t.Fatalf("after the drop: %+v", l)
	}
	if got := d.graph.Texts("u2"); len(got) != 1 {
		t.Errorf("texts to u2 %q: a dropped event ran", got)
	}
	if got := d.graph.CallsTo(fakegraph.PathPass); len(got) != 2 {
		t.Errorf("%d pass calls: the redelivery ran", len(got))
	}
}

func TestReplayAndDropEveryDeadLetter(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{})
	bad := fakegraph.Fail(400, 100, 0)
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages}, bad, bad, bad)
	for _, u := range []string{"a", "b", "c"} {
		d.mustPost(envelope("messaging", textEvent(u, "x")))
	}
	d.waitDeadLetters(3)
	var all struct {
		Replayed []struct{ ID, Seq uint64 } `json:"replayed"`
		Count    int                        `json:"count"`
	}
	if code := d.admin(http.MethodPost, "/-/deadletters/replay", &all); code != http.StatusOK || all.Count != 3 || len(all.Replayed) != 3 {
		t.Fatalf("replay all: %d %+v", code, all)
	}
	for _, u := range []string{"a", "b", "c"} {
		d.out.waitDelivered(t, u, 1)
	}
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages}, bad, bad)
	d.mustPost(envelope("messaging", textEvent("a", "y")))
	d.mustPost(envelope("messaging", textEvent("b", "y")))
	d.waitDeadLetters(2)
	var dropped struct {
		Dropped int `json:"dropped"`
	}
	if code := d.admin(http.MethodDelete, "/-/deadletters", &dropped); code != http.StatusOK || dropped.Dropped != 2 {
		t.Fatalf("drop all: %d %+v", code, dropped)
	}
	if l := d.deadLetters(); l.Count != 0 {
		t.Fatalf("after drop all: %+v", l)
	}
}

// Facebook delivers the same message many times, at once and after it was
// handled, while the Graph API fails for a while: one reply.
func TestRedeliveryStormGetsOneReply(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{})
	clear := d.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Fail(503, 2, 0))
	body := envelope("messaging", textEventMID("storm", "m_storm", "hello"))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if code := d.post(body); code != http.StatusOK {
				t.Errorf("webhook answered %d", code)
			}
		})
	}
	wg.Wait()
	d.graph.WaitCalls(t, fakegraph.PathMessages, 6)
	clear()
	d.out.waitDelivered(t, "storm", 1)
	for range 5 {
		d.mustPost(body)
	}
	d.mustPost(envelope("messaging", textEvent("storm", "sentinel")))
	got := d.out.waitDelivered(t, "storm", 2)
	if fmt.Sprint(got) != "[[bot] hello [bot] sentinel]" {
		t.Fatalf("storm got %q, want one reply to the redelivered message, then the sentinel", got)
	}
}

// A panic while one event is handled dead-letters that event; the worker
// and the other users go on.
func TestPanicIsOneDeadLetter(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{panics: true, tweak: func(c *gateway.Config) { c.Workers = 1 }})
	d.mustPost(envelope("messaging", textEvent("p1", "PANIC please")))
	d.mustPost(envelope("messaging", textEvent("p1", "after")))
	d.mustPost(envelope("messaging", textEvent("p2", "other user")))
	if got := d.out.waitDelivered(t, "p2", 1); got[0] != "[bot] other user" {
		t.Fatalf("p2 got %q", got)
	}
	if got := d.out.waitDelivered(t, "p1", 1); got[0] != "[bot] after" {
		t.Fatalf("p1 got %q", got)
	}
	l := d.waitDeadLetters(1)
	dl := l.DeadLetters[0]
	if !strings.HasPrefix(dl.Error, "panic: ") || strings.Contains(dl.Error, "please") || dl.Rule != "echo" || dl.StepKind != "echo" {
		t.Errorf("dead letter = %+v", dl)
	}
	if d.counts.get(gateway.ReasonPanic) != 1 || d.counts.recovered != 1 {
		t.Errorf("counts = %+v", d.counts.deadLettered)
	}
	if strings.Contains(d.logs.String(), "PANIC please") {
		t.Error("the user's text reached the logs")
	}
}

// The store's bound on pending events, by count and by bytes, answers 503
// and loses nothing it accepted.
func TestFullStoreAnswers503AndLosesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(*gateway.Config)
		text  string
	}{
		{"count", func(c *gateway.Config) { c.QueueSize = 3 }, "small"},
		// Each event's body is a few hundred bytes.
		{"bytes", func(c *gateway.Config) { c.QueueBytes = 1000 }, strings.Repeat("y", 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDurable(t, durableOptions{tweak: tt.tweak})
			clear := d.graph.Fault(fakegraph.Match{}, fakegraph.Answer{Hang: true})
			accepted, full := 0, 0
			for i := range 5 {
				switch code := d.post(envelope("messaging", textEvent("q", fmt.Sprint(i, tt.text)))); code {
				case http.StatusOK:
					accepted++
				case http.StatusServiceUnavailable:
					full++
				default:
					t.Fatalf("status %d", code)
				}
			}
			if accepted == 0 || full == 0 {
				t.Fatalf("accepted %d, refused %d: want both", accepted, full)
			}
			clear()
			if got := d.out.waitDelivered(t, "q", accepted); len(got) != accepted {
				t.Fatalf("delivered %d of %d accepted", len(got), accepted)
			}
		})
	}
}

func conversationKey(user string) conversation.Key {
	return conversation.Key{PageID: pageID, UserID: user}
}

// Events accepted while the Graph API hangs, a shutdown whose grace period
// ends first, then a new gateway on the same data dir: every acknowledged
// event is delivered once, in each user's order, and a return deadline
// recorded before the restart still fires after it.
func TestRestartWithTheEmbeddedStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := fakeclock.New(fakeclock.Start)
	graph := fakegraph.New(t, fakegraph.Options{})
	open := func() store.Store {
		t.Helper()
		s, err := boltstore.Open(dir, boltstore.Options{Options: store.Options{Now: clock.Now}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	st1 := open()
	d1 := newDurable(t, durableOptions{graph: graph, store: st1, now: clock.Now, timeout: 5 * time.Second})
	// r1's thread goes to zendesk: taken back 30 minutes after it went quiet.
	d1.mustPost(envelope("messaging", textEvent("r1", "agent")))
	graph.WaitCalls(t, fakegraph.PathPass, 1)
	poll.Until(t, "r1's owner saved", func() bool {
		st, err := d1.gw.State().Load(context.Background(), conversationKey("r1"))
		return err == nil && st.Owner.AppID == zendeskID
	})

	clear := graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Answer{Hang: true})
	const n = 5
	for i := range n {
		d1.mustPost(envelope("messaging", textEvent("u1", fmt.Sprintf("a%d", i))))
		d1.mustPost(envelope("messaging", textEvent("u2", fmt.Sprintf("b%d", i))))
	}
	graph.WaitCalls(t, fakegraph.PathMessages, 3) // r1's reply, then u1's and u2's first, hanging
	grace, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d1.gw.Drain(grace); err != gateway.ErrGraceOver {
		t.Fatalf("Drain = %v, want ErrGraceOver", err)
	}
	if !strings.Contains(d1.logs.String(), "events left in the store") {
		t.Errorf("the shutdown did not say it left events in the store:\n%s", d1.logs.String())
	}
	d1.srv.Close()
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}
	clear()

	d2 := newDurable(t, durableOptions{graph: graph, store: open(), now: clock.Now})
	for _, u := range []struct{ user, prefix string }{{"u1", "a"}, {"u2", "b"}} {
		got := append(d1.out.of(u.user), d2.out.waitDelivered(t, u.user, n)...)
		if fmt.Sprint(got) != fmt.Sprint(want(u.prefix, n)) {
			t.Errorf("%s got %q, want %q: each once, in order", u.user, got, want(u.prefix, n))
		}
	}
	twice := 0
	for _, u := range []string{"u1", "u2"} {
		twice += len(graph.Texts(u)) - n
	}
	t.Logf("the fake Graph API saw %d messages twice (calls in flight at the shutdown)", twice)

	clock.Advance(31 * time.Minute)
	if got := d2.gw.CheckReturns(); got != 1 {
		t.Fatalf("CheckReturns after the restart queued %d returns, want 1", got)
	}
	takes := graph.WaitCalls(t, fakegraph.PathTake, 1)
	if takes[0].User != "r1" {
		t.Errorf("take_thread_control for %q, want r1", takes[0].User)
	}
}

// In the routing dialect a pass rides on the reply; while the Graph API
// fails, the retries send the reply with its thread_control, never the
// pass on its own.
func TestRetryKeepsACarriedPassOnItsMessage(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{rules: strings.Replace(durableRules, "handover: {return_after_idle: 30m}", "handover: {dialect: routing}", 1)})
	fail := fakegraph.Fail(500, 2, 0)
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages, User: "u1"}, fail, fail, fail, fail, fail)
	d.mustPost(envelope("messaging", textEvent("u1", "agent")))
	d.out.waitDelivered(t, "u1", 1)
	calls := d.graph.CallsTo(fakegraph.PathMessages)
	if len(calls) != 6 {
		t.Fatalf("%d message calls, want 6 (5 failed, then one that succeeded)", len(calls))
	}
	for _, c := range calls {
		ctl, _ := c.Body["thread_control"].(map[string]any)
		if c.Text() != "Connecting you." || ctl["control_type"] != "pass" || ctl["app_id"] != zendeskID {
			t.Errorf("call %d: text %q, thread_control %v", c.Seq, c.Text(), c.Body["thread_control"])
		}
	}
	if n := len(d.graph.CallsTo(fakegraph.PathPass)); n != 0 {
		t.Errorf("%d pass_thread_control calls, want none: the pass rides on the reply", n)
	}
	poll.Until(t, "the owner saved", func() bool {
		st, err := d.gw.State().Load(context.Background(), conversationKey("u1"))
		return err == nil && st.Owner.AppID == zendeskID
	})
}

// failingStore fails every write while broken.
type failingStore struct {
	store.Store
	mu     sync.Mutex
	broken bool
}

func (f *failingStore) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return fmt.Errorf("disk on fire")
	}
	return nil
}

func (f *failingStore) Append(ctx context.Context, evs []store.NewEvent) ([]store.Event, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Store.Append(ctx, evs)
}

func (f *failingStore) Stats(ctx context.Context) (store.Stats, error) {
	if err := f.fail(); err != nil {
		return store.Stats{}, err
	}
	return f.Store.Stats(ctx)
}

// A store that fails: webhooks get 503 (never 200) and /readyz says not
// ready until the store works again.
func TestFailingStoreAnswers503AndIsNotReady(t *testing.T) {
	t.Parallel()
	fs := &failingStore{Store: memstore.New(store.Options{}), broken: true}
	d := newDurable(t, durableOptions{store: fs})
	ready := func() int {
		resp, err := http.Get(d.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := d.post(envelope("messaging", textEvent("f1", "lost?"))); code != http.StatusServiceUnavailable {
		t.Fatalf("webhook with a failing store answered %d, want 503", code)
	}
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a failing store answered %d, want 503", code)
	}
	fs.mu.Lock()
	fs.broken = false
	fs.mu.Unlock()
	if code := ready(); code != http.StatusOK {
		t.Fatalf("/readyz once the store works answered %d, want 200", code)
	}
	d.mustPost(envelope("messaging", textEvent("f1", "again")))
	if got := d.out.waitDelivered(t, "f1", 1); got[0] != "[bot] again" {
		t.Fatalf("got %q", got)
	}
}

// A replay that the store cannot take now (too many events pending) is
// answered 503 and can be tried again.
func TestReplayIntoAFullStoreAnswers503(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{tweak: func(c *gateway.Config) { c.QueueSize = 1 }})
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Fail(400, 100, 0))
	d.mustPost(envelope("messaging", textEvent("r", "first")))
	dl := d.waitDeadLetters(1).DeadLetters[0]
	clear := d.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Answer{Hang: true})
	d.mustPost(envelope("messaging", textEvent("r", "second"))) // pending: the store is full
	var e struct {
		Error string `json:"error"`
	}
	path := fmt.Sprintf("/-/deadletters/%d/replay", dl.ID)
	if code := d.admin(http.MethodPost, path, &e); code != http.StatusServiceUnavailable || e.Error == "" {
		t.Fatalf("replay into a full store: %d %q, want 503 with an error", code, e.Error)
	}
	clear()
	d.out.waitDelivered(t, "r", 1)
	poll.UntilNil(t, "the replay accepted", func() error {
		if code := d.admin(http.MethodPost, path, nil); code != http.StatusOK {
			return fmt.Errorf("replay answered %d", code)
		}
		return nil
	})
	if got := d.out.waitDelivered(t, "r", 2); fmt.Sprint(got) != "[[bot] second [bot] first]" {
		t.Fatalf("r got %q", got)
	}
}

// At shutdown an event waiting for its next attempt is not waited for: its
// lane is left at once, and without a durable store it is logged by mid.
func TestDrainLeavesAWaitingEventAtOnce(t *testing.T) {
	t.Parallel()
	slow := retry.Backoff{Base: time.Hour, Cap: time.Hour, Floor: 1}
	d := newDurable(t, durableOptions{tweak: func(c *gateway.Config) {
		c.Retry = retry.Policy{Transient: slow, RateLimited: slow, Budget: 2 * time.Hour}
	}})
	d.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Fail(500, 2, 0))
	d.mustPost(envelope("messaging", textEventMID("w1", "m_wait", "hi")))
	d.mustPost(envelope("messaging", textEvent("w1", "behind it")))
	poll.Until(t, "the retry scheduled", func() bool { return strings.Contains(d.logs.String(), "step failed, will retry") })
	ctx, cancel := context.WithTimeout(context.Background(), poll.Timeout)
	defer cancel()
	if err := d.gw.Drain(ctx); err != nil {
		t.Fatalf("Drain = %v, want nil: a waiting lane is left, not waited for", err)
	}
	logs := d.logs.String()
	if !strings.Contains(logs, "events abandoned") || !strings.Contains(logs, `"m:m_wait"`) || !strings.Contains(logs, `"count":2`) {
		t.Errorf("the shutdown did not log the two abandoned events by mid:\n%s", logs)
	}
	if n := len(d.graph.CallsTo(fakegraph.PathMessages)); n != 1 {
		t.Errorf("%d message calls, want 1: the event behind the waiting one must not run", n)
	}
}
