// Package metrics counts what threadgate does, for Prometheus.
//
// A Metrics owns its own prometheus.Registry (never the global one) with the
// Go and process collectors on it. It is a gateway.Observer (webhooks,
// events, dedup hits, rule fires, actions, handovers), its ObserveGraphCall
// method is the Graph API client's Options.Observe hook, WatchQueue exports a
// queue's depth and the age of its oldest event, and ObserveReload records the
// outcome of each rules (re)load. Handler serves it all at /metrics.
//
// Every label value comes from a bounded set: fixed sets (webhook outcomes,
// event kinds, Graph endpoints and error codes, action kinds) map anything
// unknown to "other"; rule names and handover targets, which come from the
// rules file, are capped in number and the rest are counted as "other". No
// label ever carries a user ID, a message text or a secret.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every threadgate metric name.
const Namespace = "threadgate"

// Defaults for Options fields left zero.
const (
	DefaultMaxRuleNames = 1000
	DefaultMaxTargets   = 100
)

// Options configures a Metrics. Zero fields take the defaults.
type Options struct {
	// MaxRuleNames bounds the distinct values of the rule label; rules
	// seen after that many are counted under "other". Default 1000.
	MaxRuleNames int
	// MaxTargets bounds the distinct values of the handover target label
	// (app names from the rules file). Default 100.
	MaxTargets int
	// Now is the clock the queue's oldest-event age is measured with;
	// default time.Now. It must be the clock the gateway stamps jobs with.
	Now func() time.Time
}

// Metrics holds threadgate's metrics and the registry they are served from.
// It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	webhookRequests *prometheus.CounterVec
	events          *prometheus.CounterVec
	dedupHits       prometheus.Counter
	ruleFires       *prometheus.CounterVec
	actions         *prometheus.CounterVec
	handovers       *prometheus.CounterVec
	deadLettered    *prometheus.CounterVec
	panics          prometheus.Counter
	labelOverflow   *prometheus.CounterVec

	graphRequests *prometheus.CounterVec
	graphDuration *prometheus.HistogramVec
	graphRetries  *prometheus.CounterVec

	reloads        *prometheus.CounterVec
	lastReloadOK   prometheus.Gauge
	lastReloadTime prometheus.Gauge
	rulesLoaded    prometheus.Gauge
	rulesInfo      *prometheus.GaugeVec
	reloadMu       sync.Mutex // keeps rulesInfo's reset and set together

	ruleNames *boundedSet
	targets   *boundedSet

	// The children of the vectors counted for every event, found without
	// the vectors' own lookups (see children).
	webhookChild  *children[string, prometheus.Counter]
	eventChild    *children[[2]string, prometheus.Counter]
	ruleChild     *children[string, prometheus.Counter]
	actionChild   *children[[2]string, prometheus.Counter]
	graphChild    *children[[3]string, prometheus.Counter]
	durationChild *children[string, prometheus.Observer]

	queueMu      sync.Mutex
	queueWatched bool
	storeWatched bool
	fleetWatched bool
}

