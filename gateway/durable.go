package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/retry"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/memstore"
)

// This file handles one stored event: it skips a redelivery, decides and
// records the plan before the first step, runs the steps not done yet
// (recording each success), and completes the event (its state and dedup
// key in one write), schedules a retry, or dead-letters it.

// DedupTTL is how long an event's dedup key is remembered after it was
// handled: longer than Facebook redelivers.
const DedupTTL = 25 * time.Hour

// storeRetryWait is how long a lane waits after the store failed.
const storeRetryWait = time.Second

// Dead-letter reasons, as told to Observer.DeadLettered.
const (
	ReasonPermanent = "permanent"
	ReasonExhausted = "retries_exhausted"
	ReasonPanic     = "panic"
	ReasonCorrupt   = "undecodable"
	// ReasonOutsideWindow is a message the platform refused because the
	// user last wrote more than 24 hours ago: never retried, and a replay
	// only helps once the user has written again (see docs/profile.md).
	ReasonOutsideWindow = "outside_window"
)

// storedIncoming is a webhook event as the store keeps it: what rules and
// actions read (the messenger types keep an attachment's type and URL, not
// its payload).
type storedIncoming struct {
	Object  string           `json:"object"`
	PageID  messenger.ID     `json:"page_id"`
	Standby bool             `json:"standby,omitempty"`
	Event   *messenger.Event `json:"event"`
}

func encodeIncoming(in messenger.Incoming) ([]byte, error) {
	if b, ok := appendPlainMessage(make([]byte, 0, 256), in); ok {
		return b, nil
	}
	b, err := json.Marshal(storedIncoming{Object: in.Object, PageID: in.PageID, Standby: in.Standby, Event: in.Event})
	if err != nil {
		return nil, fmt.Errorf("gateway: encoding an event: %w", err)
	}
	return b, nil
}

func decodeIncoming(b []byte) (messenger.Incoming, error) {
	var s storedIncoming
	if err := json.Unmarshal(b, &s); err != nil {
		return messenger.Incoming{}, fmt.Errorf("gateway: decoding a stored event: %w", err)
	}
	if s.Event == nil {
		return messenger.Incoming{}, errors.New("gateway: decoding a stored event: no event")
	}
	return messenger.Incoming{Object: s.Object, PageID: s.PageID, Standby: s.Standby, Event: s.Event}, nil
}

// eventOf is a stored event as decoded: decoded when this process stored it
// (its body is not kept twice), else its body decoded.
func eventOf(ev *store.Event, decoded *messenger.Incoming) (messenger.Incoming, error) {
	if decoded != nil {
		return *decoded, nil
	}
	return decodeIncoming(ev.Body)
}

// pendingEvent is a stored event as the queue holds it. The job holds a
// pointer: the handler keeps the event's progress up to date in it between
// retries.
type pendingEvent struct {
	store.Event
	// seen is set once this process has handled the event: an event
	// queued at start waits for the NotBefore a previous process
	// recorded, once.
	seen bool
	// in is the event decoded, when this process stored it (nil: decode
	// Body).
	in *messenger.Incoming
	// ctx is the delivery's context in fleet mode (Config.Source), nil
	// otherwise.
	ctx context.Context
	// h is the handling under way, for the recovery of a panic.
	h *handling
	// plan is the event's plan once this process decided or decoded it:
	// a retry replays it without decoding, and a plan not written yet
	// (Progress.Plan empty) is still this event's plan.
	plan *decodedPlan
}

// storedJob is the queue's job of a stored event.
func storedJob(ev store.Event) Job {
	return Job{Key: ev.Lane, Value: &pendingEvent{Event: ev}, Enqueued: ev.Accepted}
}

