package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/internal/redistest"
	"github.com/threadgate/threadgate/store"
)

// testLeaseTTL is short so that takeovers happen quickly (the tests never
// assert how quickly), and long enough that a replica starved of CPU on a
// loaded machine under the race detector still renews in time: the tests
// count on leases that change hands only when they make them.
const testLeaseTTL = time.Second

// replica is one in-process "replica": its own store (own connections) and
// consumer.
type replica struct {
	name string
	s    *Store
	c    *Consumer
}

// fleet starts replicas on one Redis and prefix.
type fleet struct {
	t      *testing.T
	url    string
	prefix string
	parts  int
}

func newFleet(t *testing.T, srv *redistest.Server, parts int) *fleet {
	return &fleet{t: t, url: srv.URL(), prefix: newPrefix(), parts: parts}
}

// store opens a store of the fleet without consuming.
func (f *fleet) store() *Store {
	f.t.Helper()
	s := open(f.t, f.url, Options{Partitions: f.parts, Prefix: f.prefix, Options: store.Options{Limits: store.Limits{MaxPending: 100000}}})
	f.t.Cleanup(func() { _ = s.Close() })
	return s
}

// join starts a replica; the test's cleanup stops it unless it was killed.
func (f *fleet) join(name string) *replica {
	f.t.Helper()
	s := f.store()
	c, err := s.Consume(context.Background(), ConsumerOptions{ID: name, LeaseTTL: testLeaseTTL})
	if err != nil {
		f.t.Fatalf("Consume: %v", err)
	}
	r := &replica{name: name, s: s, c: c}
	f.t.Cleanup(func() {
		if s.consuming.Load() {
			_ = c.Stop(context.Background())
		}
	})
	return r
}

// wantSplit waits until the replicas hold every partition once between
// them, each at most ceil(parts/len(replicas)).
func (f *fleet) wantSplit(rs ...*replica) {
	f.t.Helper()
	share := (f.parts + len(rs) - 1) / len(rs)
	poll.UntilNil(f.t, fmt.Sprintf("the %d partitions split over %d replicas", f.parts, len(rs)), func() error {
		var all []int
		held := map[string][]int{}
		for _, r := range rs {
			h := r.c.Held()
			held[r.name] = h
			if len(h) > share {
				return fmt.Errorf("%s holds %d partitions, more than its share %d: %v", r.name, len(h), share, held)
			}
			all = append(all, h...)
		}
		slices.Sort(all)
		if len(all) != f.parts || len(slices.Compact(all)) != f.parts {
			return fmt.Errorf("held: %v", held)
		}
		return nil
	})
}

func TestLeasesSplitEvenlyAsReplicasJoinAndLeave(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	f := newFleet(t, srv, 12)
	a := f.join("a")
	f.wantSplit(a)
	b := f.join("b")
	f.wantSplit(a, b)
	c := f.join("c")
	f.wantSplit(a, b, c)
	for _, r := range []*replica{a, b, c} {
		if n := len(r.c.Held()); n != 4 {
			t.Errorf("%s holds %d of 12 partitions with 3 replicas, want 4", r.name, n)
		}
	}
	if err := c.c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	f.wantSplit(a, b)
	if st := c.c.Stats(); st.Released == 0 {
		t.Errorf("stopped replica's stats %+v: no lease released", st)
	}
	if st := a.c.Stats(); st.TakenOver != 0 {
		t.Errorf("replica a's stats %+v: takeovers counted though every lease was released, none expired", st)
	}
}

// handled records, across replicas, the order in which events completed.
type handled struct {
	mu     sync.Mutex
	byLane map[string][]uint64
	count  int
}

func (h *handled) add(ev store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byLane[ev.Lane] = append(h.byLane[ev.Lane], ev.Seq)
	h.count++
}

