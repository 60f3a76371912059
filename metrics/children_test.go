package metrics

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/messenger"
)

// TestChildrenAskOncePerTuple checks that concurrent lookups of the same
// tuples ask the vector once per tuple and all get its answer.
func TestChildrenAskOncePerTuple(t *testing.T) {
	var asked atomic.Int64
	c := newChildren(func(k [2]string) string {
		asked.Add(1)
		return k[0] + "/" + k[1]
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := [2]string{fmt.Sprint("a", i%50), fmt.Sprint("b", (i+g)%3)}
				if got, want := c.get(k), k[0]+"/"+k[1]; got != want {
					t.Errorf("get(%v) = %q, want %q", k, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := asked.Load(); n != 150 {
		t.Errorf("the vector was asked %d times for 150 tuples", n)
	}
}

// BenchmarkObserveEvent is what the metrics cost one echoed event: the
// webhook, the event, the rule, the action and the Graph call.
func BenchmarkObserveEvent(b *testing.B) {
	m := New(Options{})
	call := messenger.Call{Endpoint: "me/messages", Outcome: messenger.OutcomeOK, HTTPStatus: 200}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.WebhookRequest(gateway.OutcomeAccepted)
			m.Event(string(messenger.KindMessage), false)
			m.RuleFired("echo")
			m.Action("echo", outcomeOK)
			m.ObserveGraphCall(call)
		}
	})
}