// handleJob handles one queued job: a stored event or a thread's return.
func (g *Gateway) handleJob(ctx context.Context, j Job) Verdict {
	switch v := j.Value.(type) {
	case *returnJob:
		defer func() {
			if r := recover(); r != nil {
				g.obs.Recovered()
				g.log.Error("taking a thread back panicked", "panic", panicText(r))
			}
		}()
		g.handleReturn(ctx, v)
		return Done
	case *pendingEvent:
		if v.ctx != nil {
			return g.handleDelivery(ctx, v)
		}
		if !v.seen {
			v.seen = true
			if wait := v.Progress.NotBefore.Sub(g.now()); wait > 0 {
				return RetryAfter(wait) // a retry a previous process scheduled
			}
		}
		return g.handleStored(ctx, v)
	}
	return Done
}

// handleStored handles one stored event. A panic while it is handled is
// recovered here: the event is dead-lettered, and the worker and every
// other lane go on.
func (g *Gateway) handleStored(ctx context.Context, pe *pendingEvent) (v Verdict) {
	ev, decoded := &pe.Event, pe.in
	// Store writes outlive the grace period: a step that succeeded and is
	// not recorded would run again after the restart.
	wctx := context.WithoutCancel(ctx)
	defer func() {
		if r := recover(); r != nil {
			v = g.recovered(wctx, ev, decoded, pe.h, r)
		}
		pe.h = nil
	}()
	if decoded == nil {
		if rc, ok, err := decodeReturnCheck(ev.Body); ok {
			if err != nil {
				return g.deadLetter(wctx, ev, nil, store.Failure{Error: err.Error()}, store.Completion{}, ReasonCorrupt)
			}
			return g.handleReturnCheck(ctx, wctx, ev, rc)
		}
	}
	in, err := eventOf(ev, decoded)
	if err != nil {
		return g.deadLetter(wctx, ev, nil, store.Failure{Error: err.Error()}, store.Completion{}, ReasonCorrupt)
	}
	key := conversation.Key{PageID: in.PageID.String(), UserID: userOf(in.Event)}
	dk := dedupKey(key.PageID, in.Event)
	h := g.handling(key, string(in.Event.Kind()), in.Standby)
	pe.h = h
	cev := conversationEvent(in)
	h.rep.Text = cev.Rules.Text
	if cev.Kind == conversation.EventPostback {
		h.rep.Text = cev.Rules.Payload
	}
	resumed := len(ev.Progress.Plan) > 0 || pe.plan != nil
	if !resumed {
		var before *conversation.State // the state, when the dedup check read it too
		if ev.ReplayOf == 0 {
			seen, st, err := g.seen(wctx, dk, ev.Lane)
			if err != nil {
				return g.storeFailed(wctx, h, "checking the dedup key", err)
			}
			before = st
			if seen {
				g.obs.DedupHit()
				h.rep.Note = "redelivered event skipped"
				h.log.Debug(h.rep.Note)
				if err := g.store.Complete(wctx, ev.Seq, store.Completion{}); err != nil {
					return g.storeFailed(wctx, h, "completing a redelivery", err)
				}
				g.storeUp()
				if g.cfg.OnHandled != nil {
					st, _ := g.states.Load(wctx, key)
					h.report(st)
				}
				return Done
			}
		}
		cev.Rules.User = h.userProfile(ctx, h.set, cev)
		dp, verdict, ok := g.decide(ctx, wctx, ev, h, before, cev)
		if !ok {
			return verdict
		}
		pe.plan = dp
	}
	if pe.plan == nil {
		dp, err := decodePlan(ev.Progress.Plan)
		if err != nil {
			return g.deadLetter(wctx, ev, h, store.Failure{Error: err.Error()}, store.Completion{DedupKeys: []string{dk}, DedupTTL: DedupTTL}, ReasonCorrupt)
		}
		pe.plan = dp
	}
	dp := pe.plan
	// Replay the plan: the same transitions, from the same state, at the
	// same time, with the same settings.
	h.mode, h.plan = modeExec, dp
	h.start, h.settings = dp.Time, dp.Settings
	h.resumeFrom = ev.Progress.StepsDone
	h.quiet = resumed
	startDone := ev.Progress.StepsDone
	h.stored, h.wctx = ev, wctx
	if ev.ReplayOf != 0 && resumed {
		// A replayed plan is older than the conversation: its steps are
		// applied to the state as it is now.
		cur, err := g.states.Load(wctx, key)
		if err != nil {
			return g.storeFailed(wctx, h, "loading the state", err)
		}
		h.now = &cur
	}
	st, effects := conversation.Handle(dp.State, cev, dp.Time, dp.Settings)
	st = h.run(ctx, st, effects)
	if h.now != nil {
		st = *h.now
	}
	switch {
	case h.halt == nil:
		rec, err := encodeStateKey(ev.Lane, st, g.now()) // the lane is the state's key
		if err != nil {
			return g.deadLetter(wctx, ev, h, store.Failure{Error: err.Error()}, store.Completion{DedupKeys: []string{dk}, DedupTTL: DedupTTL}, ReasonCorrupt)
		}
		h.dedupBuf[0] = dk
		if err := g.store.Complete(wctx, ev.Seq, store.Completion{State: rec, DedupKeys: h.dedupBuf[:], DedupTTL: DedupTTL}); err != nil {
			return g.storeFailed(wctx, h, "completing an event", err)
		}
		g.storeUp()
		for _, since := range h.watch {
			g.timers.watch(key, since)
		}
		h.logHandled("ok")
		h.report(st)
		return Done
	case h.retryable():
		return g.retryLater(ctx, wctx, ev, h, st, dk, startDone)
	default:
		h.final = st
		rec, _ := encodeState(key, st, g.now())
		reason := ReasonPermanent
		if messenger.IsOutsideWindow(h.halt.err) {
			reason = ReasonOutsideWindow
		}
		return g.deadLetter(wctx, ev, h, h.failure(ev.Progress.Attempts+1), store.Completion{State: rec, DedupKeys: []string{dk}, DedupTTL: DedupTTL}, reason)
	}
}

