package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/poll"
)

func TestMemoryQueueKeepsOrderPerKeyAndRunsKeysInParallel(t *testing.T) {
	t.Parallel()
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
	q.Run(context.Background(), 8, func(_ context.Context, j Job) Verdict {
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
		return Done
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
	t.Parallel()
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
	q.Run(context.Background(), 2, func(context.Context, Job) Verdict { n.Add(1); return Done })
	if n.Load() != 3 {
		t.Fatalf("handled %d jobs after close, want the 3 accepted", n.Load())
	}
}

func TestMemoryQueueOldestAge(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	q := NewMemoryQueue(10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx, 2, func(context.Context, Job) Verdict { return Done }); close(done) }()
	cancel()
	poll.Until(t, "Run to return after its context ended", isClosed(done))
}

// isClosed returns a condition for poll.Until that holds once ch is closed.
func isClosed(ch <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

// A job that asks to be handled again parks its lane: the lane's later
// jobs wait behind it, other lanes go on, and no worker waits (one worker
// here); Close abandons a parked lane with its later jobs.
func TestMemoryQueueParksALaneWithoutHoldingAWorker(t *testing.T) {
	t.Parallel()
	q := NewMemoryQueue(10)
	if err := q.Push(Job{Key: "a", Value: "a1"}, Job{Key: "a", Value: "a2"}, Job{Key: "b", Value: "b1"}, Job{Key: "b", Value: "b2"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	tries := 0
	bDone := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, 1, func(_ context.Context, j Job) Verdict {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, j.Value.(string))
			switch j.Value {
			case "a1":
				tries++
				if tries == 1 {
					return RetryAfter(time.Hour) // parked until Close
				}
			case "b2":
				close(bDone)
			}
			return Done
		})
	}()
	poll.Until(t, "lane b handled while lane a is parked", isClosed(bDone))
	if n := q.Len(); n != 2 {
		t.Fatalf("Len = %d with lane a parked, want 2", n)
	}
	q.Close()
	poll.Until(t, "Run to return after Close with only a parked lane left", isClosed(done))
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[a1 b1 b2]" {
		t.Errorf("handled %v, want [a1 b1 b2] (a2 behind the parked a1)", order)
	}
	var abandoned []string
	for _, j := range q.Abandoned() {
		abandoned = append(abandoned, j.Value.(string))
	}
	if fmt.Sprint(abandoned) != "[a1 a2]" {
		t.Errorf("abandoned %v, want [a1 a2]", abandoned)
	}
}

// A parked lane is handled again, in order, once its wait is over.
func TestMemoryQueueRetriesAParkedJobFirst(t *testing.T) {
	t.Parallel()
	q := NewMemoryQueue(10)
	_ = q.Push(Job{Key: "a", Value: "a1"}, Job{Key: "a", Value: "a2"})
	var order []string
	q.Run(context.Background(), 2, func(_ context.Context, j Job) Verdict {
		order = append(order, j.Value.(string))
		if len(order) == 1 {
			return RetryAfter(time.Millisecond)
		}
		if j.Value == "a2" {
			q.Close()
		}
		return Done
	})
	if fmt.Sprint(order) != "[a1 a1 a2]" {
		t.Errorf("handled %v, want [a1 a1 a2]", order)
	}
}
