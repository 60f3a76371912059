// Package storetest is the conformance suite of store.Store: every store
// (memory, the embedded file, Redis) runs it from its own tests, so that
// the gateway can rely on the same promises whichever store it is given.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/store"
)

// Factory makes the stores the suite tests.
type Factory struct {
	// New returns an empty store configured with o. The suite closes it.
	New func(t *testing.T, o store.Options) store.Store
	// Reopen closes s and opens what it kept again with o, as a restart
	// of the process would. Nil for a store that keeps nothing across
	// Close; the suite then skips the tests of durability.
	Reopen func(t *testing.T, s store.Store, o store.Options) store.Store
}

// Clock is a fake clock for store.Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at a fixed moment.
func NewClock() *Clock {
	return &Clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one test's store, clock and options.
type env struct {
	t     *testing.T
	f     Factory
	clock *Clock
	opts  store.Options
	s     store.Store
	ctx   context.Context
}

func newEnv(t *testing.T, f Factory, limits store.Limits) *env {
	t.Helper()
	e := &env{t: t, f: f, clock: NewClock(), ctx: context.Background()}
	e.opts = store.Options{Limits: limits, Now: e.clock.Now}
	e.s = f.New(t, e.opts)
	t.Cleanup(func() { _ = e.s.Close() })
	return e
}

// reopen restarts the store, or skips the test for a store without
// durability.
func (e *env) reopen() {
	e.t.Helper()
	if e.f.Reopen == nil {
		e.t.Skip("the store keeps nothing across Close")
	}
	e.s = e.f.Reopen(e.t, e.s, e.opts)
}

func (e *env) append(evs ...store.NewEvent) []store.Event {
	e.t.Helper()
	out, err := e.s.Append(e.ctx, evs)
	if err != nil {
		e.t.Fatalf("Append: %v", err)
	}
	return out
}

func (e *env) pending() []store.Event {
	e.t.Helper()
	p, err := e.s.Pending(e.ctx)
	if err != nil {
		e.t.Fatalf("Pending: %v", err)
	}
	return p
}

func (e *env) stats() store.Stats {
	e.t.Helper()
	st, err := e.s.Stats(e.ctx)
	if err != nil {
		e.t.Fatalf("Stats: %v", err)
	}
	return st
}

func (e *env) seen(key string) bool {
	e.t.Helper()
	ok, err := e.s.Seen(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Seen(%q): %v", key, err)
	}
	return ok
}

func (e *env) state(key string) (string, bool) {
	e.t.Helper()
	b, ok, err := e.s.LoadState(e.ctx, key)
	if err != nil {
		e.t.Fatalf("LoadState(%q): %v", key, err)
	}
	return string(b), ok
}

func ev(lane, body string) store.NewEvent { return store.NewEvent{Lane: lane, Body: []byte(body)} }

// seqs returns the sequence numbers of events.
func seqs(evs []store.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// sameEvent reports how got differs from want, "" when they are the same.
func sameEvent(got, want store.Event) string {
	switch {
	case got.Seq != want.Seq:
		return fmt.Sprintf("seq %d, want %d", got.Seq, want.Seq)
	case got.Lane != want.Lane:
		return fmt.Sprintf("lane %q, want %q", got.Lane, want.Lane)
	case !bytes.Equal(got.Body, want.Body):
		return fmt.Sprintf("body %q, want %q", got.Body, want.Body)
	case !got.Accepted.Equal(want.Accepted):
		return fmt.Sprintf("accepted %v, want %v", got.Accepted, want.Accepted)
	case got.ReplayOf != want.ReplayOf:
		return fmt.Sprintf("replay of %d, want %d", got.ReplayOf, want.ReplayOf)
	}
	return sameProgress(got.Progress, want.Progress)
}

func sameProgress(got, want store.Progress) string {
	if !bytes.Equal(got.Plan, want.Plan) || got.StepsDone != want.StepsDone || got.Attempts != want.Attempts ||
		!got.RetryingSince.Equal(want.RetryingSince) || !got.NotBefore.Equal(want.NotBefore) || got.LastError != want.LastError {
		return fmt.Sprintf("progress %+v, want %+v", got, want)
	}
	return ""
}

func (e *env) wantPending(want []store.Event) {
	e.t.Helper()
	got := e.pending()
	if len(got) != len(want) {
		e.t.Fatalf("Pending returned seqs %v, want %v", seqs(got), seqs(want))
	}
	for i := range want {
		if d := sameEvent(got[i], want[i]); d != "" {
			e.t.Errorf("pending event %d: %s", i, d)
		}
	}
}

// Run runs the conformance suite on the stores f makes.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		run  func(t *testing.T, f Factory)
	}{
		{"AppendKeepsEventsInOrder", testAppendKeepsEventsInOrder},
		{"AppendRefusesInvalidEvents", testAppendRefusesInvalidEvents},
		{"AppendAllOrNoneAtTheBounds", testAppendAllOrNoneAtTheBounds},
		{"Progress", testProgress},
		{"Complete", testComplete},
		{"DeadLetterReplayDrop", testDeadLetterReplayDrop},
		{"DeadLettersBounded", testDeadLettersBounded},
		{"DedupTTL", testDedupTTL},
		{"SeenLoaderAgrees", testSeenLoaderAgrees},
		{"States", testStates},
		{"StatesBoundedLeastRecentlyActiveFirst", testStatesBounded},
		{"ScanStatesMayWrite", testScanStatesMayWrite},
		{"SurvivesReopen", testSurvivesReopen},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"ConcurrentHandling", testConcurrentHandling},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, f) })
	}
}

