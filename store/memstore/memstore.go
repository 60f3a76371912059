// Package memstore is a store.Store in memory: fast, bounded, and gone when
// the process ends. It serves the sandbox, tests, and a gateway started
// without --data-dir, which then loses what was pending on a crash.
package memstore

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/threadgate/threadgate/store"
)

// Store is an in-memory store.Store.
type Store struct {
	now    func() time.Time
	limits store.Limits

	mu           sync.Mutex
	closed       bool
	seq          uint64
	pending      map[uint64]*store.Event
	pendingBytes int64
	dead         map[uint64]*store.DeadLetter
	evicted      uint64
	dedup        dedupSet
	states       map[string]*stateEntry
	statesByAge  stateHeap
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New(o store.Options) *Store {
	return &Store{
		now:     o.Clock(),
		limits:  o.Limits.WithDefaults(),
		pending: map[uint64]*store.Event{},
		dead:    map[uint64]*store.DeadLetter{},
		dedup:   newDedupSet(),
		states:  map[string]*stateEntry{},
	}
}

// lock takes the mutex, or returns ErrClosed (with the mutex released).
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, events []store.NewEvent) ([]store.Event, error) {
	var size int64
	for i, e := range events {
		if e.Lane == "" {
			return nil, fmt.Errorf("append event %d: no lane: %w", i, store.ErrInvalid)
		}
		size += int64(len(e.Body))
	}
	if len(events) == 0 {
		return nil, nil
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if !s.fits(len(events), size) {
		return nil, store.ErrFull
	}
	now := s.now()
	out := make([]store.Event, len(events))
	for i, e := range events {
		s.seq++
		ev := &store.Event{Seq: s.seq, Lane: e.Lane, Body: slices.Clone(e.Body), Accepted: now}
		s.pending[ev.Seq] = ev
		out[i] = copyEvent(ev)
	}
	s.pendingBytes += size
	return out, nil
}

// fits reports whether n more events of size bytes stay within the limits.
func (s *Store) fits(n int, size int64) bool {
	return len(s.pending)+n <= s.limits.MaxPending && s.pendingBytes+size <= s.limits.MaxPendingBytes
}

// Pending implements store.Store.
func (s *Store) Pending(ctx context.Context) ([]store.Event, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]store.Event, 0, len(s.pending))
	for _, ev := range s.pending {
		out = append(out, copyEvent(ev))
	}
	slices.SortFunc(out, func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// Progress implements store.Store.
func (s *Store) Progress(ctx context.Context, seq uint64, p store.Progress) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ev := s.pending[seq]
	if ev == nil {
		return fmt.Errorf("progress of event %d: %w", seq, store.ErrNotFound)
	}
	ev.Progress = copyProgress(p)
	return nil
}

// Complete implements store.Store.
func (s *Store) Complete(ctx context.Context, seq uint64, c store.Completion) error {
	if err := store.CheckCompletion(c); err != nil {
		return fmt.Errorf("complete event %d: %w", seq, err)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ev := s.pending[seq]
	if ev == nil {
		return fmt.Errorf("complete event %d: %w", seq, store.ErrNotFound)
	}
	s.removePending(ev)
	s.apply(c)
	return nil
}

func (s *Store) removePending(ev *store.Event) {
	delete(s.pending, ev.Seq)
	s.pendingBytes -= ev.Size()
}

// apply saves the state and records the dedup keys of a completion.
func (s *Store) apply(c store.Completion) {
	if c.State != nil {
		s.saveState(*c.State)
	}
	for _, k := range c.DedupKeys {
		s.remember(k, c.DedupTTL)
	}
}

// DeadLetter implements store.Store.
func (s *Store) DeadLetter(ctx context.Context, seq uint64, f store.Failure, c store.Completion) error {
	if err := store.CheckCompletion(c); err != nil {
		return fmt.Errorf("dead-letter event %d: %w", seq, err)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ev := s.pending[seq]
	if ev == nil {
		return fmt.Errorf("dead-letter event %d: %w", seq, store.ErrNotFound)
	}
	s.removePending(ev)
	s.dead[seq] = &store.DeadLetter{ID: seq, Event: copyEvent(ev), Failure: copyFailure(f)}
	for len(s.dead) > s.limits.MaxDeadLetters {
		delete(s.dead, minKey(s.dead))
		s.evicted++
	}
	s.apply(c)
	return nil
}

// DeadLetters implements store.Store.
func (s *Store) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]store.DeadLetter, 0, len(s.dead))
	for _, d := range s.dead {
		out = append(out, store.DeadLetter{ID: d.ID, Event: copyEvent(&d.Event), Failure: copyFailure(d.Failure)})
	}
	slices.SortFunc(out, func(a, b store.DeadLetter) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Replay implements store.Store.
func (s *Store) Replay(ctx context.Context, id uint64) (store.Event, error) {
	if err := s.lock(ctx); err != nil {
		return store.Event{}, err
	}
	defer s.mu.Unlock()
	d := s.dead[id]
	if d == nil {
		return store.Event{}, fmt.Errorf("replay dead letter %d: %w", id, store.ErrNotFound)
	}
	if !s.fits(1, d.Event.Size()) {
		return store.Event{}, store.ErrFull
	}
	delete(s.dead, id)
	s.seq++
	ev := d.Event
	ev.Seq = s.seq
	ev.ReplayOf = id
	ev.Progress = store.ReplayProgress(ev.Progress)
	s.pending[ev.Seq] = &ev
	s.pendingBytes += ev.Size()
	return copyEvent(&ev), nil
}

// Drop implements store.Store.
func (s *Store) Drop(ctx context.Context, id uint64) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.dead[id] == nil {
		return fmt.Errorf("drop dead letter %d: %w", id, store.ErrNotFound)
	}
	delete(s.dead, id)
	return nil
}

