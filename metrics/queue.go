package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/threadgate/threadgate/gateway"
)

// ErrQueueWatched is returned by WatchQueue when a queue is already watched.
var ErrQueueWatched = errors.New("metrics: a queue is already watched")

// WatchQueue exports the queue's depth (threadgate_queue_depth) and the age
// of its oldest waiting event (threadgate_queue_oldest_age_seconds), read at
// each scrape, and, when capacity is positive, the queue's bound
// (threadgate_queue_capacity), so that alerts can compare depth with it;
// for a queue that paces its intake (gateway.Paced), the webhooks that
// waited for room and for how long (threadgate_admission_*).
// One queue can be watched per Metrics.
func (m *Metrics) WatchQueue(q gateway.Queue, capacity int) error {
	if q == nil {
		return errors.New("metrics: watch queue: no queue")
	}
	m.queueMu.Lock()
	defer m.queueMu.Unlock()
	if m.queueWatched {
		return ErrQueueWatched
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "queue_depth",
			Help: "Events accepted and not yet handled.",
		}, func() float64 { return float64(q.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "queue_oldest_age_seconds",
			Help: "How long the oldest event still waiting in the queue has waited; 0 when none waits.",
		}, func() float64 { return q.OldestAge(m.now()).Seconds() }),
	}
	if p, ok := q.(gateway.Paced); ok {
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Name: "admission_waits_total",
				Help: "Webhooks that waited for room in the backlog (--backlog) before they were stored and answered.",
			}, func() float64 { return float64(p.Admissions().Waited) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Name: "admission_timeouts_total",
				Help: "Webhooks that found no room in the backlog within --admit-wait and were accepted past it.",
			}, func() float64 { return float64(p.Admissions().TimedOut) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Name: "admission_wait_seconds_total",
				Help: "Time webhooks waited for room in the backlog, summed.",
			}, func() float64 { return p.Admissions().WaitSeconds }),
		)
	}
	if capacity > 0 {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "queue_capacity",
			Help: "Events the queue holds at most; beyond it webhooks are answered 503.",
		}, func() float64 { return float64(capacity) }))
	}
	for i, c := range cs {
		if err := m.reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				m.reg.Unregister(done)
			}
			return fmt.Errorf("metrics: watch queue: %w", err)
		}
	}
	m.queueWatched = true
	return nil
}