func testAppendKeepsEventsInOrder(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	in := []store.NewEvent{ev("p/u1", "a"), ev("p/u2", "b"), ev("p/u1", "c")}
	got := e.append(in...)
	if len(got) != len(in) {
		t.Fatalf("Append returned %d events, want %d", len(got), len(in))
	}
	for i := range got {
		if i > 0 && got[i].Seq <= got[i-1].Seq {
			t.Errorf("seqs %v are not increasing", seqs(got))
		}
		want := store.Event{Seq: got[i].Seq, Lane: in[i].Lane, Body: in[i].Body, Accepted: e.clock.Now()}
		if d := sameEvent(got[i], want); d != "" {
			t.Errorf("appended event %d: %s", i, d)
		}
	}
	in[0].Body[0] = 'X' // the store kept its own copy
	e.clock.Advance(time.Second)
	more := e.append(ev("p/u3", "d"))
	if more[0].Seq <= got[2].Seq {
		t.Errorf("a later Append got seq %d, not above %d", more[0].Seq, got[2].Seq)
	}
	if !more[0].Accepted.Equal(e.clock.Now()) {
		t.Errorf("accepted %v, want the clock's %v", more[0].Accepted, e.clock.Now())
	}
	got[0].Body = []byte("a")
	e.wantPending(append(got, more...))
	if st := e.stats(); st.Pending != 4 || st.PendingBytes != 4 {
		t.Errorf("Stats = %+v, want 4 pending, 4 bytes", st)
	}
	if out, err := e.s.Append(e.ctx, nil); err != nil || len(out) != 0 {
		t.Errorf("Append(nil) = %v, %v; want nothing, nil", out, err)
	}
}

func testAppendRefusesInvalidEvents(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	_, err := e.s.Append(e.ctx, []store.NewEvent{ev("p/u1", "a"), ev("", "b")})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Append with an empty lane: %v, want ErrInvalid", err)
	}
	e.wantPending(nil)
}