// Seen implements store.Store.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	return s.dedup.seen(key, s.now().UnixNano()), nil
}

// Remember implements store.Store.
func (s *Store) Remember(ctx context.Context, key string, ttl time.Duration) error {
	if key == "" || ttl <= 0 {
		return fmt.Errorf("remember dedup key: empty key or no TTL: %w", store.ErrInvalid)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.remember(key, ttl)
	return nil
}

func (s *Store) remember(key string, ttl time.Duration) {
	s.dedup.remember(key, s.now().Add(ttl).UnixNano(), s.limits.MaxDedupKeys)
}

// ExpireDedup implements store.Store.
func (s *Store) ExpireDedup(ctx context.Context) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.dedup.expire(s.now().UnixNano()), nil
}

// LoadState implements store.Store.
func (s *Store) LoadState(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.lock(ctx); err != nil {
		return nil, false, err
	}
	defer s.mu.Unlock()
	e := s.states[key]
	if e == nil {
		return nil, false, nil
	}
	return slices.Clone(e.state.Data), true, nil
}

// SaveState implements store.Store.
func (s *Store) SaveState(ctx context.Context, st store.State) error {
	if st.Key == "" {
		return fmt.Errorf("save state: no key: %w", store.ErrInvalid)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.saveState(st)
	return nil
}

func (s *Store) saveState(st store.State) {
	st.Data = slices.Clone(st.Data)
	if e := s.states[st.Key]; e != nil {
		e.state = st
		heap.Fix(&s.statesByAge, e.index)
		return
	}
	e := &stateEntry{state: st}
	s.states[st.Key] = e
	heap.Push(&s.statesByAge, e)
	for len(s.states) > s.limits.MaxStates {
		old := heap.Pop(&s.statesByAge).(*stateEntry)
		delete(s.states, old.state.Key)
	}
}

// ScanStates implements store.Store. It calls fn on a snapshot taken
// before the first call, without holding the store's lock.
func (s *Store) ScanStates(ctx context.Context, fn func(store.State) error) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	snap := make([]store.State, 0, len(s.states))
	for _, e := range s.states {
		snap = append(snap, e.state) // Data is never changed in place, only replaced
	}
	s.mu.Unlock()
	for _, st := range snap {
		if err := ctx.Err(); err != nil {
			return err
		}
		st.Data = slices.Clone(st.Data)
		if err := fn(st); err != nil {
			return err
		}
	}
	return nil
}

// ExpireStates implements store.Store.
func (s *Store) ExpireStates(ctx context.Context, before time.Time) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for len(s.statesByAge) > 0 && s.statesByAge[0].state.LastActive.Before(before) {
		old := heap.Pop(&s.statesByAge).(*stateEntry)
		delete(s.states, old.state.Key)
		n++
	}
	return n, nil
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	if err := s.lock(ctx); err != nil {
		return store.Stats{}, err
	}
	defer s.mu.Unlock()
	return store.Stats{
		Pending:            len(s.pending),
		PendingBytes:       s.pendingBytes,
		DeadLetters:        len(s.dead),
		DeadLettersEvicted: s.evicted,
		States:             len(s.states),
	}, nil
}

// Close implements store.Store: it forgets everything.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.closed = true
	s.pending, s.dead, s.dedup, s.states = nil, nil, dedupSet{}, nil
	s.statesByAge = nil
	return nil
}

func minKey(m map[uint64]*store.DeadLetter) uint64 {
	first := true
	var lo uint64
	for k := range m {
		if first || k < lo {
			lo, first = k, false
		}
	}
	return lo
}

// copyEvent returns a copy of ev that shares no bytes with the store, so
// that callers can neither change the store nor see it change.
func copyEvent(ev *store.Event) store.Event {
	c := *ev
	c.Body = slices.Clone(ev.Body)
	c.Progress = copyProgress(ev.Progress)
	return c
}

func copyProgress(p store.Progress) store.Progress {
	p.Plan = slices.Clone(p.Plan)
	return p
}

func copyFailure(f store.Failure) store.Failure {
	if f.Graph != nil {
		g := *f.Graph
		f.Graph = &g
	}
	return f
}

type stateEntry struct {
	state store.State
	index int
}

// stateHeap orders states by last activity, least recent first.
type stateHeap []*stateEntry

func (h stateHeap) Len() int           { return len(h) }
func (h stateHeap) Less(i, j int) bool { return h[i].state.LastActive.Before(h[j].state.LastActive) }
func (h stateHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *stateHeap) Push(x any) {
	e := x.(*stateEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *stateHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
