package gateway

import (
	"testing"
	"time"

	"github.com/threadgate/threadgate/conversation"
)

func TestReturnTimersHeap(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rt := newReturnTimers()
	conv := func(u string) conversation.Key { return conversation.Key{PageID: "p", UserID: u} }
	rt.watch(conv("c"), t0.Add(3*time.Minute))
	rt.watch(conv("a"), t0.Add(1*time.Minute))
	rt.watch(conv("b"), t0.Add(2*time.Minute))
	rt.watch(conv("a"), t0) // already watched: ignored
	if rt.Len() != 3 {
		t.Fatalf("Len = %d, want 3", rt.Len())
	}
	got := rt.due(t0.Add(2*time.Minute), 10)
	if len(got) != 2 || got[0].conv.UserID != "a" || got[1].conv.UserID != "b" || !got[0].since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("due = %v, want a then b", got)
	}
	if got := rt.due(t0.Add(time.Hour), 0); len(got) != 0 {
		t.Errorf("max 0 gave %v", got)
	}
	rt.watch(conv("a"), t0.Add(time.Hour)) // popped, so watched again
	if got := rt.due(t0.Add(time.Hour), 1); len(got) != 1 || got[0].conv.UserID != "c" {
		t.Errorf("bounded due = %v, want c alone", got)
	}
	if rt.Len() != 1 {
		t.Errorf("Len = %d, want 1", rt.Len())
	}
}
