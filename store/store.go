// Package store defines where the gateway keeps what it has promised to do:
// the events it acknowledged, how far each one got, the events that failed
// for good (dead letters), the keys of events already handled (dedup) and
// each conversation's state.
//
// A Store speaks of events, lanes, progress, completion, dead letters, dedup
// keys and conversation state, never of how they are kept, so that the same
// gateway runs on memory (memstore), on one embedded file (boltstore) or on
// Redis shared by several replicas. The package storetest holds the
// conformance suite every implementation passes; docs/durability.md describes
// the design and its guarantees.
//
// Bodies and states are opaque bytes: the gateway encodes them, a store
// never looks inside.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrFull is returned by Append and Replay when accepting the events would
// exceed the store's bound on pending events or pending bytes. The webhook
// answers 503 so that Facebook delivers the events again later.
var ErrFull = errors.New("store: too many events pending")

// ErrNotFound is returned for a sequence number that is not pending or a
// dead letter ID that is not kept.
var ErrNotFound = errors.New("store: no such event")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("store: closed")

// ErrInvalid is returned for an argument no store can accept, such as an
// event without a lane.
var ErrInvalid = errors.New("store: invalid argument")

// NewEvent is one event of a webhook, as the gateway hands it to Append.
type NewEvent struct {
	// Lane orders events: the events of one lane are handled one at a
	// time, in sequence order. The gateway uses "pageID/userID".
	Lane string
	// Body is the gateway's encoding of the event. The store keeps a copy.
	Body []byte
}

// Event is an accepted event that is pending or dead-lettered.
type Event struct {
	// Seq is the event's sequence number: unique for the life of the
	// store and increasing in the order events were accepted.
	Seq uint64
	// Lane is the lane given to Append.
	Lane string
	// Body is the body given to Append.
	Body []byte
	// Accepted is when Append stored the event.
	Accepted time.Time
	// ReplayOf is the dead letter ID this event was replayed from, 0 for
	// an event as accepted from a webhook. The gateway does not check the
	// dedup keys of a replayed event: they were recorded when it was
	// dead-lettered.
	ReplayOf uint64
	// Progress is how far handling the event got.
	Progress Progress
}

// Size is the number of bytes the event counts against Limits.MaxPendingBytes.
func (e Event) Size() int64 { return int64(len(e.Body)) }

// Progress is how far handling an event got, recorded after each step so
// that a retried or restarted event does not repeat the steps that
// succeeded: only the step in flight when a crash happened may run twice.
type Progress struct {
	// Plan is the gateway's encoding of what it decided to do with the
	// event (the rule, its steps, the state to save). Recording the plan
	// with the first progress means a retry or a restart runs the
	// remaining steps of the same plan, even if the rules were reloaded
	// in between. Empty until the gateway has decided.
	Plan []byte
	// StepsDone is how many steps of the plan succeeded.
	StepsDone int
	// Attempts is how many times the step in flight was tried.
	Attempts int
	// RetryingSince is when the step in flight first failed, the start
	// of the retry budget (--retry-for); zero when nothing failed.
	RetryingSince time.Time
	// NotBefore is when the next attempt may start; zero for now.
	NotBefore time.Time
	// LastError describes the last failure, without user text.
	LastError string
}

// State is one conversation's state as the gateway encoded it.
type State struct {
	// Key names the conversation, e.g. "pageID/userID".
	Key string
	// Data is the gateway's encoding of the state.
	Data []byte
	// LastActive is when anything last happened in the conversation:
	// ExpireStates and the bound on states forget the least recently
	// active first.
	LastActive time.Time
}

// Completion is what handling an event produced, written in the same
// atomic step that removes the event from the pending set.
type Completion struct {
	// State is the conversation state the event left behind; nil leaves
	// the stored state as it is.
	State *State
	// DedupKeys identify the event across redeliveries (its mid, or the
	// handover tuple). Seen reports them for DedupTTL.
	DedupKeys []string
	// DedupTTL is how long the dedup keys are remembered.
	DedupTTL time.Duration
}