// stepDone records that the first n steps of a stored event's plan
// succeeded (modeExec).
func (h *handling) stepDone(n int) {
	g, ev, dp := h.g, h.stored, h.plan
	p := ev.Progress
	p.StepsDone = n
	p.Attempts, p.RetryingSince, p.NotBefore, p.LastError = 0, time.Time{}, time.Time{}, ""
	// The step is done: this process knows it even when the store does
	// not, so a retry here does not run it again (the next write of
	// progress records it). Only a restart may run it once more.
	ev.Progress = p
	if n >= len(dp.Steps) {
		// The last step: the completion that follows records it, as soon
		// as a progress write would have.
		return
	}
	if err := g.withPlan(ev, dp); err != nil {
		h.log.Error("could not encode the plan", "seq", ev.Seq, "error", err.Error())
		return
	}
	if err := g.store.Progress(h.wctx, ev.Seq, ev.Progress); err != nil {
		if g.fenced(h.wctx, err) {
			h.log.Info("another replica took the lane over; it handles the event from its recorded progress", "seq", ev.Seq)
			return
		}
		h.log.Error("could not record a step's success", "seq", ev.Seq, "error", err.Error())
		g.storeDown.Store(true)
	}
}

// decide makes the plan of a stored event: a dry run of the transitions
// that asks who owns the thread and evaluates the rules, but runs no step.
// Nothing is written: the plan is recorded with the first write that needs
// it (see plan.go). A plan of several steps is encoded here, so that a plan
// that cannot be kept fails before its first step rather than after it.
func (g *Gateway) decide(ctx, wctx context.Context, ev *store.Event, h *handling, loaded *conversation.State, cev conversation.Event) (*decodedPlan, Verdict, bool) {
	var before conversation.State
	if loaded != nil {
		before = *loaded
	} else {
		var err error
		if before, err = g.states.loadKey(wctx, ev.Lane); err != nil { // the lane is the state's key
			return nil, g.storeFailed(wctx, h, "loading the state", err), false
		}
	}
	h.mode = modeDecide
	h.quiet = true
	h.decided.plan = plan{Version: planVersion, Time: h.start, State: before, Settings: h.settings}
	h.rec = &h.decided.plan
	st, effects := conversation.Handle(before, cev, h.start, h.settings)
	h.run(ctx, st, effects)
	if ctx.Err() != nil {
		// Shutting down: the lookups (owner, profile) were cancelled, not
		// answered. A plan built on them would be replayed after the
		// restart as if the platform had said so; decide afresh then.
		return nil, RetryAfter(0), false
	}
	if h.halt != nil {
		f := store.Failure{Rule: h.halt.rule, Step: h.halt.index, Error: h.halt.err.Error()}
		return nil, g.deadLetter(wctx, ev, h, f, store.Completion{}, ReasonCorrupt), false
	}
	dp := &h.decided // the event keeps it, for a retry: h stays with it
	dp.decisions = h.recFired
	if len(dp.Steps) > 1 {
		if err := g.withPlan(ev, dp); err != nil {
			return nil, g.deadLetter(wctx, ev, h, store.Failure{Error: err.Error()}, store.Completion{}, ReasonCorrupt), false
		}
	}
	// The exec pass starts afresh: the report and the log line tell what
	// it does.
	h.fired, h.ran, h.evaluated, h.renderErrors, h.halt = h.fired[:0], h.ran[:0], false, 0, nil
	h.owners, h.decisions, h.step = 0, 0, 0
	return dp, Done, true
}