// New returns a Metrics with every metric registered on a new registry,
// together with the Go, process and build-info collectors.
func New(o Options) *Metrics {
	if o.MaxRuleNames <= 0 {
		o.MaxRuleNames = DefaultMaxRuleNames
	}
	if o.MaxTargets <= 0 {
		o.MaxTargets = DefaultMaxTargets
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{reg: prometheus.NewRegistry(), now: o.Now}

	m.webhookRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "webhook_requests_total",
		Help: "POST /webhook requests by outcome: accepted, bad_signature, too_large, malformed, wrong_object, queue_full, store_failed.",
	}, []string{"outcome"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "events_total",
		Help: "Events of accepted webhooks, by kind and channel (messaging or standby); redeliveries included.",
	}, []string{"kind", "channel"})
	m.dedupHits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "dedup_hits_total",
		Help: "Redelivered events skipped because they had already been handled.",
	})
	m.ruleFires = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rule_fires_total",
		Help: "Rules fired, by rule name (names beyond the cap are counted as \"other\").",
	}, []string{"rule"})
	m.actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "actions_total",
		Help: "Actions run, by action kind and outcome (ok or error).",
	}, []string{"action", "outcome"})
	m.handovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "handovers_total",
		Help: "Thread control moves, by target (an app name from the rules file, self, idle or other) and direction.",
	}, []string{"target", "direction"})
	m.deadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "dead_letters_total",
		Help: "Events that became dead letters, by reason: permanent (a permanent Graph error), retries_exhausted (--retry-for spent), panic, undecodable.",
	}, []string{"reason"})
	m.panics = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "panics_recovered_total",
		Help: "Panics recovered while an event was handled; each dead-lettered its event.",
	})
	m.labelOverflow = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "metrics_label_overflow_total",
		Help: "Observations counted under \"other\" because a capped label (rule, target) had reached its number of distinct values.",
	}, []string{"label"})

	m.graphRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "graph_requests_total",
		Help: "Graph API call attempts, by endpoint, outcome (ok, retry, error) and Graph error code (none, a code, network, http_4xx, http_429, http_5xx, bad_response, other).",
	}, []string{"endpoint", "outcome", "code"})
	m.graphDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "graph_request_duration_seconds",
		Help:    "Duration of Graph API call attempts, by endpoint.",
		Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20},
	}, []string{"endpoint"})
	m.graphRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "graph_retries_total",
		Help: "Graph API call attempts that failed and were retried, by endpoint.",
	}, []string{"endpoint"})

	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rules_reloads_total",
		Help: "Loads of the rules file (the first one included), by result: success or failure.",
	}, []string{"result"})
	m.lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "rules_last_reload_successful",
		Help: "1 if the last load of the rules file succeeded, 0 if it failed (the previous rules stay in force).",
	})
	m.lastReloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "rules_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful load of the rules file.",
	})
	m.rulesLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "rules_loaded",
		Help: "Number of rules in force.",
	})
	m.rulesInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "rules_info",
		Help: "Always 1; its hash label is the content hash of the rules in force.",
	}, []string{"hash"})

	m.ruleNames = newBoundedSet("rule", o.MaxRuleNames, m.labelOverflow)
	m.targets = newBoundedSet("target", o.MaxTargets, m.labelOverflow)

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		m.webhookRequests, m.events, m.dedupHits, m.ruleFires, m.actions, m.handovers, m.labelOverflow,
		m.deadLettered, m.panics,
		m.graphRequests, m.graphDuration, m.graphRetries,
		m.reloads, m.lastReloadOK, m.lastReloadTime, m.rulesLoaded, m.rulesInfo,
	)
	m.webhookChild = newChildren(func(o string) prometheus.Counter { return m.webhookRequests.WithLabelValues(o) })
	m.eventChild = newChildren(func(k [2]string) prometheus.Counter { return m.events.WithLabelValues(k[0], k[1]) })
	m.ruleChild = newChildren(func(r string) prometheus.Counter { return m.ruleFires.WithLabelValues(r) })
	m.actionChild = newChildren(func(k [2]string) prometheus.Counter { return m.actions.WithLabelValues(k[0], k[1]) })
	m.graphChild = newChildren(func(k [3]string) prometheus.Counter { return m.graphRequests.WithLabelValues(k[0], k[1], k[2]) })
	m.durationChild = newChildren(func(e string) prometheus.Observer { return m.graphDuration.WithLabelValues(e) })
	m.initSeries()
	return m
}

// initSeries creates the series of small fixed label sets at zero, so that
// rate() and increase() see the first increment and dashboards show zeros
// instead of "no data".
func (m *Metrics) initSeries() {
	for _, o := range webhookOutcomes.list {
		m.webhookRequests.WithLabelValues(o)
	}
	for _, k := range eventKinds.list {
		for _, ch := range []string{channelMessaging, channelStandby} {
			m.events.WithLabelValues(k, ch)
		}
	}
	for _, a := range actionKinds.list {
		for _, o := range []string{outcomeOK, outcomeError} {
			m.actions.WithLabelValues(a, o)
		}
	}
	for _, e := range graphEndpoints.list {
		m.graphRetries.WithLabelValues(e)
	}
	for _, r := range []string{resultSuccess, resultFailure} {
		m.reloads.WithLabelValues(r)
	}
	for _, l := range []string{"rule", "target"} {
		m.labelOverflow.WithLabelValues(l)
	}
	for _, r := range deadLetterReasons.list {
		m.deadLettered.WithLabelValues(r)
	}
}

// Registry returns the registry the metrics are served from, for callers
// that add collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format, and
// counts its own scrapes (promhttp_metric_handler_requests_total).
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	}))
}