// handle runs a replica's handler: each delivery in turn, in the order
// delivered (the test's events are few; the gateway runs lanes in
// parallel). hold, when it returns true for an event, records one step of
// progress and leaves it pending, as a replica busy with a hanging Graph
// call would.
func handle(t *testing.T, r *replica, h *handled, hold func(store.Event) bool, got chan<- store.Event) {
	for d := range r.c.Deliveries() {
		if d.Context().Err() != nil {
			continue // the partition was lost before the event started
		}
		got <- d.Event
		ctx := context.WithoutCancel(d.Context())
		if hold(d.Event) {
			if err := r.s.Progress(ctx, d.Event.Seq, store.Progress{Plan: []byte("plan"), StepsDone: 1}); err != nil {
				t.Errorf("%s: Progress of %d: %v", r.name, d.Event.Seq, err)
			}
			continue
		}
		err := r.s.Complete(ctx, d.Event.Seq, store.Completion{DedupKeys: []string{fmt.Sprint("m:", d.Event.Seq)}, DedupTTL: time.Hour})
		switch {
		case errors.Is(err, ErrLeaseLost):
		case err != nil:
			t.Errorf("%s: Complete of %d: %v", r.name, d.Event.Seq, err)
		default:
			h.add(d.Event)
		}
	}
}

func TestTakeoverOfAKilledReplicaResumesFromProgress(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	f := newFleet(t, srv, 12)
	a, b, c := f.join("a"), f.join("b"), f.join("c")
	f.wantSplit(a, b, c)

	h := &handled{byLane: map[string][]uint64{}}
	gotA, gotBC := make(chan store.Event, 1000), make(chan store.Event, 1000)
	var wg sync.WaitGroup
	wg.Go(func() { handle(t, a, h, func(store.Event) bool { return true }, gotA) })
	for _, r := range []*replica{b, c} {
		wg.Go(func() { handle(t, r, h, func(store.Event) bool { return false }, gotBC) })
	}

	// 40 users, three events each, appended through any replica.
	in := f.store()
	const users, perUser = 40, 3
	var appended []store.Event
	for i := range perUser {
		for u := range users {
			evs, err := in.Append(context.Background(), []store.NewEvent{{Lane: fmt.Sprintf("p/u%d", u), Body: []byte(fmt.Sprint(i))}})
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			appended = append(appended, evs...)
		}
	}
	heldByA := map[int]bool{}
	for _, p := range a.c.Held() {
		heldByA[p] = true
	}
	wantA := 0
	for _, ev := range appended {
		if heldByA[in.Partition(ev.Lane)] {
			wantA++
		}
	}
	if wantA == 0 {
		t.Fatal("no event fell in replica a's partitions; choose other lanes")
	}
	// a received the first event of each of its lanes and holds it (its
	// lanes' later events wait behind it in the gateway; here a holds
	// every event it gets); b and c complete theirs.
	poll.UntilNil(t, "replica a to hold its events and b, c to complete theirs", func() error {
		st, err := in.Stats(context.Background())
		if err != nil {
			return err
		}
		if st.Pending != wantA || len(gotA) != wantA {
			return fmt.Errorf("pending %d, delivered to a %d; want %d", st.Pending, len(gotA), wantA)
		}
		return nil
	})

	a.c.kill()
	f.wantSplit(b, c)
	poll.UntilNil(t, "b and c to complete a's events", func() error {
		st, err := in.Stats(context.Background())
		if err != nil {
			return err
		}
		if st.Pending != 0 {
			return fmt.Errorf("%d still pending", st.Pending)
		}
		return nil
	})
	if err := b.c.Stop(context.Background()); err != nil {
		t.Errorf("Stop b: %v", err)
	}
	if err := c.c.Stop(context.Background()); err != nil {
		t.Errorf("Stop c: %v", err)
	}
	wg.Wait()
	close(gotBC)

	// Every event of a's partitions reached b or c with a's progress.
	resumed := map[uint64]bool{}
	for ev := range gotBC {
		if heldByA[in.Partition(ev.Lane)] {
			resumed[ev.Seq] = true
			if ev.Progress.StepsDone != 1 || string(ev.Progress.Plan) != "plan" {
				t.Errorf("event %d taken over with progress %+v, want a's (plan, 1 step done)", ev.Seq, ev.Progress)
			}
		}
	}
	if len(resumed) != wantA {
		t.Errorf("%d of a's %d events handed to b or c", len(resumed), wantA)
	}
	if h.count != len(appended) {
		t.Errorf("%d events completed, want %d", h.count, len(appended))
	}
	for lane, got := range h.byLane {
		if !slices.IsSorted(got) {
			t.Errorf("lane %s completed out of order: %v", lane, got)
		}
	}
	if st := b.c.Stats().TakenOver + c.c.Stats().TakenOver; st == 0 {
		t.Error("no takeover counted after a was killed")
	}
}

