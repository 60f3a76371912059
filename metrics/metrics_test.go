package metrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/metrics"
	"github.com/threadgate/threadgate/metrics/metricstest"
)

// scrape serves m's handler over HTTP and parses one scrape of it.
func scrape(t *testing.T, m *metrics.Metrics) *metricstest.Scrape {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	s, err := metricstest.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sample is one expected series value.
type sample struct {
	name   string
	labels []string
	want   float64
}

func checkSamples(t *testing.T, s *metricstest.Scrape, want []sample) {
	t.Helper()
	for _, w := range want {
		got, ok := s.Value(w.name, w.labels...)
		if !ok {
			t.Errorf("%s%v: no such series; series of %s: %q", w.name, w.labels, w.name, s.Series(w.name))
			continue
		}
		if got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
}

func TestObserver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		drive func(m *metrics.Metrics)
		want  []sample
	}{
		{
			name: "webhook outcomes, unknown outcome bucketed",
			drive: func(m *metrics.Metrics) {
				m.WebhookRequest(gateway.OutcomeAccepted)
				m.WebhookRequest(gateway.OutcomeAccepted)
				m.WebhookRequest(gateway.OutcomeBadSignature)
				m.WebhookRequest("no_such_outcome")
			},
			want: []sample{
				{"threadgate_webhook_requests_total", []string{"outcome", "accepted"}, 2},
				{"threadgate_webhook_requests_total", []string{"outcome", "bad_signature"}, 1},
				{"threadgate_webhook_requests_total", []string{"outcome", "queue_full"}, 0},
				{"threadgate_webhook_requests_total", []string{"outcome", "other"}, 1},
			},
		},
		{
			name: "events by kind and channel",
			drive: func(m *metrics.Metrics) {
				m.Event("message", false)
				m.Event("message", true)
				m.Event("message", true)
				m.Event("delivery", false)
				m.Event("something_new", false)
			},
			want: []sample{
				{"threadgate_events_total", []string{"kind", "message", "channel", "messaging"}, 1},
				{"threadgate_events_total", []string{"kind", "message", "channel", "standby"}, 2},
				{"threadgate_events_total", []string{"kind", "delivery", "channel", "messaging"}, 1},
				{"threadgate_events_total", []string{"kind", "postback", "channel", "messaging"}, 0},
				{"threadgate_events_total", []string{"kind", "other", "channel", "messaging"}, 1},
			},
		},
		{
			name:  "dedup hits",
			drive: func(m *metrics.Metrics) { m.DedupHit(); m.DedupHit(); m.DedupHit() },
			want:  []sample{{"threadgate_dedup_hits_total", nil, 3}},
		},
		{
			name: "rule fires",
			drive: func(m *metrics.Metrics) {
				m.RuleFired("greet")
				m.RuleFired("greet")
				m.RuleFired("human")
				m.RuleFired("")
			},
			want: []sample{
				{"threadgate_rule_fires_total", []string{"rule", "greet"}, 2},
				{"threadgate_rule_fires_total", []string{"rule", "human"}, 1},
				{"threadgate_rule_fires_total", []string{"rule", "other"}, 1},
			},
		},
		{
			name: "actions by kind and outcome",
			drive: func(m *metrics.Metrics) {
				m.Action("reply", "ok")
				m.Action("reply", "error")
				m.Action("pass_thread_control", "ok")
				m.Action("teleport", "ok")
				m.Action("reply", "maybe")
			},
			want: []sample{
				{"threadgate_actions_total", []string{"action", "reply", "outcome", "ok"}, 1},
				{"threadgate_actions_total", []string{"action", "reply", "outcome", "error"}, 1},
				{"threadgate_actions_total", []string{"action", "reply", "outcome", "other"}, 1},
				{"threadgate_actions_total", []string{"action", "pass_thread_control", "outcome", "ok"}, 1},
				{"threadgate_actions_total", []string{"action", "other", "outcome", "ok"}, 1},
				{"threadgate_actions_total", []string{"action", "take_thread_control", "outcome", "error"}, 0},
			},
		},
		{
			name: "handovers by target and direction",
			drive: func(m *metrics.Metrics) {
				m.Handover("agents", "pass")
				m.Handover("self", "returned")
				m.Handover("self", "returned")
				m.Handover("idle", "release")
				m.Handover("agents", "sideways")
			},
			want: []sample{
				{"threadgate_handovers_total", []string{"target", "agents", "direction", "pass"}, 1},
				{"threadgate_handovers_total", []string{"target", "self", "direction", "returned"}, 2},
				{"threadgate_handovers_total", []string{"target", "idle", "direction", "release"}, 1},
				{"threadgate_handovers_total", []string{"target", "agents", "direction", "other"}, 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New(metrics.Options{})
			tt.drive(m)
			checkSamples(t, scrape(t, m), tt.want)
		})
	}
}

func TestCappedLabels(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{MaxRuleNames: 2, MaxTargets: 1})
	m.InitRules([]string{"a", "b", "c"}) // c is beyond the cap: not created, not an overflow
	for _, r := range []string{"a", "b", "c", "d", "a", "\xff\xfe", strings.Repeat("x", 200)} {
		m.RuleFired(r)
	}
	m.Handover("agents", "pass")
	m.Handover("billing", "pass")
	s := scrape(t, m)
	checkSamples(t, s, []sample{
		{"threadgate_rule_fires_total", []string{"rule", "a"}, 2},
		{"threadgate_rule_fires_total", []string{"rule", "b"}, 1},
		// c and d are over the cap; invalid UTF-8 and a 200-byte name are refused.
		{"threadgate_rule_fires_total", []string{"rule", "other"}, 4},
		{"threadgate_metrics_label_overflow_total", []string{"label", "rule"}, 2},
		{"threadgate_handovers_total", []string{"target", "agents", "direction", "pass"}, 1},
		{"threadgate_handovers_total", []string{"target", "other", "direction", "pass"}, 1},
		{"threadgate_metrics_label_overflow_total", []string{"label", "target"}, 1},
	})
	if got, want := s.Series("threadgate_rule_fires_total"), []string{"rule=a", "rule=b", "rule=other"}; !slices.Equal(got, want) {
		t.Errorf("rule_fires series = %q, want %q", got, want)
	}
}