// GraphError is the Graph API error that made a step fail.
type GraphError struct {
	// HTTPStatus is the status code of the response.
	HTTPStatus int
	// Code and Subcode are Graph's "code" and "error_subcode".
	Code, Subcode int
	// Type is Graph's error type, e.g. "OAuthException".
	Type string
	// Message is Graph's message.
	Message string
	// FBTraceID identifies the failed request in support tickets.
	FBTraceID string
}

// Failure says why an event became a dead letter.
type Failure struct {
	// Rule is the name of the rule whose step failed; empty when the
	// event failed before a rule was chosen.
	Rule string
	// Step is the index of the failed step in the rule's plan.
	Step int
	// StepKind is the kind of the failed step, e.g. "reply" or
	// "pass_thread_control".
	StepKind string
	// Graph is the Graph API error, nil when the failure was not one
	// (a network error, a panic).
	Graph *GraphError
	// Error describes the failure, without user text.
	Error string
	// Attempts is how many times the failed step was tried.
	Attempts int
	// At is when the event was dead-lettered.
	At time.Time
}

// DeadLetter is an event that failed permanently or ran out of retries.
type DeadLetter struct {
	// ID names the dead letter for Replay and Drop: the Seq the event had
	// when it was dead-lettered.
	ID uint64
	// Event is the event with its progress when it failed.
	Event Event
	// Failure says why it failed.
	Failure Failure
}

// Stats counts what a store holds, for metrics.
type Stats struct {
	// Pending and PendingBytes are the events accepted and neither
	// completed nor dead-lettered, and the sum of their sizes.
	Pending      int
	PendingBytes int64
	// DeadLetters is the number of dead letters kept.
	DeadLetters int
	// DeadLettersEvicted counts the dead letters forgotten because
	// Limits.MaxDeadLetters was reached, since the store was created.
	DeadLettersEvicted uint64
	// States is the number of conversation states kept.
	States int
}

// Limits bound what a store keeps. A zero field takes its default.
type Limits struct {
	// MaxPending is the most events pending at once (default 10,000).
	MaxPending int
	// MaxPendingBytes is the most bytes of bodies pending at once
	// (default 64 MiB). It must be at least the largest webhook body the
	// gateway accepts, or such a webhook is refused forever.
	MaxPendingBytes int64
	// MaxDeadLetters is the most dead letters kept (default 10,000); past
	// it, the oldest is forgotten and counted in Stats.
	MaxDeadLetters int
	// MaxStates is the most conversation states kept (default 100,000);
	// past it, the least recently active is forgotten.
	MaxStates int
	// MaxDedupKeys bounds the dedup keys a store keeps in memory (default
	// 200,000); past it, the key closest to expiry is forgotten first. A
	// store on disk or Redis may ignore it and rely on the TTL.
	MaxDedupKeys int
}

// Default limits.
const (
	DefaultMaxPending      = 10000
	DefaultMaxPendingBytes = 64 << 20
	DefaultMaxDeadLetters  = 10000
	DefaultMaxStates       = 100000
	DefaultMaxDedupKeys    = 200000
)

// WithDefaults returns l with every zero or negative field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxPending <= 0 {
		l.MaxPending = DefaultMaxPending
	}
	if l.MaxPendingBytes <= 0 {
		l.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if l.MaxDeadLetters <= 0 {
		l.MaxDeadLetters = DefaultMaxDeadLetters
	}
	if l.MaxStates <= 0 {
		l.MaxStates = DefaultMaxStates
	}
	if l.MaxDedupKeys <= 0 {
		l.MaxDedupKeys = DefaultMaxDedupKeys
	}
	return l
}

// Options configure a store.
type Options struct {
	// Limits bound what the store keeps.
	Limits Limits
	// Now is the clock for accept times and dedup expiry; nil means
	// time.Now. Tests inject a fake one.
	Now func() time.Time
}

// Clock returns o.Now, or time.Now when it is nil.
func (o Options) Clock() func() time.Time {
	if o.Now == nil {
		return time.Now
	}
	return o.Now
}

