package metrics_test

import (
	"context"
	"errors"
	"testing"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/metrics"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/memstore"
)

func TestDeadLetterAndStoreMetrics(t *testing.T) {
	ctx := context.Background()
	m := metrics.New(metrics.Options{})
	st := memstore.New(store.Options{})
	if err := m.WatchStore(st); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchStore(st); !errors.Is(err, metrics.ErrStoreWatched) {
		t.Errorf("second WatchStore: %v, want ErrStoreWatched", err)
	}
	evs, err := st.Append(ctx, []store.NewEvent{{Lane: "p/a", Body: []byte("12345")}, {Lane: "p/b", Body: []byte("123")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeadLetter(ctx, evs[0].Seq, store.Failure{Error: "x"}, store.Completion{}); err != nil {
		t.Fatal(err)
	}
	m.DeadLettered(gateway.ReasonPermanent)
	m.DeadLettered(gateway.ReasonExhausted)
	m.DeadLettered("made-up")
	m.Recovered()
	checkSamples(t, scrape(t, m), []sample{
		{"threadgate_dead_letters_total", []string{"reason", "permanent"}, 1},
		{"threadgate_dead_letters_total", []string{"reason", "retries_exhausted"}, 1},
		{"threadgate_dead_letters_total", []string{"reason", "panic"}, 0},
		{"threadgate_dead_letters_total", []string{"reason", "other"}, 1},
		{"threadgate_panics_recovered_total", nil, 1},
		{"threadgate_store_pending_events", nil, 1},
		{"threadgate_store_pending_bytes", nil, float64(evs[1].Size())},
		{"threadgate_store_dead_letters", nil, 1},
		{"threadgate_store_dead_letters_evicted_total", nil, 0},
		{"threadgate_store_conversation_states", nil, 0},
	})
}