func testAppendAllOrNoneAtTheBounds(t *testing.T, f Factory) {
	tests := []struct {
		name   string
		limits store.Limits
		first  []store.NewEvent // fits
		over   []store.NewEvent // does not fit next to first
		after  []store.NewEvent // fits once first[0] is completed
	}{
		{
			name:   "events",
			limits: store.Limits{MaxPending: 3},
			first:  []store.NewEvent{ev("p/u1", "a"), ev("p/u2", "b")},
			over:   []store.NewEvent{ev("p/u3", "c"), ev("p/u4", "d")},
			after:  []store.NewEvent{ev("p/u3", "c"), ev("p/u4", "d")},
		},
		{
			name:   "bytes",
			limits: store.Limits{MaxPendingBytes: 10},
			first:  []store.NewEvent{ev("p/u1", "123456")},
			over:   []store.NewEvent{ev("p/u2", "12"), ev("p/u3", "123")},
			after:  []store.NewEvent{ev("p/u2", "1234"), ev("p/u3", "123456")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, f, tt.limits)
			first := e.append(tt.first...)
			if _, err := e.s.Append(e.ctx, tt.over); !errors.Is(err, store.ErrFull) {
				t.Fatalf("Append over the bound: %v, want ErrFull", err)
			}
			e.wantPending(first)
			if err := e.s.Complete(e.ctx, first[0].Seq, store.Completion{}); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			after := e.append(tt.after...)
			e.wantPending(append(first[1:], after...))
		})
	}
}

func testProgress(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	evs := e.append(ev("p/u1", "a"), ev("p/u1", "b"))
	p := store.Progress{
		Plan: []byte("plan"), StepsDone: 1, Attempts: 3,
		RetryingSince: e.clock.Now().Add(-time.Minute), NotBefore: e.clock.Now().Add(time.Minute),
		LastError: "graph api me/messages: HTTP 500",
	}
	if err := e.s.Progress(e.ctx, evs[0].Seq, p); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	p.Plan[0] = 'X' // the store kept its own copy
	evs[0].Progress = p
	evs[0].Progress.Plan = []byte("plan")
	e.wantPending(evs)
	if err := e.s.Progress(e.ctx, evs[1].Seq+100, p); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Progress of an unknown event: %v, want ErrNotFound", err)
	}
}

func testComplete(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	evs := e.append(ev("p/u1", "a"), ev("p/u1", "b"))
	if err := e.s.Progress(e.ctx, evs[0].Seq, store.Progress{StepsDone: 1}); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	bad := store.Completion{DedupKeys: []string{""}, DedupTTL: time.Hour}
	if err := e.s.Complete(e.ctx, evs[0].Seq, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Complete with an empty dedup key: %v, want ErrInvalid", err)
	}
	c := store.Completion{
		State:     &store.State{Key: "p/u1", Data: []byte("state 1"), LastActive: e.clock.Now()},
		DedupKeys: []string{"m:mid.1", "x:other"},
		DedupTTL:  time.Hour,
	}
	if err := e.s.Complete(e.ctx, evs[0].Seq, c); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	e.wantPending(evs[1:])
	if got, ok := e.state("p/u1"); !ok || got != "state 1" {
		t.Errorf("state after Complete = %q, %v; want %q", got, ok, "state 1")
	}
	for _, k := range c.DedupKeys {
		if !e.seen(k) {
			t.Errorf("dedup key %q not seen after Complete", k)
		}
	}
	if e.seen("m:mid.2") {
		t.Error("a key never recorded is seen")
	}
	c.State.Data = []byte("state 2")
	if err := e.s.Complete(e.ctx, evs[0].Seq, c); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Complete twice: %v, want ErrNotFound", err)
	}
	if got, _ := e.state("p/u1"); got != "state 1" {
		t.Errorf("a failed Complete changed the state to %q", got)
	}
	if err := e.s.Complete(e.ctx, evs[1].Seq, store.Completion{}); err != nil {
		t.Fatalf("Complete without state or keys: %v", err)
	}
	if got, _ := e.state("p/u1"); got != "state 1" {
		t.Errorf("a Complete without state changed the state to %q", got)
	}
	if st := e.stats(); st.Pending != 0 || st.PendingBytes != 0 || st.States != 1 {
		t.Errorf("Stats = %+v, want nothing pending and 1 state", st)
	}
}