// seen reports whether an event's dedup key was recorded. A store that
// reads the conversation's state in the same round trip (store.SeenLoader)
// returns it too; otherwise the state is nil, to be loaded when needed.
func (g *Gateway) seen(ctx context.Context, dedupKey, stateKey string) (bool, *conversation.State, error) {
	sl, ok := g.store.(store.SeenLoader)
	if !ok {
		seen, err := g.store.Seen(ctx, dedupKey)
		return seen, nil, err
	}
	seen, data, found, err := sl.SeenAndLoadState(ctx, dedupKey, stateKey)
	if err != nil || seen {
		return seen, nil, err
	}
	var st conversation.State
	if found {
		if st, err = decodeState(data); err != nil {
			return false, nil, err
		}
	}
	return false, &st, nil
}

// withPlan sets the event's progress to carry its plan, encoding it the
// first time a write needs it.
func (g *Gateway) withPlan(ev *store.Event, dp *decodedPlan) error {
	if len(ev.Progress.Plan) > 0 {
		return nil
	}
	enc, err := dp.encode()
	if err != nil {
		return err
	}
	ev.Progress.Plan = enc
	return nil
}

// retryLater records a transient failure and parks the lane until the
// next attempt, or dead-letters the event when the retry budget is spent.
func (g *Gateway) retryLater(ctx, wctx context.Context, ev *store.Event, h *handling, st conversation.State, dk string, startDone int) Verdict {
	now := g.now()
	if ctx.Err() != nil {
		// Shutting down: the call was cancelled, not failed. The event
		// stays in the store as it is.
		return RetryAfter(0)
	}
	if err := g.withPlan(ev, h.plan); err != nil {
		return g.deadLetter(wctx, ev, h, store.Failure{Error: err.Error()}, store.Completion{DedupKeys: []string{dk}, DedupTTL: DedupTTL}, ReasonCorrupt)
	}
	p := ev.Progress
	if h.halt.index > startDone || p.RetryingSince.IsZero() {
		// A new step fails: its retry budget starts now.
		p.Attempts, p.RetryingSince = 0, now
	}
	p.Attempts++
	f := h.halt
	wait, again := g.policy.Next(retry.Failure{Attempt: p.Attempts, Class: f.class, Elapsed: now.Sub(p.RetryingSince)}, g.rand)
	if !again {
		h.final = st
		rec, _ := encodeState(h.key, st, now)
		return g.deadLetter(wctx, ev, h, h.failure(p.Attempts), store.Completion{State: rec, DedupKeys: []string{dk}, DedupTTL: DedupTTL}, ReasonExhausted)
	}
	p.NotBefore = now.Add(wait)
	p.LastError = f.err.Error()
	if err := g.store.Progress(wctx, ev.Seq, p); err != nil {
		if g.fenced(wctx, err) || errors.Is(err, store.ErrNotFound) {
			return Done // another replica has the event now
		}
		h.log.Error("could not record a failed attempt", "seq", ev.Seq, "error", err.Error())
		g.storeDown.Store(true)
	}
	ev.Progress = p
	attrs := append([]any{"rule", f.rule, "step", f.index, "step_kind", f.kind, "class", f.class.String(),
		"attempt", p.Attempts, "wait_ms", wait.Milliseconds()}, graphAttrs(f.err)...)
	h.log.Warn("step failed, will retry", attrs...)
	h.logHandled("retrying")
	return RetryAfter(wait)
}

