package gateway

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrQueueFull is returned by Queue.Push when accepting the jobs would exceed
// the queue's bound. The webhook answers 503 so that Facebook retries later.
var ErrQueueFull = errors.New("event queue is full")

// ErrQueueClosed is returned by Queue.Push once the queue is shutting down.
var ErrQueueClosed = errors.New("event queue is closed")

// Job is one event waiting to be handled.
type Job struct {
	// Key orders jobs: jobs with the same key are handled one at a time, in
	// the order pushed; jobs with different keys run in parallel.
	Key string
	// Value is the event.
	Value any
	// Enqueued is when the job was accepted.
	Enqueued time.Time
}

// Queue holds accepted events until a worker handles them. The in-memory
// MemoryQueue serves one process; a shared implementation can serve several
// replicas behind the same interface.
type Queue interface {
	// Push accepts all the jobs or none of them.
	Push(jobs ...Job) error
	// Run handles jobs with n workers until the queue is closed and empty or
	// ctx is done.
	Run(ctx context.Context, n int, handle func(context.Context, Job))
	// Close stops accepting jobs; jobs already accepted are still handled.
	Close()
	// Len is the number of jobs accepted and not yet handled.
	Len() int
	// OldestAge is how long the oldest waiting job has waited.
	OldestAge(now time.Time) time.Duration
}

// MemoryQueue is a bounded in-memory Queue with one FIFO lane per key.
type MemoryQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	max    int
	size   int
	lanes  map[string]*lane
	ready  []*lane // lanes with jobs waiting and no worker on them, oldest first
	closed bool
}

type lane struct {
	key  string
	jobs []Job
	busy bool
}

// NewMemoryQueue returns a queue that holds at most max jobs.
func NewMemoryQueue(max int) *MemoryQueue {
	if max <= 0 {
		max = 1
	}
	q := &MemoryQueue{max: max, lanes: map[string]*lane{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Push implements Queue.
func (q *MemoryQueue) Push(jobs ...Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrQueueClosed
	}
	if q.size+len(jobs) > q.max {
		return ErrQueueFull
	}
	for _, j := range jobs {
		l := q.lanes[j.Key]
		if l == nil {
			l = &lane{key: j.Key}
			q.lanes[j.Key] = l
		}
		if !l.busy && len(l.jobs) == 0 {
			q.ready = append(q.ready, l)
			// One worker per newly ready lane: waking them all would have
			// every idle worker race for one job and go back to sleep.
			q.cond.Signal()
		}
		l.jobs = append(l.jobs, j)
		q.size++
	}
	return nil
}

// Run implements Queue.
func (q *MemoryQueue) Run(ctx context.Context, n int, handle func(context.Context, Job)) {
	if n <= 0 {
		n = 1
	}
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { q.work(ctx, handle) })
	}
	wg.Wait()
}

func (q *MemoryQueue) work(ctx context.Context, handle func(context.Context, Job)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for len(q.ready) == 0 {
			if ctx.Err() != nil || (q.closed && q.size == 0) {
				return
			}
			q.cond.Wait()
		}
		if ctx.Err() != nil {
			return
		}
		l := q.ready[0]
		q.ready[0] = nil
		q.ready = q.ready[1:]
		j := l.jobs[0]
		l.jobs[0] = Job{}
		l.jobs = l.jobs[1:]
		l.busy = true
		q.mu.Unlock()
		handle(ctx, j)
		q.mu.Lock()
		l.busy = false
		q.size--
		if len(l.jobs) > 0 {
			q.ready = append(q.ready, l)
			q.cond.Signal()
		} else {
			delete(q.lanes, l.key)
		}
		if q.closed && q.size == 0 {
			q.cond.Broadcast()
		}
	}
}

// Close implements Queue.
func (q *MemoryQueue) Close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// Len implements Queue.
func (q *MemoryQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size
}

// OldestAge implements Queue.
func (q *MemoryQueue) OldestAge(now time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	var oldest time.Time
	for _, l := range q.lanes {
		if len(l.jobs) > 0 && (oldest.IsZero() || l.jobs[0].Enqueued.Before(oldest)) {
			oldest = l.jobs[0].Enqueued
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return now.Sub(oldest)
}
