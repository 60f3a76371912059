package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/syncbuf"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/metrics"
	"github.com/threadgate/threadgate/metrics/metricstest"
	"gopkg.in/yaml.v3"
)

// Secrets of the end-to-end tests: none may show in a log line or a label.
const (
	testToken     = "EAAGtestPageToken0123456789abcdef"
	testAppSecret = "0a1b2c3d4e5f-test-app-secret"
	testPageID    = "111222333"
	agentsAppID   = "263902037430900"
)

// textIs is a test condition: the message text equals a word.
type textIs string

func (c textIs) Key() string                  { return "text" }
func (c textIs) Holds(s *engine.Subject) bool { return s.Event.Text == string(c) }
func (c textIs) Describe() string             { return "text is " + string(c) }

// decodeAction compiles one action with the real actions registry.
func decodeAction(t *testing.T, kind, value string, c *actions.Compiler) actions.Action {
	t.Helper()
	spec, ok := actions.Lookup(kind)
	if !ok {
		t.Fatalf("no action kind %q", kind)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		t.Fatal(err)
	}
	a, errs := spec.Decode(doc.Content[0], c)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", kind, errs[0])
	}
	return a
}

// testRules is the rule set of the end-to-end tests:
//
//	greet: message "hi"    → reply
//	human: message "human" → reply, pass_thread_control to agents
//	fail:  message "boom"  → reply (the fake Graph API refuses it)
func testRules(t *testing.T) *engine.Set {
	apps := map[string]string{"agents": agentsAppID}
	c := &actions.Compiler{Apps: apps}
	msg := []engine.Kind{engine.KindMessage}
	rules := []*engine.Rule{
		{Name: "greet", Events: msg, Conditions: []engine.Condition{textIs("hi")},
			Actions: []actions.Action{decodeAction(t, "reply", "Hello!", c)}},
		{Name: "human", Events: msg, Conditions: []engine.Condition{textIs("human")},
			Actions: []actions.Action{decodeAction(t, "reply", "Connecting you.", c), decodeAction(t, "pass_thread_control", "agents", c)}},
		{Name: "fail", Events: msg, Conditions: []engine.Condition{textIs("boom")},
			Actions: []actions.Action{decodeAction(t, "reply", "You will not see this.", c)}},
	}
	return engine.NewSet(rules, apps, nil, engine.Handover{})
}

// newGraph starts a fake Graph API that answers like Facebook: it checks
// the token and the appsecret_proof, refuses every call to user-boom with
// code 100, fails the first call to user-flaky with an HTTP 500 without a
// Graph error, and accepts the rest.
func newGraph(t *testing.T) *fakegraph.Server {
	g := fakegraph.New(t, fakegraph.Options{Tokens: []string{testToken}, AppSecret: []byte(testAppSecret)})
	g.Fault(fakegraph.Match{User: "user-boom"},
		fakegraph.GraphError{Code: 100, Subcode: 2018001, Message: "(#100) No matching user found", FBTraceID: "Boom"}.Answer())
	g.Script(fakegraph.Match{User: "user-flaky"}, fakegraph.Answer{Status: http.StatusInternalServerError})
	return g
}

// message builds one message event of a webhook.
func message(user, mid, text string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":1767225600000,"message":{"mid":%q,"text":%q}}`,
		user, testPageID, mid, text)
}

// delivery builds one delivery event of a webhook.
func delivery(user string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":1767225600000,"delivery":{"mids":["m_out_1"],"watermark":1767225600000}}`,
		user, testPageID)
}

// webhook builds a page webhook with the messaging and standby events.
func webhook(messaging, standby []string) []byte {
	entry := fmt.Sprintf(`{"id":%q,"time":1767225600000`, testPageID)
	if len(messaging) > 0 {
		entry += `,"messaging":[` + strings.Join(messaging, ",") + `]`
	}
	if len(standby) > 0 {
		entry += `,"standby":[` + strings.Join(standby, ",") + `]`
	}
	return []byte(`{"object":"page","entry":[` + entry + `}]}`)
}

