package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/internal/redistest"
	"github.com/threadgate/threadgate/store"
)

// pipelineSpy is a redis.Hook that counts the batcher's pipelines and, when
// held, stops each until the test releases it.
type pipelineSpy struct {
	entered chan int      // when held: receives each pipeline's size
	release chan struct{} // when held: one receive lets one pipeline go

	mu        sync.Mutex
	pipelines int
	commands  int
	largest   int
	noscripts int
}

// spy adds a pipelineSpy to s's client; held makes it stop every batch.
func spy(s *Store, held bool) *pipelineSpy {
	p := &pipelineSpy{}
	if held {
		p.entered = make(chan int, 1)
		p.release = make(chan struct{})
	}
	s.rdb.AddHook(p)
	return p
}

func (p *pipelineSpy) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (p *pipelineSpy) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (p *pipelineSpy) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if ctx.Value(batchKey{}) == nil {
			return next(ctx, cmds)
		}
		if p.entered != nil {
			p.entered <- len(cmds)
			<-p.release
		}
		err := next(ctx, cmds)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.pipelines++
		p.commands += len(cmds)
		p.largest = max(p.largest, len(cmds))
		for _, c := range cmds {
			if c.Err() != nil && strings.HasPrefix(c.Err().Error(), "NOSCRIPT") {
				p.noscripts++
			}
		}
		return err
	}
}

func (p *pipelineSpy) counts() (pipelines, commands, largest, noscripts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pipelines, p.commands, p.largest, p.noscripts
}

// receive returns what ch gives, or fails t after poll.Timeout.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(poll.Timeout):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

