// Package gateway is threadgate's HTTP side and its dispatch. It verifies
// and decodes webhooks and stores their events in a store.Store before it
// answers 200 (503 when the store is full or fails). It schedules them, one
// lane per user, so each user's events are handled in order while different
// users are handled in parallel; it skips redeliveries (the store remembers
// the dedup keys), and handles each event:
//
//   - the first time, it loads the conversation's state, asks the
//     conversation package what to do (conversation.Handle), asks the
//     platform who owns the thread and evaluates the rules when the
//     transitions say so, and records all of it as the event's plan before
//     any step runs (plan.go);
//   - it runs the plan's steps through the actions against the Messenger
//     Platform, records each success, feeds what the calls did back to the
//     conversation (conversation.Apply), and completes the event: the new
//     state and the dedup key in one write;
//   - a transient failure or a rate limit parks the user's lane until the
//     retry policy's next attempt (no worker waits); a permanent failure, a
//     spent retry budget or a panic makes a dead letter, which the admin
//     endpoints list, replay and drop (deadletters.go).
//
// A retry, a replay or a restart replays the recorded plan: the steps done
// are not run again.
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/retry"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/memstore"
)

// Defaults for Config fields left zero.
const (
	DefaultQueueSize  = store.DefaultMaxPending
	DefaultQueueBytes = store.DefaultMaxPendingBytes
	DefaultWorkers    = 64
	// DefaultBacklogPerWorker × Workers is the default Config.Backlog.
	DefaultBacklogPerWorker = 4
	// DefaultAdmitWait is the default Config.AdmitWait: well within the
	// 5 s Facebook waits for an answer.
	DefaultAdmitWait = time.Second
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
	// Store keeps the accepted events, their progress, the dead letters,
	// the dedup keys and the conversation states. Nil: a store/memstore
	// bounded by QueueSize and QueueBytes. The caller that gives a Store
	// closes it, after Drain.
	Store store.Store
	// QueueSize and QueueBytes bound the events accepted and not yet
	// handled (count and bytes) of the memory store made when Store is nil;
	// a Store given is bounded by its own Limits.
	QueueSize  int
	QueueBytes int64
	// Workers is how many events are handled at once (different users).
	Workers int
	// Backlog is how many events, waiting or being handled, the gateway
	// lets in before a webhook waits for room (at most AdmitWait):
	// DefaultBacklogPerWorker × Workers when zero, no pacing when
	// negative. A steady load the workers can absorb is then answered a
	// little later instead of filling the queue, and the queue stays
	// short. With Source, the backlog is this replica's deliveries: its
	// share of the fleet's queue.
	Backlog int
	// AdmitWait is the longest a webhook waits for room in the backlog;
	// then its events are accepted past it (up to QueueSize).
	// DefaultAdmitWait when zero.
	AdmitWait time.Duration
	// Retry is the retry policy of the steps that fail for a transient
	// reason or a rate limit; zero: retry.DefaultPolicy(). Its Budget is
	// --retry-for.
	Retry retry.Policy
	// Rand draws the jitter of the retries; nil: math/rand/v2.
	Rand retry.Rand
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
	// Source, when set, makes the gateway one replica of a fleet that
	// shares Store (several replicas on one Redis, fleet.go): a webhook's
	// events are stored and answered 200 but not queued here, and the
	// events this replica handles are the source's deliveries. Nil: the
	// gateway handles every event it stores, and at start every event the
	// store holds.
	Source EventSource
	// UserProfileTTL is how long a user's profile (for templates that
	// read .User) is kept before it is asked again; DefaultUserProfileTTL
	// when zero.
	UserProfileTTL time.Duration
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
	cfg    Config
	log    *slog.Logger
	store  store.Store
	queue  *MemoryQueue
	states *States
	obs    Observer
	now    func() time.Time
	policy retry.Policy
	rand   retry.Rand
	// intake guards closing: a webhook holds it for reading while it
	// stores and queues its events, Drain for writing while it closes.
	intake  sync.RWMutex
	closing bool
	running sync.WaitGroup
	started atomic.Bool
	// storeDown is set while the store fails (not ErrFull): /readyz
	// answers 503 until a store call succeeds again.
	storeDown atomic.Bool
	// cancelWork cancels the context of the workers (Drain, when the
	// grace period is over).
	cancelWork context.CancelFunc
	// timers watches the threads other apps hold, for
	// handover.return_after_idle (returns.go).
	timers *returnTimers
	// acquired is the source's Acquired when the timer last looked for
	// the threads to watch in the lanes held (fleet mode).
	acquired atomic.Uint64
	// users caches user profiles for templates that read .User; nil when
	// the platform cannot tell them (user.go).
	users *messenger.UserProfileCache
}

