package gateway

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/memstore"
)

func TestStatesExpireForgetsOnlyQuietConversations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s := &States{s: memstore.New(store.Options{Now: fakeclock.New(t0).Now})}
	key := func(user string) conversation.Key { return conversation.Key{PageID: "p", UserID: user} }
	save := func(user string, st conversation.State) {
		t.Helper()
		if err := s.Save(ctx, key(user), st, t0); err != nil {
			t.Fatal(err)
		}
	}
	save("old", conversation.State{LastActivity: t0.Add(-48 * time.Hour), Owner: conversation.Self, OwnerSince: t0.Add(-49 * time.Hour)})
	save("recent-message", conversation.State{LastActivity: t0.Add(-48 * time.Hour), LastUserMessage: t0.Add(-time.Hour)})
	save("recent-owner", conversation.State{OwnerSince: t0.Add(-time.Minute)})
	save("still-paused", conversation.State{LastActivity: t0.Add(-48 * time.Hour), PausedUntil: t0.Add(time.Hour)})

	n, err := s.Expire(ctx, t0.Add(-stateRetention))
	if err != nil || n != 1 {
		t.Fatalf("Expire forgot %d conversations (%v), want 1 (old)", n, err)
	}
	for user, want := range map[string]bool{"old": false, "recent-message": true, "recent-owner": true, "still-paused": true} {
		_, kept, err := s.s.LoadState(ctx, stateKey(key(user)))
		if err != nil || kept != want {
			t.Errorf("%s kept = %v (%v), want %v", user, kept, err, want)
		}
	}
}

func TestStatesLoadReturnsWhatWasSaved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &States{s: memstore.New(store.Options{})}
	k := conversation.Key{PageID: "p", UserID: "u"}
	if got, err := s.Load(ctx, k); err != nil || got.Owner != conversation.Unknown || !got.OwnerSince.IsZero() {
		t.Fatalf("Load of an unknown conversation = %+v, %v, want the zero State", got, err)
	}
	st := conversation.State{Owner: conversation.AppOwner("42"), OwnerSince: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Transcript: []string{"hi"}}
	if err := s.Save(ctx, k, st, fakeclock.Start); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, k); err != nil || got.Owner != st.Owner || !got.OwnerSince.Equal(st.OwnerSince) || len(got.Transcript) != 1 || got.Transcript[0] != "hi" {
		t.Errorf("Load = %+v, %v, want %+v", got, err, st)
	}
	if k2, ok := parseStateKey(stateKey(k)); !ok || k2 != k {
		t.Errorf("parseStateKey(stateKey(%v)) = %v, %v", k, k2, ok)
	}
}

func TestStatesLoadReadsWhatEarlierVersionsStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &States{s: memstore.New(store.Options{})}
	k := conversation.Key{PageID: "p", UserID: "u"}
	// A state as the versions that stored encoding/json wrote it.
	legacy := `{"owner":{"kind":"app","app_id":"42"},"owner_since":"2026-01-02T03:04:05Z","transcript":["hi"],"object":"page"}`
	if err := s.s.SaveState(ctx, store.State{Key: stateKey(k), Data: []byte(legacy), LastActive: fakeclock.Start}); err != nil {
		t.Fatal(err)
	}
	want := conversation.State{Owner: conversation.AppOwner("42"), OwnerSince: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Transcript: []string{"hi"}, Object: "page"}
	got, err := s.Load(ctx, k)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load of a JSON state = %+v, %v, want %+v", got, err, want)
	}
	// Saved again, it is in the binary form.
	if err := s.Save(ctx, k, got, fakeclock.Start); err != nil {
		t.Fatal(err)
	}
	data, _, err := s.s.LoadState(ctx, stateKey(k))
	if err != nil || len(data) == 0 || data[0] == '{' {
		t.Fatalf("saved state = %q, %v, want the binary form", data, err)
	}
	if again, err := s.Load(ctx, k); err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("Load after Save = %+v, %v, want %+v", again, err, want)
	}
}

func TestStatesLoadRejectsAStateItCannotRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &States{s: memstore.New(store.Options{})}
	k := conversation.Key{PageID: "p", UserID: "u"}
	if err := s.s.SaveState(ctx, store.State{Key: stateKey(k), Data: []byte{0x01, 0x00}, LastActive: fakeclock.Start}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, k); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Load of a truncated state = %+v, %v, want an error saying it is truncated", got, err)
	}
}