func testDeadLetterReplayDrop(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{MaxPending: 3})
	evs := e.append(ev("p/u1", "a"), ev("p/u2", "b"))
	p := store.Progress{Plan: []byte("plan"), StepsDone: 1, Attempts: 7, RetryingSince: e.clock.Now(), NotBefore: e.clock.Now().Add(time.Minute), LastError: "HTTP 500"}
	if err := e.s.Progress(e.ctx, evs[0].Seq, p); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	fail := store.Failure{
		Rule: "handoff", Step: 1, StepKind: "pass_thread_control",
		Graph: &store.GraphError{HTTPStatus: 400, Code: 190, Subcode: 463, Type: "OAuthException", Message: "token expired", FBTraceID: "AbC"},
		Error: "graph api me/pass_thread_control: HTTP 400, code 190/463", Attempts: 7, At: e.clock.Now(),
	}
	c := store.Completion{State: &store.State{Key: "p/u1", Data: []byte("s"), LastActive: e.clock.Now()}, DedupKeys: []string{"m:1"}, DedupTTL: time.Hour}
	if err := e.s.DeadLetter(e.ctx, evs[0].Seq, fail, c); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	if err := e.s.DeadLetter(e.ctx, evs[0].Seq, fail, c); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeadLetter twice: %v, want ErrNotFound", err)
	}
	e.wantPending(evs[1:])
	if got, ok := e.state("p/u1"); !ok || got != "s" {
		t.Errorf("state after DeadLetter = %q, %v; want %q", got, ok, "s")
	}
	if !e.seen("m:1") {
		t.Error("dedup key of a dead letter not seen")
	}
	dls, err := e.s.DeadLetters(e.ctx)
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	if len(dls) != 1 || dls[0].ID != evs[0].Seq {
		t.Fatalf("DeadLetters = %+v, want the one of seq %d", dls, evs[0].Seq)
	}
	want := evs[0]
	want.Progress = p
	if d := sameEvent(dls[0].Event, want); d != "" {
		t.Errorf("dead letter's event: %s", d)
	}
	if got := dls[0].Failure; got.Rule != fail.Rule || got.Step != fail.Step || got.StepKind != fail.StepKind || got.Error != fail.Error ||
		got.Attempts != fail.Attempts || !got.At.Equal(fail.At) || got.Graph == nil || *got.Graph != *fail.Graph {
		t.Errorf("dead letter's failure = %+v (graph %+v), want %+v (graph %+v)", got, got.Graph, fail, fail.Graph)
	}
	if st := e.stats(); st.Pending != 1 || st.DeadLetters != 1 {
		t.Errorf("Stats = %+v, want 1 pending, 1 dead letter", st)
	}

	// Replay is refused while the pending events are at the bound.
	filler := e.append(ev("p/u3", "c"), ev("p/u4", "d"))
	if _, err := e.s.Replay(e.ctx, dls[0].ID); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Replay at the bound: %v, want ErrFull", err)
	}
	for _, x := range filler {
		if err := e.s.Complete(e.ctx, x.Seq, store.Completion{}); err != nil {
			t.Fatalf("Complete: %v", err)
		}
	}
	r, err := e.s.Replay(e.ctx, dls[0].ID)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	want.Seq, want.ReplayOf, want.Progress = r.Seq, dls[0].ID, store.ReplayProgress(p)
	if r.Seq <= filler[1].Seq {
		t.Errorf("replayed event has seq %d, not above the last accepted %d", r.Seq, filler[1].Seq)
	}
	if d := sameEvent(r, want); d != "" {
		t.Errorf("replayed event: %s", d)
	}
	if r.Progress.StepsDone != 1 || r.Progress.Attempts != 0 {
		t.Errorf("replayed progress %+v: want the step done kept and no attempts", r.Progress)
	}
	e.wantPending([]store.Event{evs[1], want})
	if _, err := e.s.Replay(e.ctx, dls[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Replay twice: %v, want ErrNotFound", err)
	}

	if err := e.s.DeadLetter(e.ctx, evs[1].Seq, store.Failure{Error: "panic"}, store.Completion{}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	if err := e.s.Drop(e.ctx, evs[1].Seq); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	if err := e.s.Drop(e.ctx, evs[1].Seq); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Drop twice: %v, want ErrNotFound", err)
	}
	if dls, err := e.s.DeadLetters(e.ctx); err != nil || len(dls) != 0 {
		t.Errorf("DeadLetters after replay and drop = %v, %v; want none", dls, err)
	}
	if st := e.stats(); st.Pending != 1 || st.PendingBytes != 1 || st.DeadLetters != 0 {
		t.Errorf("Stats = %+v, want 1 pending of 1 byte, no dead letter", st)
	}
}

