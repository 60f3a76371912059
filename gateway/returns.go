package gateway

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/store"
)

// This file takes threads back from other apps after they have been idle
// for handover.return_after_idle, and then runs the rules with
// `event: returned`.
//
// The gateway keeps, in memory, every conversation that another app held
// during the last 24 hours in a heap ordered by when the thread went quiet
// (a lower bound: later activity only makes it quieter later). A timer
// wakes up every Config.TimerInterval, reads the return_after_idle of the
// rules in force at that moment (so a reload changes the delay of the
// threads already waiting), and looks at the conversations at the top of
// the heap, at most maxReturnsPerTick of them. A conversation that is due
// is pushed onto the event queue like a webhook event of its user, so that
// it is handled in order with the user's own events; the worker checks
// again, takes the thread and runs the rules. The heap lives in memory; at
// start it is rebuilt from the states in the store (watchStoredStates), so
// that with a durable store a pending return still happens after a
// restart.

// DefaultTimerInterval is how often the gateway looks for threads to take
// back when Config.TimerInterval is zero.
const DefaultTimerInterval = 15 * time.Second

// maxReturnsPerTick bounds the conversations one tick looks at.
const maxReturnsPerTick = 256

// idleEntry is a conversation another app held, and a time at or before
// which its thread went quiet.
type idleEntry struct {
	conv  conversation.Key
	since time.Time
}

type idleHeap []idleEntry

func (h idleHeap) Len() int           { return len(h) }
func (h idleHeap) Less(i, j int) bool { return h[i].since.Before(h[j].since) }
func (h idleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idleHeap) Push(x any)        { *h = append(*h, x.(idleEntry)) }
func (h *idleHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// returnTimers holds the conversations to watch; each is in the heap at
// most once.
type returnTimers struct {
	mu      sync.Mutex
	heap    idleHeap
	watched map[conversation.Key]bool
	stop    chan struct{}
	once    sync.Once
}

func newReturnTimers() *returnTimers {
	return &returnTimers{watched: map[conversation.Key]bool{}, stop: make(chan struct{})}
}

// watch adds a conversation, quiet since then, unless it is watched.
func (t *returnTimers) watch(c conversation.Key, since time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.watched[c] {
		return
	}
	t.watched[c] = true
	heap.Push(&t.heap, idleEntry{conv: c, since: since})
}

// due pops, up to max, the conversations whose entry is at or before
// cutoff. They are no longer watched: the caller watches them again if it
// must.
func (t *returnTimers) due(cutoff time.Time, max int) []idleEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []idleEntry
	for len(out) < max && len(t.heap) > 0 && !t.heap[0].since.After(cutoff) {
		e := heap.Pop(&t.heap).(idleEntry)
		delete(t.watched, e.conv)
		out = append(out, e)
	}
	return out
}

// Len is the number of conversations watched.
func (t *returnTimers) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.heap)
}

func (t *returnTimers) close() { t.once.Do(func() { close(t.stop) }) }

// returnJob is a queued check of one conversation that may be due.
type returnJob struct {
	conv conversation.Key
}

// runTimers runs the return timer until ctx is done or the gateway drains.
func (g *Gateway) runTimers(ctx context.Context) {
	every := g.cfg.TimerInterval
	if every <= 0 {
		every = DefaultTimerInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastSweep := g.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.timers.stop:
			return
		case <-tick.C:
			g.CheckReturns()
			if now := g.now(); now.Sub(lastSweep) >= stateSweepEvery {
				g.expireState(now)
				lastSweep = now
			}
		}
	}
}

// State of a conversation is kept for stateRetention after anything last
// happened in it: longer than the platform's idle expiry, after which the
// thread is idle and nothing remembered would change a decision. Memory
// stays bounded by the users of the last day. The sweep runs every
// stateSweepEvery.
const (
	stateRetention  = conversation.IdleExpiry + time.Hour
	stateSweepEvery = 10 * time.Minute
)

// expireState forgets the conversations quiet for longer than
// stateRetention, and the dedup keys past their TTL.
func (g *Gateway) expireState(now time.Time) int {
	ctx := context.Background()
	n, err := g.states.Expire(ctx, now.Add(-stateRetention))
	if err != nil {
		g.log.Warn("could not forget quiet conversations", "error", err.Error())
	}
	if n > 0 {
		g.log.Debug("forgot quiet conversations", "count", n)
	}
	if _, err := g.store.ExpireDedup(ctx); err != nil {
		g.log.Warn("could not forget expired dedup keys", "error", err.Error())
	}
	return n
}

