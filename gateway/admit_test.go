package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/poll"
)

// admitted runs Admit in a goroutine and reports its answer on a channel.
func admitted(q *MemoryQueue, n int, wait time.Duration) <-chan error {
	out := make(chan error, 1)
	go func() {
		got, err := q.Admit(context.Background(), n, wait)
		if err == nil && got != n {
			err = fmt.Errorf("reserved %d, want %d", got, n)
		}
		out <- err
	}()
	return out
}

// waiters is how many admissions wait for room.
func (q *MemoryQueue) waiters() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// Past the backlog an admission waits until a job is done, and the
// admissions waiting are let in first come, first served; a job that waits
// for a retry takes no room.
func TestAdmitWaitsForRoomInOrder(t *testing.T) {
	t.Parallel()
	q := NewMemoryQueue(100)
	q.SetBacklog(2)
	release := make(chan Verdict)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx, 4, func(context.Context, Job) Verdict { return <-release })
	for i := range 2 {
		n, err := q.Admit(ctx, 1, time.Hour)
		if err != nil || n != 1 {
			t.Fatalf("admission %d within the backlog: %d, %v", i, n, err)
		}
		if err := q.Push(Job{Key: fmt.Sprint("u", i)}); err != nil {
			t.Fatal(err)
		}
		q.Release(n)
	}
	first := admitted(q, 1, time.Hour)
	poll.Until(t, "the first admission waiting", func() bool { return q.waiters() == 1 })
	second := admitted(q, 1, time.Hour)
	poll.Until(t, "the second admission waiting", func() bool { return q.waiters() == 2 })
	select {
	case err := <-first:
		t.Fatalf("admitted past the backlog: %v", err)
	default:
	}

	release <- Done // one job done: room for the first, not the second
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if q.waiters() != 1 {
		t.Fatalf("%d admissions waiting, want the second", q.waiters())
	}
	// The first admission's reservation and the job left fill the backlog;
	// that job, parked for a retry, takes no room.
	release <- RetryAfter(time.Hour)
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(poll.Timeout):
		t.Fatal("a job waiting for a retry kept the second admission out")
	}
	q.Release(1)
	q.Release(1)
}

// An admission that finds no room in time reserves nothing and says so; a
// closing queue lets every waiting admission in at once.
func TestAdmitGivesUpAfterItsWaitAndOnClose(t *testing.T) {
	t.Parallel()
	q := NewMemoryQueue(100)
	q.SetBacklog(1)
	if err := q.Push(Job{Key: "busy"}); err != nil { // never handled: no Run
		t.Fatal(err)
	}
	if n, err := q.Admit(context.Background(), 1, time.Millisecond); !errors.Is(err, ErrAdmitTimeout) || n != 0 {
		t.Fatalf("Admit past the backlog = %d, %v; want 0, ErrAdmitTimeout", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := q.Admit(ctx, 1, time.Hour); !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("Admit with a cancelled context = %d, %v", n, err)
	}
	if q.waiters() != 0 {
		t.Fatalf("%d admissions left waiting", q.waiters())
	}
	if st := q.Admissions(); st.Waited != 2 || st.TimedOut != 1 {
		t.Errorf("admission stats %+v, want 2 waited, 1 timed out", st)
	}
	waiting := admitted(q, 3, time.Hour)
	poll.Until(t, "the admission waiting", func() bool { return q.waiters() == 1 })
	q.Close()
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
}

// Without a backlog every admission is let in at once.
func TestAdmitWithoutBacklog(t *testing.T) {
	t.Parallel()
	q := NewMemoryQueue(100)
	for i := range 10 {
		if err := q.Push(Job{Key: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := q.Admit(context.Background(), 5, time.Millisecond); err != nil || n != 5 {
		t.Fatalf("Admit = %d, %v", n, err)
	}
}
