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
//
// It also paces what comes in (Admit): the jobs it can run now (waiting or
// being handled, not those of lanes waiting for a retry) are kept near a
// backlog, so that a steady load the workers can absorb is answered a
// little later rather than queued until the store is full.
type MemoryQueue struct {
	mu    sync.Mutex
	cond  *sync.Cond
	max   int
	size  int
	lanes map[string]*lane
	ready laneFIFO // lanes with jobs waiting and no worker on them, oldest first
	// free keeps emptied lanes for reuse (at most maxFreeLanes), so that
	// a user's next event does not allocate a lane and its job slice.
	free      []*lane
	closed    bool
	abandoned []Job
	// parkedJobs counts the jobs of the lanes waiting for a retry: they
	// take no worker, so they do not count against the backlog.
	parkedJobs int
	// backlog is the most runnable jobs Admit lets in at once; 0 admits
	// every job at once.
	backlog int
	// reserved counts the jobs admitted and not pushed yet; waiting holds
	// the admissions waiting for room, first come first served.
	reserved int
	waiting  []*admission
	// stats counts the admissions that waited.
	stats AdmissionStats
}

// AdmissionStats counts the admissions that had to wait for room in the
// backlog, for metrics.
type AdmissionStats struct {
	// Waited counts the admissions that waited; TimedOut those of them
	// that found no room within their wait and were let in past the
	// backlog.
	Waited, TimedOut uint64
	// WaitSeconds is the time they waited, summed.
	WaitSeconds float64
}

// Paced is a Queue that paces what comes in: metrics read its counts.
type Paced interface {
	Admissions() AdmissionStats
}

// Admissions implements Paced.
func (q *MemoryQueue) Admissions() AdmissionStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats
}

// admission is one Admit waiting for room.
type admission struct {
	n     int
	ready chan struct{}
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
			l = q.newLane(j.Key)
			q.lanes[j.Key] = l
		}
		if !l.busy && l.parked == nil && len(l.jobs) == 0 {
			q.ready.push(l)
			// One worker per newly ready lane: waking them all would have
			// every idle worker race for one job and go back to sleep.
			q.cond.Signal()
		}
		l.jobs = append(l.jobs, j)
		q.size++
		if l.parked != nil {
			q.parkedJobs++
		}
	}
	return nil
}

// SetBacklog sets the most runnable jobs Admit lets in at once (0: no
// pacing). Call it before the queue is used.
func (q *MemoryQueue) SetBacklog(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.backlog = max(n, 0)
}

// ErrAdmitTimeout is returned by Admit when the wait for room ran out.
var ErrAdmitTimeout = errors.New("no room in the backlog in time")

// Admit waits, at most wait, until the queue has room for n more runnable
// jobs: fewer than the backlog are waiting or being handled. Admissions are
// served in the order they came. It returns the jobs it reserved, n, to
// give back with Release once they are pushed (or were not); or, when the
// wait runs out or ctx is done first, 0 and ErrAdmitTimeout or ctx's error:
// the caller may push all the same, past the backlog (the store's bound
// still holds).
func (q *MemoryQueue) Admit(ctx context.Context, n int, wait time.Duration) (reserved int, err error) {
	q.mu.Lock()
	if q.backlog == 0 || q.closed || (len(q.waiting) == 0 && q.runnable()+q.reserved < q.backlog) {
		q.reserved += n
		q.mu.Unlock()
		return n, nil
	}
	a := &admission{n: n, ready: make(chan struct{})}
	q.waiting = append(q.waiting, a)
	q.mu.Unlock()
	start := time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-a.ready:
		q.waited(start, nil)
		return n, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = ErrAdmitTimeout
	}
	q.mu.Lock()
	for i, w := range q.waiting {
		if w == a {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			q.mu.Unlock()
			q.waited(start, err)
			return 0, err
		}
	}
	q.mu.Unlock()
	q.waited(start, nil)
	return n, nil // admitted as the wait ended
}

// waited counts an admission that waited since start and ended with err.
func (q *MemoryQueue) waited(start time.Time, err error) {
	d := time.Since(start)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stats.Waited++
	q.stats.WaitSeconds += d.Seconds()
	if errors.Is(err, ErrAdmitTimeout) {
		q.stats.TimedOut++
	}
}

