// Package gateway is threadgate's HTTP side and its dispatch: it verifies and
// decodes webhooks, queues their events (one lane per user, so each user's
// events are handled in order while different users are handled in
// parallel), drops redeliveries, and handles each event: it loads the
// conversation's state from the StateStore, asks the conversation package
// what to do (conversation.Handle), carries out the effects — the rules
// through the engine, their steps through the actions against the Messenger
// Platform — feeds what the calls did back to the conversation
// (conversation.Apply), and saves the new state.
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
)

// Defaults for Config fields left zero.
const (
	DefaultQueueSize = 10000
	DefaultWorkers   = 64
	DefaultDedupSize = 100000
	MaxBodyBytes     = 1 << 20
)

// Config is what a Gateway is built from.
type Config struct {
	// Rules returns the rule set in force; nil until one is loaded. Each event
	// calls it once and uses that set to the end.
	Rules func() *engine.Set
	// Platform executes actions (the Graph API client, or the sandbox's).
	Platform actions.Platform
	// Secrets verify X-Hub-Signature-256 (the app secret, then a previous one
	// during rotation). Empty: signatures are not checked.
	Secrets [][]byte
	// TrustedProxies lists the proxies (IP addresses or CIDR ranges, see
	// ParseTrustedProxies) whose X-Forwarded-For names the client in logs;
	// empty: none, the connection's address is the client.
	TrustedProxies []string
	// VerifyToken answers the subscription handshake.
	VerifyToken string
	// AppID is the gateway's own Facebook app ID ("" when unknown).
	AppID string
	// QueueSize bounds the events accepted and not yet handled.
	QueueSize int
	// Workers is how many events are handled at once (different users).
	Workers int
	// Queue, Dedup and State default to in-memory implementations.
	Queue Queue
	Dedup Deduper
	State StateStore
	// Logger receives the gateway's logs; secrets never reach it.
	Logger *slog.Logger
	// LogSenderIDs logs raw sender IDs instead of a short hash of them.
	LogSenderIDs bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Observer is told what happens, for metrics; nil: nothing is told.
	Observer Observer
	// OnHandled, if set, receives a Report after each event is handled
	// (the sandbox's inspector uses it). With Explain set, reports carry
	// the engine's trace of every rule looked at.
	OnHandled func(Report)
	// Explain makes every evaluation record why each rule did or did not
	// fire. It costs a linear scan of the rules: for the sandbox, not for
	// production traffic.
	Explain bool
	// TimerInterval is how often the gateway looks for threads to take
	// back (handover.return_after_idle); DefaultTimerInterval when zero.
	TimerInterval time.Duration
}

// Report tells what the gateway did with one event.
type Report struct {
	// Time is when handling started.
	Time time.Time
	// PageID and UserID name the conversation.
	PageID, UserID string
	// Kind is the webhook event kind; Standby its channel.
	Kind    string
	Standby bool
	// Text is the user's text or postback payload, for display.
	Text string
	// Rules lists the rules that fired.
	Rules []string
	// Trace explains each rule looked at (with Config.Explain).
	Trace []engine.RuleTrace
	// Actions lists each step run with its fields and error ("" when ok).
	Actions []ActionReport
	// Owner is the thread owner after the event, as rules read it.
	Owner string
	// Paused is true when the bot was paused for the user
	// (handover.pause_on_human) as the rules were evaluated.
	Paused bool
	// Note says why nothing ran when nothing did (redelivery, echo, no rules).
	Note string
}

// ActionReport is one step the gateway ran.
type ActionReport struct {
	Kind   string
	Fields map[string]any
	Error  string
}

// Gateway receives webhooks and handles their events.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	queue   Queue
	dedup   Deduper
	state   StateStore
	obs     Observer
	now     func() time.Time
	running sync.WaitGroup
	started atomic.Bool
	// timers watches the threads other apps hold, for
	// handover.return_after_idle (returns.go).
	timers *returnTimers
	// ownerNeed caches whether the rules in force read the owner.
	ownerNeed atomic.Pointer[ownerNeed]
}

// New returns a Gateway; call Start to handle events.
func New(cfg Config) *Gateway {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, queue: cfg.Queue, dedup: cfg.Dedup, state: cfg.State, obs: cfg.Observer, now: cfg.Now,
		timers: newReturnTimers()}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.queue == nil {
		g.queue = NewMemoryQueue(cfg.QueueSize)
	}
	if g.dedup == nil {
		g.dedup = NewMemoryDeduper(DefaultDedupSize)
	}
	if g.state == nil {
		g.state = NewMemoryStateStore()
	}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

// Queue returns the gateway's event queue (for metrics and tests).
func (g *Gateway) Queue() Queue { return g.queue }

// State returns the gateway's conversation state store.
func (g *Gateway) State() StateStore { return g.state }

// Start starts the workers. They run until Drain.
func (g *Gateway) Start(ctx context.Context) {
	if g.started.Swap(true) {
		return
	}
	g.running.Go(func() { g.queue.Run(ctx, g.cfg.Workers, g.handleJob) })
	g.running.Go(func() { g.runTimers(ctx) })
}

// Drain stops accepting events and waits until every accepted event has been
// handled, or ctx is done; cancel the context given to Start to abort the
// Graph calls still running after that.
func (g *Gateway) Drain(ctx context.Context) error {
	g.timers.close()
	g.queue.Close()
	done := make(chan struct{})
	go func() { g.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// senderTag is what logs show of a user ID: a short stable hash unless raw
// IDs were asked for.
func (g *Gateway) senderTag(id string) string {
	if g.cfg.LogSenderIDs {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

// incoming is a queued event.
type incoming struct {
	messenger.Incoming
	received time.Time
}
