package gateway

import (
	"sync"
	"time"
)

// Owner values that are not app names or IDs.
const (
	OwnerSelf    = "self"
	OwnerIdle    = "idle"
	OwnerUnknown = ""
)

// Conversation identifies one user's thread with one Page.
type Conversation struct {
	PageID string
	UserID string
}

// ThreadState is what the gateway remembers of one conversation.
type ThreadState struct {
	// Owner is OwnerSelf, OwnerIdle, another app's ID, or OwnerUnknown.
	Owner string
	// OwnerSince is when Owner was learned.
	OwnerSince time.Time
	// LastActivity is the last message of the user or an agent.
	LastActivity time.Time
	// PausedUntil pauses the bot's rules for the user until then.
	PausedUntil time.Time
	// Transcript holds the user's last few messages, oldest first.
	Transcript []string
	// LastUserMessage is the user's last message or postback, on either
	// channel: the platform makes a thread idle 24 hours after it.
	LastUserMessage time.Time
	// OwnerLookupAt is when GET thread_owner was last asked about the
	// thread, so that a failing lookup is not repeated on every event.
	OwnerLookupAt time.Time
	// ReturnTriedAt is when taking the thread back after
	// handover.return_after_idle last failed; the next try waits a full
	// delay after it.
	ReturnTriedAt time.Time
	// Object is the webhook object of the conversation ("page" for
	// Messenger, "instagram"), for events the gateway makes itself.
	Object string
}

// StateStore keeps per-conversation state. MemoryStateStore serves one
// process; a shared implementation can serve several replicas.
type StateStore interface {
	// Get returns the state of a conversation (zero value when unknown).
	Get(c Conversation) ThreadState
	// Update changes the state of a conversation atomically.
	Update(c Conversation, f func(*ThreadState))
	// Expire forgets the conversations with no activity, owner change or
	// pause since before, and returns how many it forgot. A store whose
	// entries expire by themselves (a TTL) may do nothing.
	Expire(before time.Time) int
}

// MemoryStateStore is an in-memory StateStore.
type MemoryStateStore struct {
	mu sync.Mutex
	m  map[Conversation]*ThreadState
}

// NewMemoryStateStore returns an empty store.
func NewMemoryStateStore() *MemoryStateStore {
	return &MemoryStateStore{m: map[Conversation]*ThreadState{}}
}

// Get implements StateStore.
func (s *MemoryStateStore) Get(c Conversation) ThreadState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.m[c]; st != nil {
		return *st // Transcript is never changed in place, only replaced: sharing it is safe
	}
	return ThreadState{}
}

// Update implements StateStore.
func (s *MemoryStateStore) Update(c Conversation, f func(*ThreadState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[c]
	if st == nil {
		st = &ThreadState{}
		s.m[c] = st
	}
	f(st)
}

// Expire implements StateStore.
func (s *MemoryStateStore) Expire(before time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c, st := range s.m {
		if st.lastTouched().Before(before) {
			delete(s.m, c)
			n++
		}
	}
	return n
}

// lastTouched is the latest moment the state says anything about.
func (st *ThreadState) lastTouched() time.Time {
	t := st.OwnerSince
	for _, u := range []time.Time{st.LastActivity, st.LastUserMessage, st.PausedUntil, st.OwnerLookupAt, st.ReturnTriedAt} {
		if u.After(t) {
			t = u
		}
	}
	return t
}