// New returns a Gateway; call Start to handle events.
func New(cfg Config) *Gateway {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, store: cfg.Store, obs: cfg.Observer, now: cfg.Now,
		policy: cfg.Retry, rand: cfg.Rand, timers: newReturnTimers()}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.store == nil {
		g.store = memstore.New(store.Options{
			Limits: store.Limits{MaxPending: cfg.QueueSize, MaxPendingBytes: cfg.QueueBytes},
			Now:    g.now,
		})
	}
	if g.policy == (retry.Policy{}) {
		g.policy = retry.DefaultPolicy()
	}
	if g.rand == nil {
		g.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	// The store bounds what is accepted; the scheduler holds what the
	// store holds, and the timer's returns besides.
	g.queue = NewMemoryQueue(math.MaxInt)
	if cfg.Backlog >= 0 {
		backlog := cfg.Backlog
		if backlog == 0 {
			backlog = DefaultBacklogPerWorker * cfg.Workers
		}
		g.queue.SetBacklog(backlog)
	}
	if g.cfg.AdmitWait <= 0 {
		g.cfg.AdmitWait = DefaultAdmitWait
	}
	g.states = &States{s: g.store}
	if up, ok := cfg.Platform.(UserProfiler); ok {
		ttl := cfg.UserProfileTTL
		if ttl <= 0 {
			ttl = DefaultUserProfileTTL
		}
		g.users = messenger.NewUserProfileCache(up.UserProfile, ttl, maxCachedUsers, g.now)
	}
	return g
}

// Queue returns the gateway's scheduler of events (for metrics and tests).
func (g *Gateway) Queue() Queue { return g.queue }

// State returns the conversation states, read and written through the
// store.
func (g *Gateway) State() *States { return g.states }

// Store returns the store the gateway runs on.
func (g *Gateway) Store() store.Store { return g.store }

// Start queues the events the store holds from before (in sequence order,
// so each lane's order holds), watches again the threads other apps hold,
// and starts the workers. They run until Drain or until ctx is done. With
// a Config.Source it queues the source's deliveries instead.
func (g *Gateway) Start(ctx context.Context) error {
	if g.started.Swap(true) {
		return nil
	}
	if g.cfg.Source != nil {
		// The source delivers the pending events of the lanes this
		// replica holds; the timer watches their threads once it holds
		// them (CheckReturns).
		ctx, g.cancelWork = context.WithCancel(ctx)
		g.running.Go(func() { g.consume(ctx) })
		g.running.Go(func() { g.queue.Run(ctx, g.cfg.Workers, g.handleJob) })
		g.running.Go(func() { g.runTimers(ctx) })
		return nil
	}
	pending, err := g.store.Pending(ctx)
	if err != nil {
		return fmt.Errorf("gateway: reading the pending events: %w", err)
	}
	jobs := make([]Job, 0, len(pending))
	for _, ev := range pending {
		jobs = append(jobs, storedJob(ev))
	}
	if err := g.queue.Push(jobs...); err != nil {
		return fmt.Errorf("gateway: queuing the pending events: %w", err)
	}
	if len(pending) > 0 {
		g.log.Info("queued the events pending from before", "count", len(pending))
	}
	if err := g.watchStoredStates(ctx, nil); err != nil {
		return err
	}
	ctx, g.cancelWork = context.WithCancel(ctx)
	g.running.Go(func() { g.queue.Run(ctx, g.cfg.Workers, g.handleJob) })
	g.running.Go(func() { g.runTimers(ctx) })
	return nil
}

// ErrGraceOver is returned by Drain when its context ended before every
// event was handled.
var ErrGraceOver = errors.New("gateway: the grace period ended before every event was handled")

// Drain stops accepting events and waits until every accepted event has
// been handled, or ctx is done; then it stops the workers (the Graph calls
// still running are cancelled) and returns ErrGraceOver. An event waiting
// for a retry is not waited for. What was not handled stays in the store:
// with a durable store it runs after the next start, without one it is
// logged by mid. The caller closes its store after Drain.
func (g *Gateway) Drain(ctx context.Context) error {
	g.intake.Lock()
	g.closing = true
	g.intake.Unlock()
	g.timers.close()
	g.queue.Close()
	done := make(chan struct{})
	go func() { g.running.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ErrGraceOver
		if g.cancelWork != nil {
			g.cancelWork()
		}
		<-done
	}
	g.logAbandoned(g.queue.Abandoned())
	return err
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
