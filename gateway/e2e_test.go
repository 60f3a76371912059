package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/syncbuf"

	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

const (
	testSecret = "e2e-app-secret-value"
	testToken  = "e2e-page-token-value"
	testAppID  = "1000000000000001"
	pageID     = "111222333444555"
	zendeskID  = "200646160103180"
)

// harness is a gateway behind its router over HTTP, whose Graph API client
// talks to a fakegraph server that accepts only testToken with its
// appsecret_proof.
type harness struct {
	t     *testing.T
	graph *fakegraph.Server
	gw    *gateway.Gateway
	srv   *httptest.Server
	logs  *syncbuf.Buffer
	stop  context.CancelFunc
}

func loadExampleRules(t *testing.T) *engine.Set {
	t.Helper()
	f, err := rules.Load(filepath.Join("..", "examples", "rules.yaml"))
	if err != nil {
		t.Fatalf("examples/rules.yaml: %v", err)
	}
	return f.Set
}

func newHarness(t *testing.T, set *engine.Set, tweak func(*gateway.Config)) *harness {
	t.Helper()
	h := &harness{t: t, graph: fakegraph.New(t, fakegraph.Options{Tokens: []string{testToken}, AppSecret: []byte(testSecret)}), logs: &syncbuf.Buffer{}}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := messenger.NewClient(messenger.Options{
		BaseURL:     h.graph.BaseURL(),
		Tokens:      messenger.StaticToken(testToken),
		AppSecret:   []byte(testSecret),
		BaseBackoff: time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		Logger:      log,
	})
	cfg := gateway.Config{
		Rules:       func() *engine.Set { return set },
		Platform:    client,
		Secrets:     [][]byte{[]byte(testSecret)},
		VerifyToken: "verify-me",
		AppID:       testAppID,
		Logger:      log,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h.gw = gateway.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	h.gw.Start(ctx)
	h.srv = httptest.NewServer(h.gw.Router())
	t.Cleanup(func() {
		h.srv.Close()
		cancel()
		for _, secret := range []string{testSecret, testToken} {
			if strings.Contains(h.logs.String(), secret) {
				t.Errorf("a secret reached the logs:\n%s", h.logs.String())
			}
		}
	})
	return h
}

// post sends a signed webhook body and returns the status code.
func (h *harness) post(body string) int {
	h.t.Helper()
	return h.postSigned(body, messenger.Sign([]byte(testSecret), []byte(body)))
}

func (h *harness) postSigned(body, sig string) int {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhook", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && string(b) != "EVENT_RECEIVED" {
		h.t.Errorf("200 answer body = %q, want EVENT_RECEIVED", b)
	}
	return resp.StatusCode
}

func (h *harness) mustPost(body string) {
	h.t.Helper()
	if code := h.post(body); code != http.StatusOK {
		h.t.Fatalf("webhook answered %d, want 200", code)
	}
}

var midSeq atomic.Int64

func nextMID() string { return fmt.Sprintf("m_%d", midSeq.Add(1)) }

func envelope(channel string, events ...string) string {
	return fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":1764000000000,%q:[%s]}]}`, pageID, channel, strings.Join(events, ","))
}

func textEvent(user, text string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":1764000000001,"message":{"mid":%q,"text":%q}}`,
		user, pageID, nextMID(), text)
}

func textEventMID(user, mid, text string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":1764000000001,"message":{"mid":%q,"text":%q}}`,
		user, pageID, mid, text)
}