// post sends a webhook signed with secret ("" for no signature) and
// returns the status.
func post(t *testing.T, url string, body []byte, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", messenger.Sign([]byte(secret), body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestEndToEnd runs a real gateway with a real Graph API client against a
// fake Graph API, sends it known webhooks over HTTP and checks /metrics, the
// logs, and that no secret, user ID or text leaks into either.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	graph := newGraph(t)

	m := metrics.New(metrics.Options{})
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := messenger.NewClient(messenger.Options{
		BaseURL:     graph.BaseURL(),
		Tokens:      messenger.StaticToken(testToken),
		AppSecret:   []byte(testAppSecret),
		MaxAttempts: 3,
		BaseBackoff: time.Millisecond,
		MaxBackoff:  2 * time.Millisecond,
		Logger:      logger.With("component", "graph"),
		Observe:     m.ObserveGraphCall,
	})
	set := testRules(t)
	gw := gateway.New(gateway.Config{
		Rules:     func() *engine.Set { return set },
		Platform:  client,
		Secrets:   [][]byte{[]byte(testAppSecret)},
		QueueSize: 100,
		Workers:   4,
		Logger:    logger,
		Observer:  m,
	})
	if err := m.WatchQueue(gw.Queue(), 100); err != nil {
		t.Fatal(err)
	}
	loadedAt := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.ObserveReload(true, len(set.Rules()), "5d41402abc4b2a76", loadedAt)
	m.InitRules([]string{"greet", "human", "fail"})

	router := gw.Router()
	router.GET("/metrics", gin.WrapH(m.Handler()))
	srv := httptest.NewServer(router)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw.Start(ctx)

	requests := []struct {
		name   string
		body   []byte
		secret string
		status int
	}{
		{"two users", webhook([]string{message("user-a", "m1", "hi"), message("user-b", "m2", "human")}, nil), testAppSecret, 200},
		{"redelivery", webhook([]string{message("user-a", "m1", "hi")}, nil), testAppSecret, 200},
		{"graph refuses", webhook([]string{message("user-boom", "m3", "boom")}, nil), testAppSecret, 200},
		{"graph flaky", webhook([]string{message("user-flaky", "m4", "hi")}, nil), testAppSecret, 200},
		{"standby and delivery", webhook([]string{delivery("user-a")}, []string{message("user-c", "m5", "hello agent")}), testAppSecret, 200},
		{"bad signature", webhook([]string{message("user-x", "m6", "hi")}, nil), "not-the-secret", 401},
		{"unsigned", webhook([]string{message("user-x", "m7", "hi")}, nil), "", 401},
		{"not JSON", []byte("this is not json"), testAppSecret, 400},
		{"too large", bytes.Repeat([]byte(" "), gateway.MaxBodyBytes+1), testAppSecret, 413},
		{"wrong object", []byte(`{"object":"user","entry":[]}`), testAppSecret, 404},
	}
	for _, r := range requests {
		if got := post(t, srv.URL, r.body, r.secret); got != r.status {
			t.Errorf("%s: HTTP %d, want %d", r.name, got, r.status)
		}
	}
	drainCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := gw.Drain(drainCtx); err != nil {
		t.Fatalf("drain: %v", err)
	}

	s, err := metricstest.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, s, []sample{
		{"threadgate_webhook_requests_total", []string{"outcome", "accepted"}, 5},
		{"threadgate_webhook_requests_total", []string{"outcome", "bad_signature"}, 2},
		{"threadgate_webhook_requests_total", []string{"outcome", "malformed"}, 1},
		{"threadgate_webhook_requests_total", []string{"outcome", "too_large"}, 1},
		{"threadgate_webhook_requests_total", []string{"outcome", "wrong_object"}, 1},
		{"threadgate_webhook_requests_total", []string{"outcome", "queue_full"}, 0},

		{"threadgate_events_total", []string{"kind", "message", "channel", "messaging"}, 5},
		{"threadgate_events_total", []string{"kind", "message", "channel", "standby"}, 1},
		{"threadgate_events_total", []string{"kind", "delivery", "channel", "messaging"}, 1},
		{"threadgate_dedup_hits_total", nil, 1},

		{"threadgate_rule_fires_total", []string{"rule", "greet"}, 2},
		{"threadgate_rule_fires_total", []string{"rule", "human"}, 1},
		{"threadgate_rule_fires_total", []string{"rule", "fail"}, 1},

		{"threadgate_actions_total", []string{"action", "reply", "outcome", "ok"}, 3},
		{"threadgate_actions_total", []string{"action", "reply", "outcome", "error"}, 1},
		{"threadgate_actions_total", []string{"action", "pass_thread_control", "outcome", "ok"}, 1},
		{"threadgate_handovers_total", []string{"target", "agents", "direction", "pass"}, 1},

		{"threadgate_graph_requests_total", []string{"endpoint", "me/messages", "outcome", "ok", "code", "none"}, 3},
		{"threadgate_graph_requests_total", []string{"endpoint", "me/messages", "outcome", "error", "code", "100"}, 1},
		{"threadgate_graph_requests_total", []string{"endpoint", "me/messages", "outcome", "retry", "code", "http_5xx"}, 1},
		{"threadgate_graph_requests_total", []string{"endpoint", "me/pass_thread_control", "outcome", "ok", "code", "none"}, 1},
		{"threadgate_graph_retries_total", []string{"endpoint", "me/messages"}, 1},
		{"threadgate_graph_retries_total", []string{"endpoint", "me/pass_thread_control"}, 0},
		{"threadgate_graph_request_duration_seconds_count", []string{"endpoint", "me/messages"}, 5},
		{"threadgate_graph_request_duration_seconds_count", []string{"endpoint", "me/pass_thread_control"}, 1},

		{"threadgate_queue_depth", nil, 0},
		{"threadgate_queue_oldest_age_seconds", nil, 0},
		{"threadgate_queue_capacity", nil, 100},

		{"threadgate_rules_reloads_total", []string{"result", "success"}, 1},
		{"threadgate_rules_reloads_total", []string{"result", "failure"}, 0},
		{"threadgate_rules_last_reload_successful", nil, 1},
		{"threadgate_rules_last_reload_success_timestamp_seconds", nil, float64(loadedAt.Unix())},
		{"threadgate_rules_loaded", nil, 3},
		{"threadgate_rules_info", []string{"hash", "5d41402abc4b2a76"}, 1},
	})
	if got := s.Series("threadgate_graph_requests_total"); len(got) != 4 {
		t.Errorf("graph_requests series = %q, want the 4 above", got)
	}

	forbidden := []string{testToken, testAppSecret, "user-a", "user-b", "user-boom", "user-flaky", "user-c", "hello agent", "human"}
	// Label values: no secret, user ID or text ("human" is a rule name, a
	// label value by design; it is checked in the logs only).
	for name, fam := range s.Families {
		for _, mt := range fam.GetMetric() {
			for _, l := range mt.GetLabel() {
				for _, f := range forbidden[:len(forbidden)-2] {
					if strings.Contains(l.GetValue(), f) {
						t.Errorf("%s{%s=%q} carries %q", name, l.GetName(), l.GetValue(), f)
					}
				}
			}
		}
	}
	checkLogs(t, logs.String())
}