// failure describes the step that stopped h for a dead letter.
func (h *handling) failure(attempts int) store.Failure {
	f := h.halt
	out := store.Failure{Rule: f.rule, Step: f.index, StepKind: f.kind, Error: f.err.Error(), Attempts: attempts}
	var ge *messenger.GraphError
	if errors.As(f.err, &ge) {
		out.Graph = &store.GraphError{HTTPStatus: ge.HTTPStatus, Code: ge.Code, Subcode: ge.Subcode, Type: ge.Type, Message: ge.Message, FBTraceID: ge.FBTraceID}
	}
	return out
}

// deadLetter moves an event to the dead letters, logs and counts it; the
// lane goes on.
func (g *Gateway) deadLetter(wctx context.Context, ev *store.Event, h *handling, f store.Failure, c store.Completion, reason string) Verdict {
	f.At = g.now()
	if f.Attempts == 0 {
		f.Attempts = 1
	}
	if h != nil && h.plan != nil {
		// The plan and the steps done may not be written yet: the dead
		// letter keeps them, so that a replay runs what was decided and
		// not the steps done again.
		if err := g.withPlan(ev, h.plan); err == nil {
			if err := g.store.Progress(wctx, ev.Seq, ev.Progress); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return Done
				}
				return g.storeFailed(wctx, h, "recording the plan of a dead letter", err)
			}
		}
	}
	if err := g.store.DeadLetter(wctx, ev.Seq, f, c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Done
		}
		return g.storeFailed(wctx, h, "dead-lettering an event", err)
	}
	g.storeUp()
	g.obs.DeadLettered(reason)
	attrs := []any{"seq", ev.Seq, "reason", reason, "rule", f.Rule, "step", f.Step, "step_kind", f.StepKind, "attempts", f.Attempts}
	if ge := f.Graph; ge != nil {
		attrs = append(attrs, "http_status", ge.HTTPStatus, "code", ge.Code, "subcode", ge.Subcode, "fbtrace_id", ge.FBTraceID)
	}
	if h != nil {
		h.log.Error("event dead-lettered", attrs...)
		h.logHandled("error")
		h.report(h.final)
	} else {
		g.log.Error("event dead-lettered", attrs...)
	}
	return Done
}

// recovered dead-letters an event whose handling panicked. The panic's
// value is not logged as it is (it could hold user text): its type, or a
// runtime error's message, and where it happened.
func (g *Gateway) recovered(wctx context.Context, ev *store.Event, decoded *messenger.Incoming, h *handling, r any) Verdict {
	what := "panic: " + panicText(r)
	g.obs.Recovered()
	f := store.Failure{Error: what}
	if h != nil {
		f.Rule = h.rule
		f.Step = h.step - 1
		if h.plan != nil && f.Step >= 0 && f.Step < len(h.plan.Steps) {
			f.StepKind = h.plan.Steps[f.Step]
		}
		if f.Step < 0 {
			f.Step = 0
		}
		h.log.Error("event handling panicked", "rule", f.Rule, "step", f.Step, "step_kind", f.StepKind, "panic", what)
	} else {
		g.log.Error("event handling panicked", "seq", ev.Seq, "panic", what)
	}
	var c store.Completion
	if in, err := eventOf(ev, decoded); err == nil {
		c = store.Completion{DedupKeys: []string{dedupKey(in.PageID.String(), in.Event)}, DedupTTL: DedupTTL}
	}
	return g.deadLetter(wctx, ev, h, f, c, ReasonPanic)
}