// TestConcurrentCallersGetTheirOwnResults runs many goroutines through
// the hot calls at once: each must see its own event, dedup keys and
// state, and the calls must have shared pipelines.
func TestConcurrentCallersGetTheirOwnResults(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	s := open(t, srv.URL(), Options{Prefix: newPrefix()})
	defer s.Close()
	sp := spy(s, false)
	ctx := context.Background()
	const goroutines, rounds = 64, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	seqs := make([][]uint64, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			lane := fmt.Sprintf("p/u%d", g)
			for i := range rounds {
				if err := handleOne(ctx, s, lane, fmt.Sprintf("%d-%d", g, i), &seqs[g]); err != nil {
					errs <- fmt.Errorf("goroutine %d, round %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all := slices.Concat(seqs...)
	slices.Sort(all)
	if n := len(slices.Compact(all)); n != goroutines*rounds {
		t.Errorf("%d distinct sequence numbers, want %d", n, goroutines*rounds)
	}
	if st, err := s.Stats(ctx); err != nil || st.Pending != 0 || st.States != goroutines {
		t.Errorf("Stats = %+v, %v; want 0 pending, %d states", st, err, goroutines)
	}
	pipelines, commands, largest, _ := sp.counts()
	if want := goroutines * rounds * 5; commands != want {
		t.Errorf("%d commands pipelined, want %d (5 a round)", commands, want)
	}
	if largest < 2 || largest > maxBatch {
		t.Errorf("largest pipeline had %d commands, want 2 to %d", largest, maxBatch)
	}
	t.Logf("%d commands in %d pipelines (largest %d)", commands, pipelines, largest)
}

// handleOne appends an event with body on lane and completes it as the
// gateway does, checking every answer; it adds the event's sequence
// number to seqs.
func handleOne(ctx context.Context, s *Store, lane, body string, seqs *[]uint64) error {
	evs, err := s.Append(ctx, []store.NewEvent{{Lane: lane, Body: []byte(body)}})
	if err != nil {
		return fmt.Errorf("Append: %w", err)
	}
	if evs[0].Lane != lane || string(evs[0].Body) != body {
		return fmt.Errorf("Append returned %q on %q, want %q on %q", evs[0].Body, evs[0].Lane, body, lane)
	}
	*seqs = append(*seqs, evs[0].Seq)
	key := "m:" + body
	if seen, err := s.Seen(ctx, key); err != nil || seen {
		return fmt.Errorf("Seen before Complete = %v, %v; want false", seen, err)
	}
	c := store.Completion{State: &store.State{Key: lane, Data: []byte(body), LastActive: time.Now()}, DedupKeys: []string{key}, DedupTTL: time.Hour}
	if err := s.Complete(ctx, evs[0].Seq, c); err != nil {
		return fmt.Errorf("Complete: %w", err)
	}
	if seen, err := s.Seen(ctx, key); err != nil || !seen {
		return fmt.Errorf("Seen after Complete = %v, %v; want true", seen, err)
	}
	if data, ok, err := s.LoadState(ctx, lane); err != nil || !ok || string(data) != body {
		return fmt.Errorf("LoadState = %q, %v, %v; want %q", data, ok, err, body)
	}
	return nil
}

// TestCancelledCallerDoesNotDisturbOthers cancels one caller while its
// command waits in the queue or is in flight with others': the caller
// returns at once, the others get their results, and the command was sent
// only when it was already in flight.
func TestCancelledCallerDoesNotDisturbOthers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	tests := []struct {
		name        string
		inFlight    bool // cancel once the command is in a pipeline
		wantPending int  // the warm-up, the others and the cancelled when sent
	}{
		{name: "queued", inFlight: false, wantPending: 1 + 8},
		{name: "in flight", inFlight: true, wantPending: 1 + 8 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, srv.URL(), Options{Prefix: newPrefix()})
			defer s.Close()
			sp := spy(s, true)
			ctx := context.Background()
			appendOne := func(ctx context.Context, body string) (store.Event, error) {
				evs, err := s.Append(ctx, []store.NewEvent{{Lane: "p/" + body, Body: []byte(body)}})
				if err != nil {
					return store.Event{}, err
				}
				return evs[0], nil
			}
			// A warm-up call holds the batcher while the others queue.
			warm := make(chan error, 1)
			go func() { _, err := appendOne(ctx, "warm"); warm <- err }()
			if n := receive(t, sp.entered, "the warm-up pipeline"); n != 1 {
				t.Fatalf("the warm-up pipeline has %d commands, want 1", n)
			}
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			cancelled := make(chan error, 1)
			go func() { _, err := appendOne(cctx, "cancelled"); cancelled <- err }()
			poll.Until(t, "the cancelled call queued", func() bool { return len(s.batch.queue) == 1 })
			type result struct {
				ev  store.Event
				err error
			}
			others := make([]chan result, 8)
			for i := range others {
				others[i] = make(chan result, 1)
				go func() { ev, err := appendOne(ctx, fmt.Sprintf("other%d", i)); others[i] <- result{ev, err} }()
			}
			poll.Until(t, "the others queued", func() bool { return len(s.batch.queue) == 1+len(others) })
			if !tt.inFlight {
				cancel()
				if err := receive(t, cancelled, "the cancelled call"); !errors.Is(err, context.Canceled) {
					t.Errorf("the cancelled Append: %v, want context.Canceled", err)
				}
			}
			sp.release <- struct{}{}
			if err := receive(t, warm, "the warm-up call"); err != nil {
				t.Fatalf("the warm-up Append: %v", err)
			}
			wantSize := len(others)
			if tt.inFlight {
				wantSize++
			}
			if n := receive(t, sp.entered, "the second pipeline"); n != wantSize {
				t.Errorf("the second pipeline has %d commands, want %d", n, wantSize)
			}
			if tt.inFlight {
				// The cancelled caller leaves while its pipeline is held.
				cancel()
				if err := receive(t, cancelled, "the cancelled call"); !errors.Is(err, context.Canceled) {
					t.Errorf("the cancelled Append: %v, want context.Canceled", err)
				}
			}
			sp.release <- struct{}{}
			for i, ch := range others {
				r := receive(t, ch, "another call")
				if want := fmt.Sprintf("other%d", i); r.err != nil || string(r.ev.Body) != want || r.ev.Lane != "p/"+want {
					t.Errorf("Append of %s = %+v, %v", want, r.ev, r.err)
				}
			}
			// The spy lets no more pipelines through; read with the client.
			n, err := s.rdb.HGet(ctx, s.key("meta"), "pending").Int()
			if err != nil || n != tt.wantPending {
				t.Errorf("%d events pending (%v), want %d", n, err, tt.wantPending)
			}
		})
	}
}

// TestNoScriptRecovered flushes Redis's script cache between and during
// bursts of calls: every call succeeds, and every Append ran once.
func TestNoScriptRecovered(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	s := open(t, srv.URL(), Options{Prefix: newPrefix()})
	defer s.Close()
	sp := spy(s, false)
	ctx := context.Background()
	const rounds, writers = 4, 16
	for r := range rounds {
		if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatalf("SCRIPT FLUSH: %v", err)
		}
		var flushed atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				if w == writers/2 && flushed.CompareAndSwap(false, true) {
					// A second flush while the others run.
					if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
						errs <- err
						return
					}
				}
				var seqs []uint64
				if err := handleOne(ctx, s, fmt.Sprintf("p/u%d", w), fmt.Sprintf("%d-%d", r, w), &seqs); err != nil {
					errs <- fmt.Errorf("round %d, writer %d: %w", r, w, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	// An Append run twice would have left an event pending, and moved
	// the sequence past one number per Append.
	st, err := s.Stats(ctx)
	if err != nil || st.Pending != 0 {
		t.Errorf("Stats = %+v, %v; want 0 pending", st, err)
	}
	if last, err := s.rdb.Get(ctx, s.key("seq")).Int(); err != nil || last != rounds*writers {
		t.Errorf("the last sequence number is %d (%v), want %d: an Append ran twice", last, err, rounds*writers)
	}
	if _, _, _, noscripts := sp.counts(); noscripts == 0 {
		t.Error("no command was answered NOSCRIPT: the test did not test the recovery")
	}
}

// BenchmarkConcurrentComplete completes events from 64 goroutines, with
// pipelines of up to maxBatch commands and of one command (each call its
// own round trip), and reports the commands per pipeline.
func BenchmarkConcurrentComplete(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	const writers = 64
	for _, size := range []int{1, maxBatch} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b, srv.URL(), Options{Prefix: newPrefix(), Options: store.Options{Limits: store.Limits{MaxPending: 1 << 30, MaxPendingBytes: 1 << 40, MaxDedupKeys: 1 << 30}}})
			defer s.Close()
			s.batch.stop()
			s.batch = newBatcher(s.rdb, size)
			ctx := context.Background()
			var seqs []uint64
			for len(seqs) < b.N {
				evs := make([]store.NewEvent, min(100, b.N-len(seqs)))
				for i := range evs {
					evs[i] = store.NewEvent{Lane: fmt.Sprintf("p/u%d", i), Body: []byte("{}")}
				}
				out, err := s.Append(ctx, evs)
				if err != nil {
					b.Fatalf("Append: %v", err)
				}
				for _, e := range out {
					seqs = append(seqs, e.Seq)
				}
			}
			sp := spy(s, false)
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for i := int(next.Add(1)) - 1; i < len(seqs); i = int(next.Add(1)) - 1 {
						c := store.Completion{DedupKeys: []string{fmt.Sprintf("m:%d", i)}, DedupTTL: time.Hour}
						if err := s.Complete(ctx, seqs[i], c); err != nil {
							b.Errorf("Complete: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			pipelines, commands, _, _ := sp.counts()
			b.ReportMetric(float64(commands)/float64(max(pipelines, 1)), "cmds/pipeline")
		})
	}
}