func TestStaleOwnerIsFenced(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	f := newFleet(t, srv, 4)
	a := f.join("a")
	f.wantSplit(a)
	evs, err := a.s.Append(context.Background(), []store.NewEvent{{Lane: "p/u1", Body: []byte("x")}})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	da := <-a.c.Deliveries()
	if da.Event.Seq != evs[0].Seq {
		t.Fatalf("a got event %d, want %d", da.Event.Seq, evs[0].Seq)
	}
	if err := a.s.Complete(context.Background(), da.Event.Seq, store.Completion{}); !errors.Is(err, ErrUnfenced) {
		t.Errorf("Complete without the delivery's context: %v, want ErrUnfenced", err)
	}
	if _, err := a.s.Consume(context.Background(), ConsumerOptions{ID: "a2"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a second Consume on one store: %v, want ErrInvalid", err)
	}

	a.c.paused.Store(true) // a process frozen (a pause, a network split): no renewal, and it does not know
	b := f.join("b")
	var db Delivery
	poll.UntilNil(t, "b to take a's partition over and deliver the event", func() error {
		select {
		case db = <-b.c.Deliveries():
			return nil
		default:
			return fmt.Errorf("b holds %v", b.c.Held())
		}
	})
	if db.Event.Seq != da.Event.Seq {
		t.Fatalf("b got event %d, want %d", db.Event.Seq, da.Event.Seq)
	}

	stale := context.WithoutCancel(da.Context()) // as the gateway writes
	if err := a.s.Progress(stale, da.Event.Seq, store.Progress{StepsDone: 1}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("stale owner's Progress: %v, want ErrLeaseLost", err)
	}
	if err := a.s.Complete(stale, da.Event.Seq, store.Completion{}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("stale owner's Complete: %v, want ErrLeaseLost", err)
	}
	if err := a.s.DeadLetter(stale, da.Event.Seq, store.Failure{Error: "x"}, store.Completion{}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("stale owner's DeadLetter: %v, want ErrLeaseLost", err)
	}
	if err := b.s.Complete(context.WithoutCancel(db.Context()), db.Event.Seq, store.Completion{}); err != nil {
		t.Errorf("new owner's Complete: %v", err)
	}
	a.c.paused.Store(false) // a wakes up: it finds its leases gone
	poll.Until(t, "a to notice it lost its leases", func() bool { return a.c.Stats().Lost > 0 && da.Context().Err() != nil })
}

func TestRedisRestartFailsClearlyThenRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{AppendFsyncAlways: true})
	f := newFleet(t, srv, 4)
	r := f.join("a")
	f.wantSplit(r)
	ctx := context.Background()
	evs, err := r.s.Append(ctx, []store.NewEvent{{Lane: "p/u1", Body: []byte("before")}})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	<-r.c.Deliveries()

	srv.Stop()
	calls := map[string]func() error{
		"Append": func() error {
			_, err := r.s.Append(ctx, []store.NewEvent{{Lane: "p/u1", Body: []byte("during")}})
			return err
		},
		"Ping":      func() error { return r.s.Ping(ctx) },
		"Seen":      func() error { _, err := r.s.Seen(ctx, "m:x"); return err },
		"Stats":     func() error { _, err := r.s.Stats(ctx); return err },
		"LoadState": func() error { _, _, err := r.s.LoadState(ctx, "p/u1"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrUnavailable) || !Unavailable(err) {
			t.Errorf("%s while Redis is down: %v, want ErrUnavailable", name, err)
		}
	}
	poll.Until(t, "the consumer to give its leases up", func() bool { return len(r.c.Held()) == 0 })

	srv.Restart()
	poll.UntilNil(t, "Append to work again after the restart", func() error {
		_, err := r.s.Append(ctx, []store.NewEvent{{Lane: "p/u1", Body: []byte("after")}})
		return err
	})
	// The consumer takes its partitions back and delivers, from the
	// start, the event acknowledged before the outage, then the one after.
	var got []string
	poll.UntilNil(t, "the events before and after the outage delivered again", func() error {
		select {
		case d := <-r.c.Deliveries():
			if d.Context().Err() == nil {
				got = append(got, string(d.Event.Body))
			}
		default:
		}
		if len(got) < 2 {
			return fmt.Errorf("delivered %q", got)
		}
		return nil
	})
	if got[0] != "before" || got[1] != "after" || len(got) != 2 {
		t.Errorf("delivered %q after the restart, want [before after]", got)
	}
	if evs[0].Seq == 0 {
		t.Error("the event appended before the outage has no sequence number")
	}
}