func testDeadLettersBounded(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{MaxDeadLetters: 2})
	evs := e.append(ev("p/u1", "a"), ev("p/u2", "b"), ev("p/u3", "c"))
	for _, x := range evs {
		if err := e.s.DeadLetter(e.ctx, x.Seq, store.Failure{Error: "x"}, store.Completion{}); err != nil {
			t.Fatalf("DeadLetter: %v", err)
		}
	}
	dls, err := e.s.DeadLetters(e.ctx)
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	if len(dls) != 2 || dls[0].ID != evs[1].Seq || dls[1].ID != evs[2].Seq {
		t.Errorf("DeadLetters IDs = %v, want the two newest %v", dls, seqs(evs[1:]))
	}
	if st := e.stats(); st.DeadLetters != 2 || st.DeadLettersEvicted != 1 {
		t.Errorf("Stats = %+v, want 2 dead letters, 1 evicted", st)
	}
}

func testDedupTTL(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	if err := e.s.Remember(e.ctx, "", time.Hour); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Remember of an empty key: %v, want ErrInvalid", err)
	}
	if err := e.s.Remember(e.ctx, "m:a", 0); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Remember without a TTL: %v, want ErrInvalid", err)
	}
	steps := []struct {
		name     string
		advance  time.Duration
		remember map[string]time.Duration
		seen     map[string]bool
		expired  int // ExpireDedup's count, -1 to not call it
	}{
		{name: "recorded", remember: map[string]time.Duration{"m:a": time.Hour, "m:b": 2 * time.Hour}, seen: map[string]bool{"m:a": true, "m:b": true, "m:c": false}, expired: 0},
		{name: "a shorter TTL keeps the later expiry", remember: map[string]time.Duration{"m:b": time.Minute}, seen: map[string]bool{"m:b": true}, expired: -1},
		{name: "just before expiry", advance: time.Hour - time.Second, seen: map[string]bool{"m:a": true, "m:b": true}, expired: 0},
		{name: "at expiry", advance: time.Second, seen: map[string]bool{"m:a": false, "m:b": true}, expired: -1},
		{name: "a longer TTL extends", remember: map[string]time.Duration{"m:b": 3 * time.Hour}, expired: -1},
		{name: "swept", advance: 2 * time.Hour, seen: map[string]bool{"m:a": false, "m:b": true}, expired: 1},
		{name: "all gone", advance: time.Hour, seen: map[string]bool{"m:a": false, "m:b": false}, expired: 1},
		{name: "nothing left", expired: 0},
	}
	for _, st := range steps {
		e.clock.Advance(st.advance)
		for k, ttl := range st.remember {
			if err := e.s.Remember(e.ctx, k, ttl); err != nil {
				t.Fatalf("%s: Remember(%q): %v", st.name, k, err)
			}
		}
		for k, want := range st.seen {
			if got := e.seen(k); got != want {
				t.Errorf("%s: Seen(%q) = %v, want %v", st.name, k, got, want)
			}
		}
		if st.expired >= 0 {
			n, err := e.s.ExpireDedup(e.ctx)
			if err != nil {
				t.Fatalf("%s: ExpireDedup: %v", st.name, err)
			}
			if n != st.expired {
				t.Errorf("%s: ExpireDedup forgot %d keys, want %d", st.name, n, st.expired)
			}
		}
	}
}