// Release gives back n jobs reserved by Admit.
func (q *MemoryQueue) Release(n int) {
	if n == 0 {
		return
	}
	q.mu.Lock()
	q.reserved -= n
	q.admit()
	q.mu.Unlock()
}

// runnable is the number of jobs waiting or being handled, but not waiting
// for a retry; the caller holds q.mu.
func (q *MemoryQueue) runnable() int { return q.size - q.parkedJobs }

// admit lets in the waiting admissions there is room for, in order; the
// caller holds q.mu. It is called whenever a job stops being runnable.
func (q *MemoryQueue) admit() {
	for len(q.waiting) > 0 && (q.closed || q.runnable()+q.reserved < q.backlog) {
		a := q.waiting[0]
		q.waiting[0] = nil
		q.waiting = q.waiting[1:]
		q.reserved += a.n
		close(a.ready)
	}
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
		for q.ready.len() == 0 {
			if ctx.Err() != nil || (q.closed && q.size == 0) {
				return
			}
			q.cond.Wait()
		}
		if ctx.Err() != nil {
			return
		}
		l := q.ready.pop()
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
			q.parkedJobs += len(l.jobs)
		default:
			l.popJob()
			q.size--
			if len(l.jobs) > 0 {
				q.ready.push(l)
				q.cond.Signal()
			} else {
				delete(q.lanes, l.key)
				q.freeLane(l)
			}
		}
		if len(q.waiting) > 0 {
			q.admit()
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
	q.parkedJobs -= len(l.jobs)
	q.ready.push(l)
	q.cond.Signal()
}

// abandonLane gives up every job of a lane; the caller holds q.mu.
func (q *MemoryQueue) abandonLane(l *lane) {
	if l.parked != nil {
		l.parked.Stop()
		l.parked = nil
		q.parkedJobs -= len(l.jobs)
	}
	q.abandoned = append(q.abandoned, l.jobs...)
	q.size -= len(l.jobs)
	l.jobs = nil
	delete(q.lanes, l.key)
	q.admit()
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
	q.admit() // every waiting admission: the webhooks are refused at once
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

// maxFreeLanes is the most emptied lanes a MemoryQueue keeps for reuse.
const maxFreeLanes = 1024

// newLane returns a lane for key, reused when one is free; the caller
// holds q.mu.
func (q *MemoryQueue) newLane(key string) *lane {
	if n := len(q.free); n > 0 {
		l := q.free[n-1]
		q.free[n-1] = nil
		q.free = q.free[:n-1]
		l.key = key
		return l
	}
	return &lane{key: key}
}

// freeLane keeps an emptied lane for reuse; the caller holds q.mu. Only a
// lane that is neither busy nor parked may be freed.
func (q *MemoryQueue) freeLane(l *lane) {
	if len(q.free) < maxFreeLanes && cap(l.jobs) <= 16 {
		l.key = ""
		q.free = append(q.free, l)
	}
}

// popJob removes a lane's first job. A short lane shifts its jobs down so
// that its slice keeps its capacity for the next ones.
func (l *lane) popJob() {
	n := len(l.jobs)
	if n <= 16 {
		copy(l.jobs, l.jobs[1:])
		l.jobs[n-1] = Job{}
		l.jobs = l.jobs[:n-1]
		return
	}
	l.jobs[0] = Job{}
	l.jobs = l.jobs[1:]
}

// laneFIFO is a first-in first-out ring of lanes that reuses its buffer.
type laneFIFO struct {
	buf  []*lane
	head int
	n    int
}

func (f *laneFIFO) len() int { return f.n }

func (f *laneFIFO) push(l *lane) {
	if f.n == len(f.buf) {
		grown := make([]*lane, max(16, 2*len(f.buf)))
		for i := range f.n {
			grown[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = grown, 0
	}
	f.buf[(f.head+f.n)%len(f.buf)] = l
	f.n++
}

func (f *laneFIFO) pop() *lane {
	l := f.buf[f.head]
	f.buf[f.head] = nil
	f.head = (f.head + 1) % len(f.buf)
	f.n--
	return l
}
