package redisfleet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/gateway/redisfleet"
	"github.com/threadgate/threadgate/internal/redistest"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/redisstore"
)

// receive waits for n deliveries.
func receive(t *testing.T, src *redisfleet.Source, n int) []gateway.Delivery {
	t.Helper()
	var out []gateway.Delivery
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case d := <-src.Deliveries():
			out = append(out, d)
		case <-timeout:
			t.Fatalf("%d deliveries of %d", len(out), n)
		}
	}
	return out
}

// A lost lease found by one write cancels every delivery of the same
// holding at once, and only those.
func TestLostCancelsTheHoldingsDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	redis := redistest.Start(t, redistest.Options{})
	s, err := redisstore.Open(ctx, redis.URL(), redisstore.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Two lanes of each partition.
	var lanes []string
	count := map[int]int{}
	for i := 0; len(lanes) < 4; i++ {
		lane := fmt.Sprintf("p/u%d", i)
		if p := s.Partition(lane); count[p] < 2 {
			count[p]++
			lanes = append(lanes, lane)
		}
	}
	var evs []store.NewEvent
	for _, l := range lanes {
		evs = append(evs, store.NewEvent{Lane: l, Body: []byte("{}")})
	}
	if _, err := s.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	c, err := s.Consume(ctx, redisstore.ConsumerOptions{ID: "r1", LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	src := redisfleet.New(s, c)
	ds := receive(t, src, 4)
	for _, l := range lanes {
		if !src.Holds(l) {
			t.Errorf("the only replica does not hold %s", l)
		}
	}
	if src.Acquired() != 2 {
		t.Errorf("Acquired = %d, want 2", src.Acquired())
	}
	if src.Lost(ds[0].Context, errors.New("connection refused")) {
		t.Fatal("Lost is true for an error other than ErrLeaseLost")
	}
	lost := fmt.Errorf("complete: %w", redisstore.ErrLeaseLost)
	if !src.Lost(context.WithoutCancel(ds[0].Context), lost) {
		t.Fatal("Lost is false for ErrLeaseLost")
	}
	part := s.Partition(ds[0].Event.Lane)
	for _, d := range ds {
		cancelled := d.Context.Err() != nil
		if want := s.Partition(d.Event.Lane) == part; cancelled != want {
			t.Errorf("delivery of %s (partition %d): cancelled %v, want %v", d.Event.Lane, s.Partition(d.Event.Lane), cancelled, want)
		}
	}
}