// testSeenLoaderAgrees checks, for a store that is a store.SeenLoader,
// that SeenAndLoadState answers as Seen and LoadState do.
func testSeenLoaderAgrees(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	sl, ok := e.s.(store.SeenLoader)
	if !ok {
		t.Skip("the store is not a store.SeenLoader")
	}
	if err := e.s.Remember(e.ctx, "m:a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SaveState(e.ctx, store.State{Key: "p/u", Data: []byte("abc"), LastActive: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	check := func(step, dedup, key string, wantSeen bool, wantState string, wantFound bool) {
		t.Helper()
		seen, data, found, err := sl.SeenAndLoadState(e.ctx, dedup, key)
		if err != nil {
			t.Fatalf("%s: SeenAndLoadState(%q, %q): %v", step, dedup, key, err)
		}
		if seen != wantSeen || (!seen && (found != wantFound || string(data) != wantState)) {
			t.Errorf("%s: SeenAndLoadState(%q, %q) = %v, %q, %v; want %v, %q, %v", step, dedup, key, seen, data, found, wantSeen, wantState, wantFound)
		}
		if s := e.seen(dedup); s != seen {
			t.Errorf("%s: Seen(%q) = %v, SeenAndLoadState says %v", step, dedup, s, seen)
		}
	}
	check("recorded", "m:a", "p/u", true, "", false)
	check("not recorded, a state", "m:b", "p/u", false, "abc", true)
	check("not recorded, no state", "m:b", "p/none", false, "", false)
	e.clock.Advance(time.Hour)
	check("expired", "m:a", "p/u", false, "abc", true)
}

func testStates(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	t0 := e.clock.Now()
	if err := e.s.SaveState(e.ctx, store.State{Data: []byte("x")}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("SaveState without a key: %v, want ErrInvalid", err)
	}
	save := func(key, data string, active time.Time) {
		t.Helper()
		if err := e.s.SaveState(e.ctx, store.State{Key: key, Data: []byte(data), LastActive: active}); err != nil {
			t.Fatalf("SaveState(%q): %v", key, err)
		}
	}
	save("p/old", "o", t0.Add(-48*time.Hour))
	save("p/mid", "m", t0.Add(-2*time.Hour))
	save("p/new", "n1", t0.Add(-time.Hour))
	save("p/new", "n2", t0) // replaces, and moves it in the activity order
	if _, ok := e.state("p/none"); ok {
		t.Error("LoadState of an unknown key found one")
	}
	if got, ok := e.state("p/new"); !ok || got != "n2" {
		t.Errorf("LoadState = %q, %v; want %q", got, ok, "n2")
	}
	scanned := map[string]string{}
	err := e.s.ScanStates(e.ctx, func(s store.State) error {
		scanned[s.Key] = string(s.Data) + "@" + s.LastActive.Sub(t0).String()
		return nil
	})
	if err != nil {
		t.Fatalf("ScanStates: %v", err)
	}
	want := map[string]string{"p/old": "o@-48h0m0s", "p/mid": "m@-2h0m0s", "p/new": "n2@0s"}
	if fmt.Sprint(scanned) != fmt.Sprint(want) {
		t.Errorf("ScanStates saw %v, want %v", scanned, want)
	}
	stop := errors.New("stop")
	calls := 0
	if err := e.s.ScanStates(e.ctx, func(store.State) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ScanStates with a failing fn: %v after %d calls, want fn's error after 1", err, calls)
	}
	n, err := e.s.ExpireStates(e.ctx, t0.Add(-90*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("ExpireStates = %d, %v; want 2 (old and mid)", n, err)
	}
	for key, want := range map[string]bool{"p/old": false, "p/mid": false, "p/new": true} {
		if _, ok := e.state(key); ok != want {
			t.Errorf("after ExpireStates, state %q kept = %v, want %v", key, ok, want)
		}
	}
	if st := e.stats(); st.States != 1 {
		t.Errorf("Stats.States = %d, want 1", st.States)
	}
}

func testStatesBounded(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{MaxStates: 2})
	t0 := e.clock.Now()
	for _, s := range []store.State{
		{Key: "p/a", Data: []byte("a"), LastActive: t0},
		{Key: "p/b", Data: []byte("b"), LastActive: t0.Add(-time.Hour)},   // saved later, but less recently active
		{Key: "p/a", Data: []byte("a2"), LastActive: t0.Add(time.Minute)}, // an update does not count twice
	} {
		if err := e.s.SaveState(e.ctx, s); err != nil {
			t.Fatalf("SaveState: %v", err)
		}
	}
	evs := e.append(ev("p/c", "c"))
	c := store.Completion{State: &store.State{Key: "p/c", Data: []byte("c"), LastActive: t0.Add(2 * time.Minute)}}
	if err := e.s.Complete(e.ctx, evs[0].Seq, c); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	for key, want := range map[string]bool{"p/a": true, "p/b": false, "p/c": true} {
		if _, ok := e.state(key); ok != want {
			t.Errorf("state %q kept = %v, want %v", key, ok, want)
		}
	}
	if st := e.stats(); st.States != 2 {
		t.Errorf("Stats.States = %d, want 2", st.States)
	}
}