func TestInitRules(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{})
	m.InitRules([]string{"greet", "human"})
	m.RuleFired("human")
	checkSamples(t, scrape(t, m), []sample{
		{"threadgate_rule_fires_total", []string{"rule", "greet"}, 0},
		{"threadgate_rule_fires_total", []string{"rule", "human"}, 1},
	})
}

func TestObserveGraphCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		call messenger.Call
		code string
	}{
		{"ok", messenger.Call{Endpoint: "me/messages", Outcome: "ok", HTTPStatus: 200}, "none"},
		{"graph code", messenger.Call{Endpoint: "me/messages", Outcome: "error", HTTPStatus: 400, Code: 10, Subcode: 2018300}, "10"},
		{"permission code range", messenger.Call{Endpoint: "me/messages", Outcome: "error", HTTPStatus: 400, Code: 230}, "230"},
		{"throttled, retried", messenger.Call{Endpoint: "me/messages", Outcome: "retry", HTTPStatus: 400, Code: 613}, "613"},
		{"unknown code", messenger.Call{Endpoint: "me/messages", Outcome: "error", HTTPStatus: 400, Code: 12345}, "other"},
		{"network", messenger.Call{Endpoint: "me/messages", Outcome: "retry"}, "network"},
		{"5xx without body", messenger.Call{Endpoint: "me/messages", Outcome: "retry", HTTPStatus: 502}, "http_5xx"},
		{"429 without body", messenger.Call{Endpoint: "me/messages", Outcome: "retry", HTTPStatus: 429}, "http_429"},
		{"4xx without body", messenger.Call{Endpoint: "me/messages", Outcome: "error", HTTPStatus: 404}, "http_4xx"},
		{"unreadable 2xx", messenger.Call{Endpoint: "me/messages", Outcome: "error", HTTPStatus: 200}, "bad_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New(metrics.Options{})
			tt.call.Duration = 300 * time.Millisecond
			m.ObserveGraphCall(tt.call)
			retries := 0.0
			if tt.call.Outcome == "retry" {
				retries = 1
			}
			checkSamples(t, scrape(t, m), []sample{
				{"threadgate_graph_requests_total", []string{"endpoint", "me/messages", "outcome", tt.call.Outcome, "code", tt.code}, 1},
				{"threadgate_graph_request_duration_seconds_count", []string{"endpoint", "me/messages"}, 1},
				{"threadgate_graph_request_duration_seconds_sum", []string{"endpoint", "me/messages"}, 0.3},
				{"threadgate_graph_retries_total", []string{"endpoint", "me/messages"}, retries},
			})
		})
	}
}

func TestObserveGraphCallUnknownEndpoint(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{})
	m.ObserveGraphCall(messenger.Call{Endpoint: "1234567890/messages", Outcome: "ok", HTTPStatus: 200})
	m.ObserveGraphCall(messenger.Call{Endpoint: "me/pass_thread_control", Outcome: "weird", HTTPStatus: 200})
	checkSamples(t, scrape(t, m), []sample{
		{"threadgate_graph_requests_total", []string{"endpoint", "other", "outcome", "ok", "code", "none"}, 1},
		{"threadgate_graph_requests_total", []string{"endpoint", "me/pass_thread_control", "outcome", "other", "code", "bad_response"}, 1},
	})
}