func passEvent(user, newOwner string, ts int) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"pass_thread_control":{"new_owner_app_id":%q,"previous_owner_app_id":%q,"metadata":"done"}}`,
		user, pageID, ts, newOwner, zendeskID)
}

// The seed's three verification cases, end to end against a fake Graph API.
func TestSeedCases(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), nil)

	// 1. A text is echoed "[bot] <text>".
	h.mustPost(envelope("messaging", textEvent("u1", "hello there")))
	poll.Until(t, "the echo", func() bool { return len(h.graph.Texts("u1")) == 1 })
	if got := h.graph.Texts("u1")[0]; got != "[bot] hello there" {
		t.Fatalf("echo = %q, want %q", got, "[bot] hello there")
	}

	// 2. "chat with agent" passes the thread to zendesk.
	h.mustPost(envelope("messaging", textEvent("u1", "  Chat with AGENT! ")))
	passes := h.graph.WaitCalls(t, fakegraph.PathPass, 1)
	if len(passes) != 1 || passes[0].Field("target_app_id") != zendeskID || passes[0].User != "u1" {
		t.Fatalf("pass_thread_control calls = %v, want one with target_app_id %s for u1", passes, zendeskID)
	}
	poll.Until(t, "the owner after the pass", func() bool {
		st, err := h.gw.State().Load(context.Background(), conversation.Key{PageID: pageID, UserID: "u1"})
		return err == nil && st.Owner == conversation.AppOwner(zendeskID)
	})
	sentBefore := len(h.graph.Texts("u1"))

	// While zendesk owns the thread, messages arrive on standby: no bot reply.
	h.mustPost(envelope("standby", textEvent("u1", "hello? anyone?")))

	// 3. Zendesk passes the thread back: the bot answers again. The hand-back
	// is queued behind the standby message (same user, in order), so once
	// its reply is out the standby message has been handled too.
	h.mustPost(envelope("messaging", passEvent("u1", testAppID, 1764000009000)))
	poll.Until(t, "the bot's answer to the hand-back", func() bool { return len(h.graph.Texts("u1")) == sentBefore+1 })
	if got := h.graph.Texts("u1"); strings.Contains(got[len(got)-1], "anyone?") {
		t.Fatalf("the bot answered a standby message: %q", got)
	}
	h.mustPost(envelope("messaging", textEvent("u1", "thanks")))
	poll.Until(t, "the echo after hand-back", func() bool { return len(h.graph.Texts("u1")) == sentBefore+2 })
	if got := h.graph.Texts("u1"); got[len(got)-1] != "[bot] thanks" {
		t.Fatalf("after hand-back got %q, want the echo", got[len(got)-1])
	}
}

func TestBatchOfEntriesAndEventsIsHandledWhole(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), nil)
	body := fmt.Sprintf(`{"object":"page","entry":[
		{"id":%q,"time":1,"messaging":[%s,%s]},
		{"id":%q,"time":2,"messaging":[%s],"standby":[%s]},
		{"id":%q,"time":3,"messaging":[{"sender":{"id":"b1"},"recipient":{"id":%q},"timestamp":5,"delivery":{"watermark":4}}]}]}`,
		pageID, textEvent("b1", "one"), textEvent("b2", "two"),
		pageID, textEvent("b3", "three"), textEvent("b4", "on standby"),
		pageID, pageID)
	h.mustPost(body)
	poll.Until(t, "three echoes", func() bool {
		return len(h.graph.Texts("b1"))+len(h.graph.Texts("b2"))+len(h.graph.Texts("b3")) == 3
	})
	for user, want := range map[string]string{"b1": "[bot] one", "b2": "[bot] two", "b3": "[bot] three"} {
		if got := h.graph.Texts(user); len(got) != 1 || got[0] != want {
			t.Errorf("%s got %q, want [%q]", user, got, want)
		}
	}
	// b4's standby message is handled (and answered by nothing): prove it
	// was processed by queueing a hand-back behind it.
	h.mustPost(envelope("messaging", passEvent("b4", testAppID, 99)))
	poll.Until(t, "b4's hand-back reply", func() bool { return len(h.graph.Texts("b4")) == 1 })
	if got := h.graph.Texts("b4")[0]; strings.Contains(got, "standby") {
		t.Errorf("standby message was answered: %q", got)
	}
}

func TestPerSenderOrderUnderParallelLoad(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), nil)
	h.graph.Fault(fakegraph.Match{}, fakegraph.Answer{Jitter: 2 * time.Millisecond})
	const users, each = 12, 15
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			for i := range each {
				if code := h.post(envelope("messaging", textEvent(fmt.Sprintf("p%d", u), fmt.Sprintf("msg %d", i)))); code != 200 {
					t.Errorf("status %d", code)
				}
			}
		})
	}
	wg.Wait()
	poll.Until(t, "every echo", func() bool { return len(h.graph.CallsTo(fakegraph.PathMessages)) == users*each })
	for u := range users {
		got := h.graph.Texts(fmt.Sprintf("p%d", u))
		for i, s := range got {
			if want := fmt.Sprintf("[bot] msg %d", i); s != want {
				t.Fatalf("user p%d: message %d is %q, want %q (order broken)", u, i, s, want)
			}
		}
	}
}

func TestRedeliveredMIDIsHandledOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), nil)
	body := envelope("messaging", textEventMID("r1", "m_same", "once"))
	h.mustPost(body)
	h.mustPost(body)
	h.mustPost(envelope("messaging", textEventMID("r1", "m_same", "once"), textEvent("r1", "sentinel")))
	poll.Until(t, "the sentinel's echo", func() bool {
		got := h.graph.Texts("r1")
		return len(got) > 0 && got[len(got)-1] == "[bot] sentinel"
	})
	if got := h.graph.Texts("r1"); len(got) != 2 || got[0] != "[bot] once" {
		t.Fatalf("sent %q, want the redelivered message answered once, then the sentinel", got)
	}
}

func TestWebhookRejections(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), nil)
	good := envelope("messaging", textEvent("s1", "hi"))
	big := `{"object":"page","entry":[],"pad":"` + strings.Repeat("x", gateway.MaxBodyBytes) + `"}`
	tests := []struct {
		name string
		body string
		sig  string
		want int
	}{
		{"signed", good, messenger.Sign([]byte(testSecret), []byte(good)), 200},
		{"unsigned", good, "", 401},
		{"wrong secret", good, messenger.Sign([]byte("not the secret"), []byte(good)), 401},
		{"signature of another body", good, messenger.Sign([]byte(testSecret), []byte(good+" ")), 401},
		{"too large", big, messenger.Sign([]byte(testSecret), []byte(big)), 413},
		{"not JSON", "not json", messenger.Sign([]byte(testSecret), []byte("not json")), 400},
		{"JSON of the wrong shape", `{"object":"page","entry":"x"}`, messenger.Sign([]byte(testSecret), []byte(`{"object":"page","entry":"x"}`)), 400},
		{"another object", `{"object":"user","entry":[]}`, messenger.Sign([]byte(testSecret), []byte(`{"object":"user","entry":[]}`)), 404},
		{"instagram", `{"object":"instagram","entry":[]}`, messenger.Sign([]byte(testSecret), []byte(`{"object":"instagram","entry":[]}`)), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.postSigned(tt.body, tt.sig); got != tt.want {
				t.Errorf("status = %d, want %d", got, tt.want)
			}
		})
	}
	poll.Until(t, "the signed message's echo", func() bool { return len(h.graph.Texts("s1")) == 1 })
	// Only the signed one was handled: a sentinel behind it shows nothing else came through.
	h.mustPost(envelope("messaging", textEvent("s1", "sentinel")))
	poll.Until(t, "sentinel", func() bool { return len(h.graph.Texts("s1")) == 2 })
}

func TestSubscriptionHandshake(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), nil)
	tests := []struct {
		query    string
		want     int
		wantBody string
	}{
		{"hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=987654321", 200, "987654321"},
		{"hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", 403, ""},
		{"hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1", 403, ""},
		{"", 403, ""},
	}
	for _, tt := range tests {
		resp, err := http.Get(h.srv.URL + "/webhook?" + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || (tt.wantBody != "" && string(b) != tt.wantBody) {
			t.Errorf("GET ?%s = %d %q, want %d %q", tt.query, resp.StatusCode, b, tt.want, tt.wantBody)
		}
	}
}

func TestGraphFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), nil)
	h.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages},
		fakegraph.GraphError{Status: 500, Code: 2, Message: "oops", FBTraceID: "Tretry"}.Answer(),
		fakegraph.GraphError{Status: 400, Code: 100, Message: "Invalid parameter", FBTraceID: "Tnoretry"}.Answer())

	// The first send gets a 500 (transient, retried), then code 100 (not
	// retried): two calls, then the client gives up.
	h.mustPost(envelope("messaging", textEvent("g1", "first")))
	poll.Until(t, "two attempts", func() bool { return len(h.graph.CallsTo(fakegraph.PathMessages)) == 2 })
	// A later message succeeds with one call: the code-100 error was not retried.
	h.mustPost(envelope("messaging", textEvent("g1", "second")))
	poll.Until(t, "third call", func() bool { return len(h.graph.CallsTo(fakegraph.PathMessages)) == 3 })
	if got := h.graph.Texts("g1"); len(got) != 3 || got[0] != "[bot] first" || got[1] != "[bot] first" || got[2] != "[bot] second" {
		t.Fatalf("calls = %q, want first twice (500 retried, then 100 not retried) and second once", got)
	}
	logs := h.logs.String()
	for _, want := range []string{"Tretry", "Tnoretry", `"code":100`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestShutdownDrainsQueuedEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), nil)
	h.graph.Fault(fakegraph.Match{}, fakegraph.Answer{Delay: 20 * time.Millisecond})
	const n = 30
	for i := range n {
		h.mustPost(envelope("messaging", textEvent("d1", fmt.Sprintf("m%d", i))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), poll.Timeout)
	defer cancel()
	if err := h.gw.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if got := len(h.graph.Texts("d1")); got != n {
		t.Fatalf("after drain %d of %d events reached the Graph API", got, n)
	}
	if code := h.post(envelope("messaging", textEvent("d1", "late"))); code != http.StatusServiceUnavailable {
		t.Fatalf("webhook after drain answered %d, want 503", code)
	}
}

func TestQueueFullAnswers503AndLosesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, loadExampleRules(t), func(c *gateway.Config) { c.QueueSize = 2; c.Workers = 1 })
	unblock := h.graph.Fault(fakegraph.Match{}, fakegraph.Answer{Hang: true})
	t.Cleanup(unblock)
	h.mustPost(envelope("messaging", textEvent("q1", "a")))
	// The worker is now blocked in the Graph call for "a"; fill the queue.
	h.graph.WaitCalls(t, "", 1)
	accepted := 1
	full := 0
	for i := range 5 {
		switch code := h.post(envelope("messaging", textEvent("q1", fmt.Sprintf("b%d", i)))); code {
		case 200:
			accepted++
		case 503:
			full++
		default:
			t.Fatalf("status %d", code)
		}
	}
	if full == 0 {
		t.Fatal("the queue never said it was full")
	}
	unblock()
	poll.Until(t, "every accepted event", func() bool { return len(h.graph.Texts("q1")) == accepted })
}