func testScanStatesMayWrite(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	const n = 1100 // more than one chunk of a store that scans in chunks of 1,000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- e.s.SaveState(e.ctx, store.State{Key: fmt.Sprintf("p/%05d", i), Data: []byte("0"), LastActive: e.clock.Now()})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("SaveState: %v", err)
		}
	}
	seen := map[string]int{}
	err := e.s.ScanStates(e.ctx, func(s store.State) error {
		seen[s.Key]++
		if len(seen)%100 != 0 {
			return nil
		}
		return e.s.SaveState(e.ctx, store.State{Key: s.Key, Data: []byte("1"), LastActive: s.LastActive})
	})
	if err != nil {
		t.Fatalf("ScanStates with a writing fn: %v", err)
	}
	if len(seen) != n {
		t.Errorf("ScanStates saw %d states, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("ScanStates saw %q %d times", k, c)
		}
	}
	written := 0
	for k := range seen {
		if got, _ := e.state(k); got == "1" {
			written++
		}
	}
	if written != n/100 {
		t.Errorf("%d states written during the scan kept, want %d", written, n/100)
	}
}

func testSurvivesReopen(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	evs := e.append(ev("p/u1", "a"), ev("p/u1", "b"), ev("p/u2", "c"), ev("p/u3", "d"))
	p := store.Progress{Plan: []byte("plan"), StepsDone: 2, Attempts: 1, RetryingSince: e.clock.Now(), NotBefore: e.clock.Now().Add(time.Second), LastError: "HTTP 503"}
	if err := e.s.Progress(e.ctx, evs[1].Seq, p); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	c := store.Completion{State: &store.State{Key: "p/u1", Data: []byte("s1"), LastActive: e.clock.Now()}, DedupKeys: []string{"m:a"}, DedupTTL: time.Hour}
	if err := e.s.Complete(e.ctx, evs[0].Seq, c); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	fail := store.Failure{Rule: "r", Step: 0, StepKind: "reply", Graph: &store.GraphError{HTTPStatus: 400, Code: 100, FBTraceID: "T"}, Error: "bad parameter", Attempts: 1, At: e.clock.Now()}
	if err := e.s.DeadLetter(e.ctx, evs[2].Seq, fail, store.Completion{}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	before := e.stats()

	e.reopen()

	evs[1].Progress = p
	e.wantPending([]store.Event{evs[1], evs[3]})
	if got := e.stats(); got != before {
		t.Errorf("Stats after reopen = %+v, want %+v", got, before)
	}
	if got, ok := e.state("p/u1"); !ok || got != "s1" {
		t.Errorf("state after reopen = %q, %v; want %q", got, ok, "s1")
	}
	if !e.seen("m:a") {
		t.Error("dedup key lost across reopen")
	}
	dls, err := e.s.DeadLetters(e.ctx)
	if err != nil || len(dls) != 1 || dls[0].ID != evs[2].Seq || dls[0].Failure.Graph == nil || dls[0].Failure.Graph.FBTraceID != "T" {
		t.Errorf("DeadLetters after reopen = %+v, %v; want the one of seq %d with its Graph error", dls, err, evs[2].Seq)
	}
	more := e.append(ev("p/u4", "e"))
	if more[0].Seq <= evs[3].Seq {
		t.Errorf("seq after reopen %d is not above the last before it, %d", more[0].Seq, evs[3].Seq)
	}
	r, err := e.s.Replay(e.ctx, dls[0].ID)
	if err != nil {
		t.Fatalf("Replay after reopen: %v", err)
	}
	if r.Seq <= more[0].Seq || string(r.Body) != "c" {
		t.Errorf("replayed event = seq %d body %q, want a seq above %d and body %q", r.Seq, r.Body, more[0].Seq, "c")
	}
}

func testConcurrentAppenders(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	const writers, appends = 8, 25
	got := make([][]store.Event, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				lane := fmt.Sprintf("p/u%d", w)
				out, err := e.s.Append(e.ctx, []store.NewEvent{ev(lane, fmt.Sprintf("%d.%d.0", w, i)), ev(lane, fmt.Sprintf("%d.%d.1", w, i))})
				if err != nil {
					errs <- err
					return
				}
				got[w] = append(got[w], out...)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append: %v", err)
	}
	all := map[uint64]bool{}
	for w, evs := range got {
		for i, x := range evs {
			if all[x.Seq] {
				t.Fatalf("seq %d given twice", x.Seq)
			}
			all[x.Seq] = true
			if i > 0 && x.Seq <= evs[i-1].Seq {
				t.Errorf("writer %d: seqs %v are not increasing", w, seqs(evs))
				break
			}
		}
	}
	pend := e.pending()
	if len(pend) != writers*appends*2 {
		t.Fatalf("Pending has %d events, want %d", len(pend), writers*appends*2)
	}
	if !slices.IsSortedFunc(pend, func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) }) {
		t.Error("Pending is not in sequence order")
	}
}

