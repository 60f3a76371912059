package gateway

import (
	"testing"
	"time"

	"github.com/threadgate/threadgate/conversation"
)

func TestMemoryStateStoreExpireForgetsOnlyQuietConversations(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s := NewMemoryStateStore()
	key := func(user string) conversation.Key { return conversation.Key{PageID: "p", UserID: user} }
	s.Save(key("old"), conversation.State{
		LastActivity: t0.Add(-48 * time.Hour),
		Owner:        conversation.Self,
		OwnerSince:   t0.Add(-49 * time.Hour),
	})
	s.Save(key("recent-message"), conversation.State{LastActivity: t0.Add(-48 * time.Hour), LastUserMessage: t0.Add(-time.Hour)})
	s.Save(key("recent-owner"), conversation.State{OwnerSince: t0.Add(-time.Minute)})
	s.Save(key("still-paused"), conversation.State{LastActivity: t0.Add(-48 * time.Hour), PausedUntil: t0.Add(time.Hour)})
	s.Save(key("never-touched"), conversation.State{})

	if n := s.Expire(t0.Add(-stateRetention)); n != 2 {
		t.Fatalf("Expire forgot %d conversations, want 2 (old, never-touched)", n)
	}
	for user, want := range map[string]bool{"old": false, "never-touched": false, "recent-message": true, "recent-owner": true, "still-paused": true} {
		s.mu.Lock()
		_, kept := s.m[key(user)]
		s.mu.Unlock()
		if kept != want {
			t.Errorf("%s kept = %v, want %v", user, kept, want)
		}
	}
	if n := s.Expire(t0.Add(-stateRetention)); n != 0 {
		t.Errorf("a second Expire forgot %d more", n)
	}
}

func TestMemoryStateStoreLoadReturnsWhatWasSaved(t *testing.T) {
	s := NewMemoryStateStore()
	k := conversation.Key{PageID: "p", UserID: "u"}
	if got := s.Load(k); got.Owner != conversation.Unknown || !got.OwnerSince.IsZero() {
		t.Fatalf("Load of an unknown conversation = %+v, want the zero State", got)
	}
	st := conversation.State{Owner: conversation.AppOwner("42"), Transcript: []string{"hi"}}
	s.Save(k, st)
	if got := s.Load(k); got.Owner != st.Owner || len(got.Transcript) != 1 || got.Transcript[0] != "hi" {
		t.Errorf("Load = %+v, want %+v", got, st)
	}
}