// watchStoredStates puts on the return timer every conversation whose
// stored state says another app holds the thread: the timer's heap does
// not outlive the process, the states may. With holds, only the
// conversations whose lane it holds.
func (g *Gateway) watchStoredStates(ctx context.Context, holds func(lane string) bool) error {
	n := 0
	err := g.store.ScanStates(ctx, func(s store.State) error {
		key, ok := parseStateKey(s.Key)
		if !ok || (holds != nil && !holds(s.Key)) {
			return nil
		}
		st, err := decodeState(s.Data)
		if err != nil {
			g.log.Warn("a stored conversation state cannot be read, skipped", "error", err.Error())
			return nil
		}
		if st.Owner.HeldByOther() {
			g.timers.watch(key, st.QuietSince())
			n++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gateway: reading the conversation states: %w", err)
	}
	if n > 0 {
		g.log.Info("watching threads other apps hold, from the stored states", "count", n)
	}
	return nil
}

// CheckReturns looks once for threads to take back, as the timer does every
// Config.TimerInterval: it queues a return for each thread that another app
// has held without a message for handover.return_after_idle (at most
// maxReturnsPerTick of them), forgets the threads the platform has made
// idle, and returns how many returns it queued.
//
// In fleet mode (Config.Source) it looks first, after the replica acquired
// lanes, for the threads to watch in the lanes it holds; it forgets the
// threads of the lanes it no longer holds (their holder watches them), and
// appends a return check to the lane of each thread due instead of queuing
// it, so that the thread's return is handled in order with its user's
// events and once across the fleet.
func (g *Gateway) CheckReturns() int {
	src := g.cfg.Source
	if src != nil {
		if a := src.Acquired(); g.acquired.Swap(a) != a {
			if err := g.watchStoredStates(context.Background(), src.Holds); err != nil {
				g.acquired.Store(0) // look again at the next tick
				g.log.Warn("could not read the conversation states to watch, will try again", "error", err.Error())
			}
		}
	}
	queued := 0
	now := g.now()
	s := g.settings(g.rules())
	due := g.timers.due(now.Add(-s.ReturnWait()), maxReturnsPerTick)
	for i, e := range due {
		if src != nil && !src.Holds(stateKey(e.conv)) {
			continue
		}
		st, err := g.states.Load(context.Background(), e.conv)
		if err != nil {
			g.log.Warn("could not load a watched conversation, will try again", "error", err.Error())
			g.timers.watch(e.conv, e.since)
			continue
		}
		verdict, quiet := conversation.CheckWatched(st, e.since, now, s)
		switch verdict {
		case conversation.Forget:
			continue
		case conversation.WatchAgain:
			g.timers.watch(e.conv, quiet) // someone wrote since: wait again
			continue
		}
		if src != nil {
			ctx, cancel := context.WithTimeout(context.Background(), returnAppendTimeout)
			err = g.appendReturnCheck(ctx, e.conv, st)
			cancel()
		} else {
			err = g.queue.Push(Job{Key: e.conv.PageID + "/" + e.conv.UserID, Value: &returnJob{conv: e.conv}, Enqueued: now})
		}
		if err != nil {
			// Keep this one and the rest for the next tick.
			for _, r := range due[i:] {
				g.timers.watch(r.conv, r.since)
			}
			if !errors.Is(err, ErrQueueClosed) {
				g.log.Warn("could not queue a thread's return, will try again", "error", err.Error())
			}
			return queued
		}
		queued++
	}
	return queued
}

// handleReturn takes a thread back, if it is still due, and runs the rules
// with `event: returned` (conversation.EventReturnDue). A return that is no
// longer due is not reported.
func (g *Gateway) handleReturn(ctx context.Context, j *returnJob) {
	h := g.handling(j.conv, string(engine.KindReturned), false)
	ev := conversation.Event{Kind: conversation.EventReturnDue, Rules: engine.Event{PageID: j.conv.PageID, SenderID: j.conv.UserID}}
	before, err := g.states.Load(ctx, j.conv)
	if err != nil {
		g.log.Warn("could not load a conversation to take its thread back", "error", err.Error())
		g.timers.watch(j.conv, h.start)
		return
	}
	st, effects := conversation.Handle(before, ev, h.start, h.settings)
	taking := false
	for _, e := range effects {
		if _, ok := e.(conversation.RunStep); ok {
			taking = true
		}
	}
	st = h.run(ctx, st, effects)
	if err := g.states.Save(context.WithoutCancel(ctx), j.conv, st, g.now()); err != nil {
		g.log.Error("could not save a conversation's state after its return", "error", err.Error())
	}
	for _, since := range h.watch {
		g.timers.watch(j.conv, since)
	}
	h.logHandled("ok")
	if taking {
		h.report(st)
	}
}
