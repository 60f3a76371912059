package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/threadgate/threadgate/store"
)

// ErrStoreWatched is returned by WatchStore when a store is already
// watched.
var ErrStoreWatched = errors.New("metrics: a store is already watched")

// storeStatsTimeout bounds the store's answer at a scrape.
const storeStatsTimeout = 5 * time.Second

// WatchStore exports what the gateway's store holds, read at each scrape
// (one Stats call for all of them): the pending events and their bytes
// (threadgate_store_pending_events, threadgate_store_pending_bytes), the
// dead letters kept (threadgate_store_dead_letters) and those forgotten past
// the bound (threadgate_store_dead_letters_evicted_total), and the
// conversation states (threadgate_store_conversation_states). A scrape
// whose Stats call fails leaves the series out.
func (m *Metrics) WatchStore(s store.Store) error {
	if s == nil {
		return errors.New("metrics: watch store: no store")
	}
	m.queueMu.Lock()
	defer m.queueMu.Unlock()
	if m.storeWatched {
		return ErrStoreWatched
	}
	if err := m.reg.Register(&storeCollector{s: s}); err != nil {
		return fmt.Errorf("metrics: watch store: %w", err)
	}
	m.storeWatched = true
	return nil
}

var (
	storePendingDesc = prometheus.NewDesc(Namespace+"_store_pending_events",
		"Events accepted and neither handled nor dead-lettered (waiting, running or waiting for a retry).", nil, nil)
	storePendingBytesDesc = prometheus.NewDesc(Namespace+"_store_pending_bytes",
		"Bytes of the pending events, counted against --queue-bytes.", nil, nil)
	storeDeadLettersDesc = prometheus.NewDesc(Namespace+"_store_dead_letters",
		"Dead letters kept, waiting to be replayed or dropped.", nil, nil)
	storeEvictedDesc = prometheus.NewDesc(Namespace+"_store_dead_letters_evicted_total",
		"Dead letters forgotten because the store kept its most, oldest first.", nil, nil)
	storeStatesDesc = prometheus.NewDesc(Namespace+"_store_conversation_states",
		"Conversation states kept.", nil, nil)
)

// storeCollector reads a store's Stats once per scrape.
type storeCollector struct {
	s store.Store
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storePendingDesc, storePendingBytesDesc, storeDeadLettersDesc, storeEvictedDesc, storeStatesDesc} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storeStatsTimeout)
	defer cancel()
	st, err := c.s.Stats(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(storePendingDesc, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(storePendingBytesDesc, prometheus.GaugeValue, float64(st.PendingBytes))
	ch <- prometheus.MustNewConstMetric(storeDeadLettersDesc, prometheus.GaugeValue, float64(st.DeadLetters))
	ch <- prometheus.MustNewConstMetric(storeEvictedDesc, prometheus.CounterValue, float64(st.DeadLettersEvicted))
	ch <- prometheus.MustNewConstMetric(storeStatesDesc, prometheus.GaugeValue, float64(st.States))
}