// Store keeps the gateway's accepted events, their progress, dead letters,
// dedup keys and conversation states. Every method is safe for concurrent
// use. A method that changes something has made the change durable (as
// durable as the store is) when it returns nil.
type Store interface {
	// Append stores all of a webhook's events or none of them and returns
	// them with their sequence numbers, in the order given. It returns
	// ErrFull when they would exceed the bound on pending events or
	// bytes. An empty slice stores nothing.
	Append(ctx context.Context, events []NewEvent) ([]Event, error)
	// Pending returns every pending event, with its progress, in
	// sequence order. The gateway calls it at start to queue again what
	// a crash or a shutdown left behind.
	Pending(ctx context.Context) ([]Event, error)
	// Progress replaces the progress of a pending event.
	Progress(ctx context.Context, seq uint64, p Progress) error
	// Complete removes a pending event and, in the same atomic step,
	// saves the state it produced and records its dedup keys.
	Complete(ctx context.Context, seq uint64, c Completion) error
	// DeadLetter moves a pending event, with its progress, to the dead
	// letters with the failure, and in the same atomic step applies c
	// (the state the event left, its dedup keys).
	DeadLetter(ctx context.Context, seq uint64, f Failure, c Completion) error
	// DeadLetters returns the dead letters, oldest ID first.
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	// Replay moves a dead letter back to the pending events with a new
	// sequence number, its progress kept (the steps done are not run
	// again) but its attempts and retry budget reset, and ReplayOf set
	// to id. It returns ErrFull like Append.
	Replay(ctx context.Context, id uint64) (Event, error)
	// Drop forgets a dead letter.
	Drop(ctx context.Context, id uint64) error
	// Seen reports whether a dedup key was recorded and has not expired.
	Seen(ctx context.Context, key string) (bool, error)
	// Remember records a dedup key for ttl, for an event that is skipped
	// without Complete. A key already recorded keeps the later expiry.
	Remember(ctx context.Context, key string, ttl time.Duration) error
	// ExpireDedup forgets the dedup keys past their TTL and returns how
	// many it forgot. A store whose keys expire by themselves returns 0.
	ExpireDedup(ctx context.Context) (int, error)
	// LoadState returns a conversation's state and whether there is one.
	LoadState(ctx context.Context, key string) ([]byte, bool, error)
	// SaveState saves a conversation's state changed outside an event
	// (a timer), evicting the least recently active state when the bound
	// on states is reached.
	SaveState(ctx context.Context, s State) error
	// ScanStates calls fn for every state, in no particular order, and
	// stops at fn's first error, which it returns. fn may call the store.
	ScanStates(ctx context.Context, fn func(State) error) error
	// ExpireStates forgets the states last active before the given time
	// and returns how many it forgot.
	ExpireStates(ctx context.Context, before time.Time) (int, error)
	// Stats counts what the store holds.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the store. Methods called afterwards return
	// ErrClosed.
	Close() error
}

// SeenLoader is implemented by stores that can answer Seen and LoadState
// for an event in one round trip (Redis): the gateway asks both before it
// decides, and a store that is not one is asked them in turn.
type SeenLoader interface {
	// SeenAndLoadState reports, as Seen, whether the dedup key was
	// recorded and has not expired, and returns, as LoadState, the
	// state saved under stateKey and whether there is one.
	SeenAndLoadState(ctx context.Context, dedupKey, stateKey string) (seen bool, state []byte, found bool, err error)
}

// ReplayProgress is the progress a replayed dead letter starts with: its
// plan and the steps done are kept, so only the remaining steps run, while
// the attempts and the retry budget start afresh.
func ReplayProgress(p Progress) Progress {
	p.Attempts = 0
	p.RetryingSince = time.Time{}
	p.NotBefore = time.Time{}
	return p
}

// CheckCompletion returns an error wrapping ErrInvalid when c cannot be
// applied: a state without a key, or dedup keys that are empty or have no
// positive TTL.
func CheckCompletion(c Completion) error {
	if c.State != nil && c.State.Key == "" {
		return fmt.Errorf("completion state has no key: %w", ErrInvalid)
	}
	for _, k := range c.DedupKeys {
		if k == "" {
			return fmt.Errorf("completion has an empty dedup key: %w", ErrInvalid)
		}
	}
	if len(c.DedupKeys) > 0 && c.DedupTTL <= 0 {
		return fmt.Errorf("completion has dedup keys and no TTL: %w", ErrInvalid)
	}
	return nil
}
