package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryQueueKeepsOrderPerKeyAndRunsKeysInParallel(t *testing.T) {
	q := NewMemoryQueue(10000)
	const keys, perKey = 20, 50
	var mu sync.Mutex
	got := map[string][]int{}
	var inFlight, maxInFlight atomic.Int32
	perKeyBusy := map[string]*atomic.Int32{}
	for k := range keys {
		perKeyBusy[fmt.Sprint(k)] = new(atomic.Int32)
	}
	for i := range perKey {
		var batch []Job
		for k := range keys {
			batch = append(batch, Job{Key: fmt.Sprint(k), Value: i})
		}
		if err := q.Push(batch...); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	q.Run(context.Background(), 8, func(_ context.Context, j Job) {
		if n := perKeyBusy[j.Key].Add(1); n != 1 {
			t.Errorf("key %s handled by %d workers at once", j.Key, n)
		}
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(100 * time.Microsecond) // give other workers a chance to overlap
		mu.Lock()
		got[j.Key] = append(got[j.Key], j.Value.(int))
		mu.Unlock()
		inFlight.Add(-1)
		perKeyBusy[j.Key].Add(-1)
	})
	for k, seq := range got {
		if len(seq) != perKey {
			t.Fatalf("key %s: handled %d jobs, want %d", k, len(seq), perKey)
		}
		for i, v := range seq {
			if v != i {
				t.Fatalf("key %s: job %d handled at position %d", k, v, i)
			}
		}
	}
	if len(got) != keys {
		t.Fatalf("handled %d keys, want %d", len(got), keys)
	}
	if maxInFlight.Load() < 2 {
		t.Errorf("different keys never ran in parallel (max in flight %d)", maxInFlight.Load())
	}
	if q.Len() != 0 {
		t.Errorf("Len after drain = %d", q.Len())
	}
}

func TestMemoryQueueBoundIsAllOrNothing(t *testing.T) {
	q := NewMemoryQueue(3)
	if err := q.Push(Job{Key: "a"}, Job{Key: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(Job{Key: "a"}, Job{Key: "c"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("push over the bound: err = %v, want ErrQueueFull", err)
	}
	if q.Len() != 2 {
		t.Fatalf("a refused push changed the queue: Len = %d", q.Len())
	}
	if err := q.Push(Job{Key: "c"}); err != nil {
		t.Fatalf("push up to the bound: %v", err)
	}
	q.Close()
	if err := q.Push(Job{Key: "d"}); !errors.Is(err, ErrQueueClosed) {
		t.Fatalf("push after close: err = %v", err)
	}
	var n atomic.Int32
	q.Run(context.Background(), 2, func(context.Context, Job) { n.Add(1) })
	if n.Load() != 3 {
		t.Fatalf("handled %d jobs after close, want the 3 accepted", n.Load())
	}
}

func TestMemoryQueueOldestAge(t *testing.T) {
	q := NewMemoryQueue(10)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := q.OldestAge(t0); got != 0 {
		t.Fatalf("empty queue age = %v", got)
	}
	_ = q.Push(Job{Key: "a", Enqueued: t0.Add(time.Second)}, Job{Key: "b", Enqueued: t0})
	if got := q.OldestAge(t0.Add(5 * time.Second)); got != 5*time.Second {
		t.Fatalf("OldestAge = %v, want 5s", got)
	}
}

func TestMemoryQueueStopsWhenContextEnds(t *testing.T) {
	q := NewMemoryQueue(10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx, 2, func(context.Context, Job) {}); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestMemoryDeduper(t *testing.T) {
	d := NewMemoryDeduper(2)
	steps := []struct {
		key  string
		want bool
	}{
		{"a", true}, {"a", false}, {"b", true}, {"c", true}, // c starts a new generation; a, b still remembered
		{"a", false}, {"b", false}, {"d", true}, {"e", true}, // e rotates: a, b forgotten
		{"a", true}, {"d", false},
	}
	for i, s := range steps {
		if got := d.FirstTime(s.key); got != s.want {
			t.Fatalf("step %d FirstTime(%q) = %v, want %v", i, s.key, got, s.want)
		}
	}
}