// panicText describes a panic's value without user text: a runtime
// error's message, or the value's type.
func panicText(r any) string {
	if re, ok := r.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("%T", r)
}

// storeFailed logs a store failure, marks the gateway not ready, and has
// the lane try again a little later. An event that is no longer pending
// (a completion whose answer was lost, then tried again) is done; in fleet
// mode, an event whose lane another replica took over is that replica's.
func (g *Gateway) storeFailed(ctx context.Context, h *handling, what string, err error) Verdict {
	logf := g.log.Info
	if h != nil {
		logf = h.log.Info
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		logf("the event is no longer pending: done", "while", what)
		return Done
	case g.fenced(ctx, err):
		logf("another replica took the lane over; it handles the event from its recorded progress", "while", what)
		return Done
	}
	g.storeDown.Store(true)
	if h != nil {
		h.log.Error("store failed, will retry", "while", what, "error", err.Error())
	} else {
		g.log.Error("store failed, will retry", "while", what, "error", err.Error())
	}
	return RetryAfter(storeRetryWait)
}

// storeUp notes that a store write succeeded.
func (g *Gateway) storeUp() { g.storeDown.Store(false) }

// classify says whether a step's error is tried again: network errors,
// timeouts, HTTP 5xx and the transient and rate-limit codes are; a call
// cancelled by the shutdown is too (the event stays in the store).
func classify(ctx context.Context, err error) retry.Class {
	var ge *messenger.GraphError
	switch {
	case errors.As(err, &ge):
		return retry.ClassifyGraph(ge.HTTPStatus, ge.Code, ge.Subcode)
	case errors.Is(err, messenger.ErrNoToken), errors.Is(err, messenger.ErrUnsuccessful):
		return retry.Permanent
	case ctx.Err() != nil:
		return retry.Transient
	}
	return retry.Transient
}

// graphAttrs are the log attributes of a Graph error.
func graphAttrs(err error) []any {
	var ge *messenger.GraphError
	if !errors.As(err, &ge) {
		return []any{"error", err.Error()}
	}
	return []any{"http_status", ge.HTTPStatus, "code", ge.Code, "subcode", ge.Subcode, "fbtrace_id", ge.FBTraceID}
}

// abandonedKey names an abandoned event in the shutdown's log: its mid, or
// for an event without one (handover events) its dedup tuple with the
// sender tag in place of the raw user ID.
func (g *Gateway) abandonedKey(in messenger.Incoming) string {
	ev := in.Event
	key := dedupKey(in.PageID.String(), ev)
	if strings.HasPrefix(key, "m:") || strings.HasPrefix(key, "p:") {
		return key
	}
	return fmt.Sprintf("%s:%s:%s:%d:%s", ev.Kind(), in.PageID, g.senderTag(userOf(ev)), int64(ev.Timestamp), handoverApp(ev))
}

// logAbandoned logs what Drain left unhandled: by mid when the store does
// not outlive the process.
func (g *Gateway) logAbandoned(jobs []Job) {
	var mids []string
	n := 0
	for _, j := range jobs {
		ev, ok := j.Value.(*pendingEvent)
		if !ok {
			continue
		}
		n++
		if in, err := eventOf(&ev.Event, ev.in); err == nil {
			mids = append(mids, g.abandonedKey(in))
		}
	}
	if n == 0 {
		return
	}
	if _, mem := g.store.(*memstore.Store); mem {
		g.log.LogAttrs(context.Background(), slog.LevelError, "shutdown: events abandoned, not handled", slog.Int("count", n), slog.Any("events", mids))
		return
	}
	g.log.Info("shutdown: events left in the store, handled after the next start", "count", n)
}