func TestObserveReload(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{})
	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.ObserveReload(true, 3, "aaaa", t1)
	m.ObserveReload(false, 0, "", t1.Add(time.Minute))
	s := scrape(t, m)
	checkSamples(t, s, []sample{
		{"threadgate_rules_reloads_total", []string{"result", "success"}, 1},
		{"threadgate_rules_reloads_total", []string{"result", "failure"}, 1},
		{"threadgate_rules_last_reload_successful", nil, 0},
		{"threadgate_rules_last_reload_success_timestamp_seconds", nil, float64(t1.Unix())},
		{"threadgate_rules_loaded", nil, 3},
		{"threadgate_rules_info", []string{"hash", "aaaa"}, 1},
	})

	t2 := t1.Add(2 * time.Minute)
	m.ObserveReload(true, 5, "bbbb", t2)
	s = scrape(t, m)
	checkSamples(t, s, []sample{
		{"threadgate_rules_reloads_total", []string{"result", "success"}, 2},
		{"threadgate_rules_reloads_total", []string{"result", "failure"}, 1},
		{"threadgate_rules_last_reload_successful", nil, 1},
		{"threadgate_rules_last_reload_success_timestamp_seconds", nil, float64(t2.Unix())},
		{"threadgate_rules_loaded", nil, 5},
		{"threadgate_rules_info", []string{"hash", "bbbb"}, 1},
	})
	if got := s.Series("threadgate_rules_info"); !slices.Equal(got, []string{"hash=bbbb"}) {
		t.Errorf("rules_info series = %q, want only hash=bbbb", got)
	}
}

func TestObserveReloadHashLabel(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "unknown"},
		{"\xff", "unknown"},
		{strings.Repeat("ab", 40), strings.Repeat("ab", 32)},
		{"ok\xffhash", "okhash"},
	}
	for _, tt := range tests {
		m := metrics.New(metrics.Options{})
		m.ObserveReload(true, 1, tt.in, time.Unix(0, 0))
		if got := scrape(t, m).Series("threadgate_rules_info"); !slices.Equal(got, []string{"hash=" + tt.want}) {
			t.Errorf("hash %q: series %q, want hash=%s", tt.in, got, tt.want)
		}
	}
}

func TestWatchQueue(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(fakeclock.Start)
	m := metrics.New(metrics.Options{Now: clock.Now})
	now := clock.Now()
	q := gateway.NewMemoryQueue(10)
	if err := m.WatchQueue(q, 10); err != nil {
		t.Fatal(err)
	}
	checkSamples(t, scrape(t, m), []sample{
		{"threadgate_queue_depth", nil, 0},
		{"threadgate_queue_oldest_age_seconds", nil, 0},
		{"threadgate_queue_capacity", nil, 10},
	})
	err := q.Push(
		gateway.Job{Key: "a", Enqueued: now.Add(-90 * time.Second)},
		gateway.Job{Key: "a", Enqueued: now.Add(-10 * time.Second)},
		gateway.Job{Key: "b", Enqueued: now.Add(-30 * time.Second)},
	)
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, scrape(t, m), []sample{
		{"threadgate_queue_depth", nil, 3},
		{"threadgate_queue_oldest_age_seconds", nil, 90},
		{"threadgate_admission_waits_total", nil, 0},
	})
	// With a backlog of 3 full, a webhook waits for room, finds none and
	// is let in past it.
	q.SetBacklog(3)
	if n, err := q.Admit(context.Background(), 1, time.Millisecond); !errors.Is(err, gateway.ErrAdmitTimeout) || n != 0 {
		t.Fatalf("Admit with the backlog full = %d, %v", n, err)
	}
	checkSamples(t, scrape(t, m), []sample{
		{"threadgate_admission_waits_total", nil, 1},
		{"threadgate_admission_timeouts_total", nil, 1},
	})
	if err := m.WatchQueue(q, 10); !errors.Is(err, metrics.ErrQueueWatched) {
		t.Errorf("second WatchQueue: %v, want ErrQueueWatched", err)
	}
	if err := metrics.New(metrics.Options{}).WatchQueue(nil, 1); err == nil {
		t.Error("WatchQueue(nil): no error")
	}
}

func TestWatchQueueWithoutCapacity(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{})
	if err := m.WatchQueue(gateway.NewMemoryQueue(1), 0); err != nil {
		t.Fatal(err)
	}
	s := scrape(t, m)
	if !s.Has("threadgate_queue_depth") || s.Has("threadgate_queue_capacity") {
		t.Errorf("names = %q: want queue_depth and no queue_capacity", s.Names())
	}
}

func TestStandardCollectors(t *testing.T) {
	t.Parallel()
	s := scrape(t, metrics.New(metrics.Options{}))
	want := []string{"go_goroutines", "go_info", "go_build_info", "promhttp_metric_handler_requests_total"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_resident_memory_bytes", "process_start_time_seconds")
	}
	for _, n := range want {
		if !s.Has(n) {
			t.Errorf("no %s in the scrape", n)
		}
	}
}

// TestRegistriesAreIndependent checks that two Metrics do not share state
// (each has its own registry, none uses the global one).
func TestRegistriesAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := metrics.New(metrics.Options{}), metrics.New(metrics.Options{})
	a.DedupHit()
	checkSamples(t, scrape(t, b), []sample{{"threadgate_dedup_hits_total", nil, 0}})
	checkSamples(t, scrape(t, a), []sample{{"threadgate_dedup_hits_total", nil, 1}})
}
