package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/memstore"
)

// countingStore counts the progress writes a store is asked for, and keeps
// the plan of every one.
type countingStore struct {
	store.Store
	mu       sync.Mutex
	progress []store.Progress
}

func (c *countingStore) Progress(ctx context.Context, seq uint64, p store.Progress) error {
	c.mu.Lock()
	c.progress = append(c.progress, p)
	c.mu.Unlock()
	return c.Store.Progress(ctx, seq, p)
}

func (c *countingStore) writes() []store.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]store.Progress(nil), c.progress...)
}

// An event's plan is written with the first write that needs it: a plan of
// one step that succeeds needs none (its completion follows at once); a
// plan of two steps writes its plan once, with the first step's success.
func TestPlanIsWrittenOnlyWhenAWriteNeedsIt(t *testing.T) {
	t.Parallel()
	cs := &countingStore{Store: memstore.New(store.Options{})}
	d := newDurable(t, durableOptions{store: cs})
	d.mustPost(envelope("messaging", textEvent("u1", "hello")))
	d.out.waitDelivered(t, "u1", 1)
	poll.Until(t, "the echo completed", func() bool { st, _ := cs.Stats(context.Background()); return st.Pending == 0 })
	if w := cs.writes(); len(w) != 0 {
		t.Fatalf("a one-step plan made %d progress writes, want none: %+v", len(w), w)
	}

	d.mustPost(envelope("messaging", textEvent("u2", "agent")))
	d.graph.WaitCalls(t, fakegraph.PathPass, 1)
	poll.Until(t, "the handover completed", func() bool { st, _ := cs.Stats(context.Background()); return st.Pending == 0 })
	w := cs.writes()
	if len(w) != 1 || w[0].StepsDone != 1 || len(w[0].Plan) == 0 {
		t.Fatalf("a two-step plan made the writes %+v, want one: the plan with its first step done", w)
	}
}

// A one-step plan that fails for good was never written before: its dead
// letter keeps it all the same, so that a replay after the rules changed
// sends what was decided, not what the new rules would say.
func TestDeadLetterKeepsAPlanNeverWritten(t *testing.T) {
	t.Parallel()
	set := parseRules(t, durableRules)
	var mu sync.Mutex
	d := newDurable(t, durableOptions{tweak: func(c *gateway.Config) {
		c.Rules = func() *engine.Set { mu.Lock(); defer mu.Unlock(); return set }
	}})
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages, User: "u1"}, fakegraph.GraphError{Status: 400, Code: 100, Subcode: 2018001}.Answer())
	d.mustPost(envelope("messaging", textEvent("u1", "hello")))
	l := d.waitDeadLetters(1)
	mu.Lock()
	set = parseRules(t, "version: 1\nrules:\n  - name: echo\n    do: [echo: \"[new] \"]\n")
	mu.Unlock()
	if code := d.admin(http.MethodPost, fmt.Sprintf("/-/deadletters/%d/replay", l.DeadLetters[0].ID), nil); code != http.StatusOK {
		t.Fatalf("replay answered %d", code)
	}
	if got := d.out.waitDelivered(t, "u1", 1); got[0] != "[bot] hello" {
		t.Errorf("the replay sent %q, want the reply decided before the rules changed", got[0])
	}
}
