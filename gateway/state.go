package gateway

import (
	"sync"
	"time"

	"github.com/threadgate/threadgate/conversation"
)

// StateStore keeps the state of each conversation (conversation.State, a
// plain value). MemoryStateStore serves one process; a durable or shared
// implementation can serve restarts and several replicas.
//
// The gateway handles the events of one conversation one at a time: it
// loads the state, runs the conversation's transitions and saves the
// result.
type StateStore interface {
	// Load returns the state of a conversation (the zero State when
	// unknown).
	Load(k conversation.Key) conversation.State
	// Save stores the state of a conversation.
	Save(k conversation.Key, st conversation.State)
	// Expire forgets the conversations whose state was last touched
	// (conversation.State.LastTouched) before before, and returns how many
	// it forgot. A store whose entries expire by themselves (a TTL) may do
	// nothing.
	Expire(before time.Time) int
}

// MemoryStateStore is an in-memory StateStore.
type MemoryStateStore struct {
	mu sync.Mutex
	m  map[conversation.Key]conversation.State
}

// NewMemoryStateStore returns an empty store.
func NewMemoryStateStore() *MemoryStateStore {
	return &MemoryStateStore{m: map[conversation.Key]conversation.State{}}
}

// Load implements StateStore. The Transcript of the state returned is
// shared with the store: it is never changed in place, only replaced.
func (s *MemoryStateStore) Load(k conversation.Key) conversation.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

// Save implements StateStore.
func (s *MemoryStateStore) Save(k conversation.Key, st conversation.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = st
}

// Expire implements StateStore.
func (s *MemoryStateStore) Expire(before time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, st := range s.m {
		if st.LastTouched().Before(before) {
			delete(s.m, k)
			n++
		}
	}
	return n
}
