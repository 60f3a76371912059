package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakegraph"
)

// The intake is paced to the workers: with the backlog full, a webhook is
// answered once an event is handled (not before), and past AdmitWait it is
// accepted all the same; nothing is refused and everything is delivered.
func TestWebhookWaitsForRoomInTheBacklog(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{tweak: func(c *gateway.Config) {
		c.Workers, c.Backlog, c.AdmitWait = 1, 1, time.Minute
	}})
	clear := d.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Answer{Hang: true})
	d.mustPost(envelope("messaging", textEvent("u1", "first")))
	d.graph.WaitCalls(t, fakegraph.PathMessages, 1) // handled, its call hangs: the backlog is full

	answered := make(chan int, 1)
	go func() { answered <- d.post(envelope("messaging", textEvent("u2", "second"))) }()
	select {
	case code := <-answered:
		t.Fatalf("the second webhook was answered %d with the backlog full", code)
	case <-time.After(50 * time.Millisecond): // a negative check: it cannot fail wrongly, only miss
	}
	clear()
	d.graph.Release()
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("the second webhook answered %d once there was room, want 200", code)
	}
	d.out.waitDelivered(t, "u1", 1)
	d.out.waitDelivered(t, "u2", 1)
}

// Past AdmitWait a webhook is accepted beyond the backlog: pacing delays
// answers, it never refuses them.
func TestWebhookIsAcceptedPastTheBacklogAfterAdmitWait(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{tweak: func(c *gateway.Config) {
		c.Workers, c.Backlog, c.AdmitWait = 1, 1, time.Millisecond
	}})
	clear := d.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Answer{Hang: true})
	d.mustPost(envelope("messaging", textEvent("u1", "first")))
	d.graph.WaitCalls(t, fakegraph.PathMessages, 1)
	for _, u := range []string{"u2", "u3", "u4"} {
		d.mustPost(envelope("messaging", textEvent(u, "later")))
	}
	if n := d.gw.Queue().Len(); n != 4 {
		t.Fatalf("%d events queued, want 4: accepted past the backlog", n)
	}
	clear()
	d.graph.Release()
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		d.out.waitDelivered(t, u, 1)
	}
}