// checkLogs parses every log line as JSON, checks that no secret and no raw
// user ID appears, and checks the one "event handled" line per event.
func checkLogs(t *testing.T, out string) {
	t.Helper()
	for _, secret := range []string{testToken, testAppSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("a secret appears in the logs")
		}
	}
	outcomes := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("log line is not JSON: %v: %s", err, sc.Text())
			continue
		}
		if line["msg"] != "event handled" {
			continue
		}
		for _, k := range []string{"kind", "standby", "sender", "rule", "actions", "outcome", "duration_ms"} {
			if _, ok := line[k]; !ok {
				t.Errorf("event handled line without %q: %s", k, sc.Text())
			}
		}
		if sender, _ := line["sender"].(string); sender == "" || strings.HasPrefix(sender, "user-") {
			t.Errorf("sender %q is not a hash: %s", line["sender"], sc.Text())
		}
		o, _ := line["outcome"].(string)
		outcomes[o]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// user-a hi, user-b human, user-flaky hi: ok; user-boom: error; the
	// standby message: no rule. The redelivery is not an event handled.
	want := map[string]int{"ok": 3, "error": 1, "no_rule": 1}
	if fmt.Sprint(outcomes) != fmt.Sprint(want) {
		t.Errorf("event handled outcomes = %v, want %v", outcomes, want)
	}
}

// TestQueueFull fills a gateway whose workers are not started and checks
// the queue gauges and the queue_full outcome.
func TestQueueFull(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(fakeclock.Start)
	m := metrics.New(metrics.Options{Now: clock.Now})
	set := testRules(t)
	gw := gateway.New(gateway.Config{
		Rules:     func() *engine.Set { return set },
		Platform:  messenger.NewClient(messenger.Options{BaseURL: "http://127.0.0.1:1", Tokens: messenger.StaticToken(testToken)}),
		QueueSize: 2,
		Observer:  m,
		Now:       clock.Now,
	})
	if err := m.WatchQueue(gw.Queue(), 2); err != nil {
		t.Fatal(err)
	}
	router := gw.Router()
	router.GET("/metrics", gin.WrapH(m.Handler()))
	srv := httptest.NewServer(router)
	defer srv.Close()

	if got := post(t, srv.URL, webhook([]string{message("user-a", "q1", "hi")}, nil), ""); got != 200 {
		t.Errorf("first webhook: HTTP %d, want 200", got)
	}
	two := webhook([]string{message("user-b", "q2", "hi"), message("user-c", "q3", "hi")}, nil)
	if got := post(t, srv.URL, two, ""); got != 503 {
		t.Errorf("webhook over the bound: HTTP %d, want 503", got)
	}
	clock.Advance(42 * time.Second) // the event waits in the queue
	s, err := metricstest.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, s, []sample{
		{"threadgate_webhook_requests_total", []string{"outcome", "accepted"}, 1},
		{"threadgate_webhook_requests_total", []string{"outcome", "queue_full"}, 1},
		{"threadgate_queue_depth", nil, 1},
		{"threadgate_queue_oldest_age_seconds", nil, 42},
		{"threadgate_queue_capacity", nil, 2},
	})
}