// laneIn returns a lane of partition part.
func laneIn(t *testing.T, s *Store, part int) string {
	t.Helper()
	for i := range 10000 {
		if lane := fmt.Sprintf("p/u%d", i); s.Partition(lane) == part {
			return lane
		}
	}
	t.Fatalf("no lane of partition %d", part)
	return ""
}

func TestRebalanceDrainsDeliveredEvents(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	f := newFleet(t, srv, 4)
	s := f.store()
	a, err := s.Consume(context.Background(), ConsumerOptions{ID: "a", LeaseTTL: testLeaseTTL, DrainTimeout: time.Hour})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	ra := &replica{name: "a", s: s, c: a}
	f.wantSplit(ra)
	// Partition 3 is the first a gives up when b joins.
	evs, err := s.Append(context.Background(), []store.NewEvent{{Lane: laneIn(t, s, 3), Body: []byte("x")}})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	d := <-a.Deliveries()

	b := f.join("b")
	poll.UntilNil(t, "a to give up partition 2 and keep 3 while its event runs", func() error {
		if h := a.Held(); !slices.Equal(h, []int{0, 1, 3}) {
			return fmt.Errorf("a holds %v", h)
		}
		return nil
	})
	select {
	case db := <-b.c.Deliveries():
		t.Fatalf("b got event %d while a still handles it", db.Event.Seq)
	default:
	}
	if err := s.Complete(context.WithoutCancel(d.Context()), evs[0].Seq, store.Completion{}); err != nil {
		t.Fatalf("a's Complete while draining: %v", err)
	}
	f.wantSplit(ra, b)
	if d.Context().Err() == nil {
		t.Error("the delivery's context is not done after a gave its partition up")
	}
}

func TestFleetKeepsEachUsersOrder(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	f := newFleet(t, srv, 16)
	rs := []*replica{f.join("a"), f.join("b"), f.join("c")}
	f.wantSplit(rs...)
	h := &handled{byLane: map[string][]uint64{}}
	got := make(chan store.Event, 1000)
	var handlers sync.WaitGroup
	for _, r := range rs {
		handlers.Go(func() { handle(t, r, h, func(store.Event) bool { return false }, got) })
	}

	// 50 users write five messages each; each message reaches the next
	// replica round-robin, users at once.
	const users, perUser = 50, 5
	var writers sync.WaitGroup
	for u := range users {
		writers.Go(func() {
			for i := range perUser {
				r := rs[(u+i)%len(rs)]
				if _, err := r.s.Append(context.Background(), []store.NewEvent{{Lane: fmt.Sprintf("p/u%d", u), Body: []byte(fmt.Sprint(i))}}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	writers.Wait()
	poll.UntilNil(t, "every message completed", func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.count != users*perUser {
			return fmt.Errorf("%d of %d completed", h.count, users*perUser)
		}
		return nil
	})
	for _, r := range rs {
		if err := r.c.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
	handlers.Wait()
	close(got)
	bodies := map[string][]string{}
	for ev := range got {
		bodies[ev.Lane] = append(bodies[ev.Lane], string(ev.Body))
	}
	for u := range users {
		lane := fmt.Sprintf("p/u%d", u)
		if want := []string{"0", "1", "2", "3", "4"}; !slices.Equal(bodies[lane], want) {
			t.Errorf("%s handled %v, want %v once each in order", lane, bodies[lane], want)
		}
		if seqs := h.byLane[lane]; !slices.IsSorted(seqs) {
			t.Errorf("%s completed out of order: %v", lane, seqs)
		}
	}
}
