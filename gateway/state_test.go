package gateway

import (
	"testing"
	"time"
)

func TestMemoryStateStoreExpireForgetsOnlyQuietConversations(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s := NewMemoryStateStore()
	set := func(user string, f func(*ThreadState)) { s.Update(Conversation{PageID: "p", UserID: user}, f) }
	set("old", func(st *ThreadState) {
		st.LastActivity = t0.Add(-48 * time.Hour)
		st.Owner = OwnerSelf
		st.OwnerSince = t0.Add(-49 * time.Hour)
	})
	set("recent-message", func(st *ThreadState) {
		st.LastActivity = t0.Add(-48 * time.Hour)
		st.LastUserMessage = t0.Add(-time.Hour)
	})
	set("recent-owner", func(st *ThreadState) { st.OwnerSince = t0.Add(-time.Minute) })
	set("still-paused", func(st *ThreadState) { st.LastActivity = t0.Add(-48 * time.Hour); st.PausedUntil = t0.Add(time.Hour) })
	set("never-touched", func(*ThreadState) {})

	if n := s.Expire(t0.Add(-stateRetention)); n != 2 {
		t.Fatalf("Expire forgot %d conversations, want 2 (old, never-touched)", n)
	}
	for user, want := range map[string]bool{"old": false, "never-touched": false, "recent-message": true, "recent-owner": true, "still-paused": true} {
		s.mu.Lock()
		_, kept := s.m[Conversation{PageID: "p", UserID: user}]
		s.mu.Unlock()
		if kept != want {
			t.Errorf("%s kept = %v, want %v", user, kept, want)
		}
	}
	if n := s.Expire(t0.Add(-stateRetention)); n != 0 {
		t.Errorf("a second Expire forgot %d more", n)
	}
}
