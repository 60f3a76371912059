package memstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/memstore"
	"github.com/threadgate/threadgate/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T, o store.Options) store.Store { return memstore.New(o) },
	})
}

// TestDedupKeysBounded checks that the keys closest to expiry are forgotten
// first once MaxDedupKeys is reached, so memory stays bounded whatever the
// TTL.
func TestDedupKeysBounded(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	s := memstore.New(store.Options{Limits: store.Limits{MaxDedupKeys: 3}, Now: clock.Now})
	defer s.Close()
	ttls := map[string]time.Duration{"a": 4 * time.Hour, "b": time.Hour, "c": 3 * time.Hour, "d": 2 * time.Hour}
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := s.Remember(ctx, k, ttls[k]); err != nil {
			t.Fatalf("Remember(%q): %v", k, err)
		}
	}
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		got, err := s.Seen(ctx, k)
		if err != nil || got != want {
			t.Errorf("Seen(%q) = %v, %v; want %v", k, got, err, want)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := memstore.New(store.Options{Limits: store.Limits{MaxPending: 1 << 30, MaxPendingBytes: 1 << 40}})
			defer s.Close()
			storetest.BenchmarkAppend(b, s, writers)
		})
	}
}