// testConcurrentHandling runs lanes that append, record progress and
// complete at once, while a reader lists and counts, as the gateway's
// workers and its metrics do.
func testConcurrentHandling(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	const lanes, events = 6, 15
	done := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := e.s.Pending(e.ctx); err != nil {
				t.Errorf("Pending: %v", err)
				return
			}
			if _, err := e.s.Stats(e.ctx); err != nil {
				t.Errorf("Stats: %v", err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for l := range lanes {
		wg.Go(func() {
			lane := fmt.Sprintf("p/u%d", l)
			for i := range events {
				evs, err := e.s.Append(e.ctx, []store.NewEvent{ev(lane, "x")})
				if err == nil {
					err = e.s.Progress(e.ctx, evs[0].Seq, store.Progress{Plan: []byte("p"), StepsDone: 1})
				}
				if err == nil {
					err = e.s.Complete(e.ctx, evs[0].Seq, store.Completion{
						State:     &store.State{Key: lane, Data: []byte{byte(i)}, LastActive: e.clock.Now()},
						DedupKeys: []string{fmt.Sprintf("m:%d.%d", l, i)}, DedupTTL: time.Hour,
					})
				}
				if err != nil {
					t.Errorf("lane %d event %d: %v", l, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	reader.Wait()
	if st := e.stats(); st.Pending != 0 || st.PendingBytes != 0 || st.States != lanes {
		t.Errorf("Stats = %+v, want nothing pending and %d states", st, lanes)
	}
	for l := range lanes {
		if got, _ := e.state(fmt.Sprintf("p/u%d", l)); got != string([]byte{events - 1}) {
			t.Errorf("lane %d state = %q, want the last event's", l, got)
		}
		if !e.seen(fmt.Sprintf("m:%d.%d", l, events-1)) {
			t.Errorf("lane %d: last dedup key not seen", l)
		}
	}
}

func testClosed(t *testing.T, f Factory) {
	e := newEnv(t, f, store.Limits{})
	evs := e.append(ev("p/u1", "a"))
	if err := e.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := map[string]func() error{
		"Append":   func() error { _, err := e.s.Append(e.ctx, []store.NewEvent{ev("p/u1", "b")}); return err },
		"Pending":  func() error { _, err := e.s.Pending(e.ctx); return err },
		"Progress": func() error { return e.s.Progress(e.ctx, evs[0].Seq, store.Progress{}) },
		"Complete": func() error { return e.s.Complete(e.ctx, evs[0].Seq, store.Completion{}) },
		"Seen":     func() error { _, err := e.s.Seen(e.ctx, "k"); return err },
		"SaveState": func() error {
			return e.s.SaveState(e.ctx, store.State{Key: "k", LastActive: e.clock.Now()})
		},
		"LoadState": func() error { _, _, err := e.s.LoadState(e.ctx, "k"); return err },
		"Stats":     func() error { _, err := e.s.Stats(e.ctx); return err },
		"Close":     e.s.Close,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}
