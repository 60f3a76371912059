package gateway

import (
	"context"
	"strings"
	"time"

	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/store"
)

// States reads and writes the conversations' states (conversation.State, a
// plain value kept in its binary form, conversation.State.MarshalBinary)
// through the gateway's store.Store, so that with a durable store the owner,
// the pauses, the transcript and the return deadlines survive a restart.
//
// The gateway handles the events of one conversation one at a time: it
// loads the state, runs the conversation's transitions and saves the result
// with the event's completion (store.Completion), in one atomic write.
type States struct {
	s store.Store
}

// stateKey is the store's key of a conversation: "pageID/userID", the lane
// of its events too.
func stateKey(k conversation.Key) string { return k.PageID + "/" + k.UserID }

// parseStateKey is the inverse of stateKey. Page IDs have no slash.
func parseStateKey(s string) (conversation.Key, bool) {
	page, user, ok := strings.Cut(s, "/")
	return conversation.Key{PageID: page, UserID: user}, ok && page != "" && user != ""
}

// Load returns the state of a conversation (the zero State when unknown).
func (s *States) Load(ctx context.Context, k conversation.Key) (conversation.State, error) {
	return s.loadKey(ctx, stateKey(k))
}

// loadKey is Load by the store's key of the conversation (a stored
// event's lane).
func (s *States) loadKey(ctx context.Context, key string) (conversation.State, error) {
	data, ok, err := s.s.LoadState(ctx, key)
	if err != nil || !ok {
		return conversation.State{}, err
	}
	return decodeState(data)
}

// Save stores the state of a conversation changed outside an event (the
// return timer).
func (s *States) Save(ctx context.Context, k conversation.Key, st conversation.State, now time.Time) error {
	rec, err := encodeState(k, st, now)
	if err != nil {
		return err
	}
	return s.s.SaveState(ctx, *rec)
}

// Expire forgets the conversations last active before before, and returns
// how many it forgot.
func (s *States) Expire(ctx context.Context, before time.Time) (int, error) {
	return s.s.ExpireStates(ctx, before)
}

// encodeState is a state as the store keeps it, in its binary form. Its
// activity is the latest moment the state says anything about, or now when
// it says nothing.
func encodeState(k conversation.Key, st conversation.State, now time.Time) (*store.State, error) {
	return encodeStateKey(stateKey(k), st, now)
}

// encodeStateKey is encodeState by the store's key of the conversation.
func encodeStateKey(key string, st conversation.State, now time.Time) (*store.State, error) {
	data, err := st.MarshalBinary()
	if err != nil {
		return nil, err // it says what failed: "conversation: encoding a state: …"
	}
	active := st.LastTouched()
	if active.IsZero() {
		active = now
	}
	return &store.State{Key: key, Data: data, LastActive: active}, nil
}

// decodeState reads a stored state: its binary form, or the JSON form that
// earlier versions stored.
func decodeState(data []byte) (conversation.State, error) {
	var st conversation.State
	if err := st.UnmarshalBinary(data); err != nil {
		return conversation.State{}, err // "conversation: decoding a state: …"
	}
	return st, nil
}
