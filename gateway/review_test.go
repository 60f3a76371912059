package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/retry"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/memstore"
)

const twoReplies = `version: 1
rules:
  - name: two
    do:
      - reply: "one"
      - reply: "two"
`

// flakyProgress fails the first write of progress that records n steps
// done.
type flakyProgress struct {
	store.Store
	mu     sync.Mutex
	n      int
	failed bool
}

func (f *flakyProgress) Progress(ctx context.Context, seq uint64, p store.Progress) error {
	f.mu.Lock()
	fail := !f.failed && p.StepsDone == f.n
	if fail {
		f.failed = true
	}
	f.mu.Unlock()
	if fail {
		return errors.New("disk hiccup")
	}
	return f.Store.Progress(ctx, seq, p)
}

// A step succeeded but the store could not record it; the next step fails
// and is retried in the same process: the step that succeeded must not run
// again (the process knows it ran).
func TestRetryDoesNotRepeatAStepWhoseProgressWasNotRecorded(t *testing.T) {
	t.Parallel()
	fs := &flakyProgress{Store: memstore.New(store.Options{}), n: 1}
	d := newDurable(t, durableOptions{rules: twoReplies, store: fs})
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Answer{}, fakegraph.Fail(500, 2, 0))
	d.mustPost(envelope("messaging", textEvent("p1", "hi")))
	d.out.waitDelivered(t, "p1", 2)
	poll.Until(t, "the event completed", func() bool {
		st, err := fs.Stats(context.Background())
		return err == nil && st.Pending == 0
	})
	if got := d.out.of("p1"); fmt.Sprint(got) != "[one two]" {
		t.Fatalf("p1 got %q, want [one two]: a step that succeeded ran again", got)
	}
}

// lostReply completes an event, then answers with an error the first time,
// as a store whose reply was lost after the write (a dropped connection to
// Redis) does.
type lostReply struct {
	store.Store
	mu   sync.Mutex
	lost bool
}

func (l *lostReply) Complete(ctx context.Context, seq uint64, c store.Completion) error {
	err := l.Store.Complete(ctx, seq, c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && !l.lost {
		l.lost = true
		return errors.New("connection reset after the write")
	}
	return err
}

// A completion the store made but could not confirm is retried; the retry
// finds the event gone (ErrNotFound): the event is done, and the user's
// lane goes on instead of retrying it forever.
func TestLaneGoesOnWhenARetriedCompletionFindsTheEventGone(t *testing.T) {
	t.Parallel()
	ls := &lostReply{Store: memstore.New(store.Options{})}
	d := newDurable(t, durableOptions{store: ls})
	d.mustPost(envelope("messaging", textEvent("c1", "first")))
	d.mustPost(envelope("messaging", textEvent("c1", "second")))
	if got := d.out.waitDelivered(t, "c1", 2); fmt.Sprint(got) != "[[bot] first [bot] second]" {
		t.Fatalf("c1 got %q", got)
	}
}

const readsOwnerRules = `version: 1
apps: {page_inbox: 263902037430900}
rules:
  - name: who
    match: {event: request_thread_control}
    when: 'owner != "page_inbox"'
    do: [reply: "owner is {{ .Owner }}"]
`

// hangingOwner asks who owns a thread and gets no answer until the call is
// cancelled.
type hangingOwner struct {
	*delivered
	asked chan struct{}
	once  sync.Once
}

func (h *hangingOwner) ThreadOwner(ctx context.Context, _ messenger.Recipient) (string, error) {
	h.once.Do(func() { close(h.asked) })
	<-ctx.Done()
	return "", ctx.Err()
}

// The grace period ends while an event is being decided (its owner lookup
// hangs): the cancelled lookup is not an answer, so no plan built on it is
// recorded; the event is decided afresh after the next start.
func TestShutdownDoesNotRecordAPlanDecidedOnCancelledLookups(t *testing.T) {
	t.Parallel()
	ms := memstore.New(store.Options{})
	var ho *hangingOwner
	d := newDurable(t, durableOptions{rules: readsOwnerRules, store: ms, tweak: func(c *gateway.Config) {
		ho = &hangingOwner{delivered: c.Platform.(*delivered), asked: make(chan struct{})}
		c.Platform = ho
	}})
	d.mustPost(envelope("messaging", requestEvent("o1", pageInboxID)))
	select {
	case <-ho.asked:
	case <-time.After(poll.Timeout):
		t.Fatalf("the owner was never asked:\n%s", d.logs.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace: the workers are cancelled at once
	if err := d.gw.Drain(ctx); !errors.Is(err, gateway.ErrGraceOver) {
		t.Fatalf("Drain = %v, want ErrGraceOver", err)
	}
	pending, err := ms.Pending(context.Background())
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending = %d events, %v; want the event left", len(pending), err)
	}
	if p := pending[0].Progress.Plan; len(p) != 0 {
		t.Fatalf("a plan was recorded with the cancelled lookup as the owner's answer: %s", p)
	}
}

// At shutdown, a waiting handover event (it has no mid) is logged without
// the user's raw ID: the logs show the sender tag unless raw IDs were
// asked for.
func TestDrainLogsAnAbandonedHandoverEventWithoutTheRawUserID(t *testing.T) {
	t.Parallel()
	slow := retry.Backoff{Base: time.Hour, Cap: time.Hour, Floor: 1}
	const user = "9912345678901234"
	d := newDurable(t, durableOptions{rules: readsOwnerRules, tweak: func(c *gateway.Config) {
		c.Retry = retry.Policy{Transient: slow, RateLimited: slow, Budget: 2 * time.Hour}
	}})
	d.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Fail(500, 2, 0))
	d.mustPost(envelope("messaging", requestEvent(user, pageInboxID)))
	poll.Until(t, "the retry scheduled", func() bool { return strings.Contains(d.logs.String(), "step failed, will retry") })
	ctx, cancel := context.WithTimeout(context.Background(), poll.Timeout)
	defer cancel()
	if err := d.gw.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	logs := d.logs.String()
	if !strings.Contains(logs, "events abandoned") {
		t.Fatalf("the abandoned event was not logged:\n%s", logs)
	}
	if strings.Contains(logs, user) {
		t.Errorf("the raw user ID reached the logs:\n%s", logs)
	}
}
