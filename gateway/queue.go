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

// Verdict is what a handler says of the job it handled: done, or to be
// handled again after a wait. While a job waits, the later jobs of its lane
// wait behind it, other lanes go on, and no worker is held.
type Verdict struct {
	// Again asks for the job to be handled again after Wait.
	Again bool
	// Wait is how long the lane waits before the job is handled again.
	Wait time.Duration
}

// Done is the verdict of a job that is finished.
var Done = Verdict{}

// RetryAfter is the verdict of a job to be handled again after d.
func RetryAfter(d time.Duration) Verdict { return Verdict{Again: true, Wait: max(d, 0)} }

// Queue schedules accepted events: one lane per key, the jobs of a lane one
// at a time and in order, different lanes in parallel. The gateway keeps
// the events themselves in a store.Store; a Queue only decides what runs
// when.
type Queue interface {
	// Push accepts all the jobs or none of them.
	Push(jobs ...Job) error
	// Run handles jobs with n workers until the queue is closed and empty or
	// ctx is done.
	Run(ctx context.Context, n int, handle func(context.Context, Job) Verdict)
	// Close stops accepting jobs; jobs already accepted are still handled,
	// except the lanes whose first job waits to be handled again: they are
	// abandoned at once (see Abandoned).
	Close()
	// Len is the number of jobs accepted and neither finished nor
	// abandoned.
	Len() int
	// OldestAge is how long the oldest waiting job has waited.
	OldestAge(now time.Time) time.Duration
	// Abandoned returns the jobs given up at Close (the lanes waiting for a
	// retry) and, once Run has returned because its context ended, every
	// job not finished.
	Abandoned() []Job
}

// MemoryQueue is a bounded in-memory Queue with one FIFO lane per key.
type MemoryQueue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	max       int
	size      int
	lanes     map[string]*lane
	ready     []*lane // lanes with jobs waiting and no worker on them, oldest first
	closed    bool
	abandoned []Job
}

type lane struct {
	key  string
	jobs []Job
	busy bool
	// parked is the timer of a lane whose first job waits to be handled
	// again; nil when the lane is not waiting.
	parked *time.Timer
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
		if !l.busy && l.parked == nil && len(l.jobs) == 0 {
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
func (q *MemoryQueue) Run(ctx context.Context, n int, handle func(context.Context, Job) Verdict) {
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
	if ctx.Err() != nil {
		q.mu.Lock()
		for _, l := range q.lanes {
			q.abandonLane(l)
		}
		q.mu.Unlock()
	}
}

func (q *MemoryQueue) work(ctx context.Context, handle func(context.Context, Job) Verdict) {
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
		l.busy = true
		q.mu.Unlock()
		v := handle(ctx, j)
		q.mu.Lock()
		l.busy = false
		switch {
		case v.Again && q.closed:
			// Shutting down: the job and its lane stay in the store for
			// the next start; running the lane's later jobs would break
			// the lane's order.
			q.abandonLane(l)
		case v.Again:
			l.parked = time.AfterFunc(v.Wait, func() { q.unpark(l) })
		default:
			l.jobs[0] = Job{}
			l.jobs = l.jobs[1:]
			q.size--
			if len(l.jobs) > 0 {
				q.ready = append(q.ready, l)
				q.cond.Signal()
			} else {
				delete(q.lanes, l.key)
			}
		}
		if q.closed && q.size == 0 {
			q.cond.Broadcast()
		}
	}
}

// unpark makes a lane whose wait is over ready again.
func (q *MemoryQueue) unpark(l *lane) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l.parked == nil || q.lanes[l.key] != l {
		return // abandoned meanwhile
	}
	l.parked = nil
	q.ready = append(q.ready, l)
	q.cond.Signal()
}

// abandonLane gives up every job of a lane; the caller holds q.mu.
func (q *MemoryQueue) abandonLane(l *lane) {
	if l.parked != nil {
		l.parked.Stop()
		l.parked = nil
	}
	q.abandoned = append(q.abandoned, l.jobs...)
	q.size -= len(l.jobs)
	l.jobs = nil
	delete(q.lanes, l.key)
}

// Close implements Queue.
func (q *MemoryQueue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for _, l := range q.lanes {
		if l.parked != nil {
			q.abandonLane(l)
		}
	}
	q.cond.Broadcast()
}

// Len implements Queue.
func (q *MemoryQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size
}

// Abandoned implements Queue.
func (q *MemoryQueue) Abandoned() []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Job(nil), q.abandoned...)
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
