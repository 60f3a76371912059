package conversation

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
)

// EventKind says what happened in a conversation.
type EventKind string

// Event kinds: the webhook events threadgate handles, and the return timer.
const (
	// EventMessage is a message of the user.
	EventMessage EventKind = "message"
	// EventPostback is a postback of the user (a tapped button).
	EventPostback EventKind = "postback"
	// EventEcho is an echo of a message the Page sent (threadgate, the Page
	// Inbox or another app).
	EventEcho EventKind = "echo"
	// EventPass is a pass_thread_control webhook: an app passed the thread.
	EventPass EventKind = "pass_thread_control"
	// EventTake is a take_thread_control webhook: an app took the thread.
	EventTake EventKind = "take_thread_control"
	// EventRequest is a request_thread_control webhook: an app asks
	// threadgate for the thread.
	EventRequest EventKind = "request_thread_control"
	// EventReturnDue is the return timer's: the thread another app holds
	// may have been quiet for handover.return_after_idle.
	EventReturnDue EventKind = "return_due"
)

// Event is one thing that happened in a conversation.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Standby is true when the webhook came on the standby channel
	// (another app owns the thread).
	Standby bool
	// Object is the webhook object: "page" or "instagram" ("" for
	// EventReturnDue).
	Object string
	// AppID is the app the event names: the new owner of a pass or take,
	// the requesting app of a request, the app that sent an echo ("" when
	// the webhook names none).
	AppID string
	// Rules is the event as rules read it, with what the webhook holds
	// besides the fields above (page, sender, text, payload, quick reply,
	// attachments, metadata); Handle sets its Kind, Standby, Object and
	// AppID. For EventReturnDue only PageID and SenderID are read.
	Rules engine.Event
}

// Handle is the transition of a conversation on an event: it returns the
// new state and what the gateway must do, in order. It learns the owner
// from handover webhooks, from the channel a message comes on and from
// echoes; pauses the bot after a person wrote (handover.pause_on_human) and
// ends the pause on a hand-back; keeps the transcript when the rules read
// it (Settings.KeepTranscript); applies the request
// policy (handover.on_request); asks for the owner when a rule reads it and
// nothing is known; takes a quiet thread back (EventReturnDue); and runs
// the rules.
func Handle(st State, ev Event, now time.Time, s Settings) (State, []Effect) {
	t := transition{st: st, now: now, s: s}
	if ev.Kind == EventReturnDue {
		t.returnDue(ev)
		return t.st, t.effects
	}
	t.learnOwner(ev)
	t.observeActivity(ev)
	e, ok := t.rulesEvent(ev)
	if !ok {
		t.note(slog.LevelDebug, "this kind of event triggers no rule", nil, "this kind of event triggers no rule")
		return t.st, t.effects
	}
	if !s.RulesLoaded {
		t.note(slog.LevelWarn, "event not handled: no rules loaded", nil, "no rules loaded")
		return t.st, t.effects
	}
	if ev.Kind == EventRequest && t.requestPolicy(e) {
		return t.st, t.effects
	}
	if ev.Kind == EventMessage && e.Text != "" && !e.Standby {
		t.st.LastActivity = now
		if s.KeepTranscript {
			t.st.Transcript = appendTranscript(t.st.Transcript, e.Text)
		}
	}
	if !s.KeepTranscript {
		t.st.Transcript = nil
	}
	t.runRules(e)
	return t.st, t.effects
}

// Apply records what one of the gateway's calls did: a step's success or
// failure changes the owner and pause, a failed return is tried again after
// a full wait, a successful one runs the rules with `event: returned`; the
// answer of a LookupOwner sets the owner and runs the rules. It returns the
// new state and what the gateway must do next.
func Apply(st State, out Outcome, now time.Time, s Settings) (State, []Effect) {
	t := transition{st: st, now: now, s: s}
	switch out := out.(type) {
	case StepDone:
		t.stepDone(out)
	case OwnerFound:
		t.ownerFound(out)
	}
	return t.st, t.effects
}

// WatchVerdict says what the return timer does with a conversation it
// watched and found due.
type WatchVerdict int

// Verdicts of CheckWatched.
const (
	// Forget: nobody else holds the thread, or it is idle by now.
	Forget WatchVerdict = iota
	// WatchAgain: someone wrote since; watch it again, quiet since the
	// time CheckWatched returns.
	WatchAgain
	// QueueReturn: queue an EventReturnDue for the conversation.
	QueueReturn
)

// CheckWatched says what the return timer does with a conversation it has
// watched, quiet since since, once since is at least s.ReturnWait() ago.
// For WatchAgain it also returns when the thread went quiet.
func CheckWatched(st State, since, now time.Time, s Settings) (WatchVerdict, time.Time) {
	if !st.CurrentOwner(now).HeldByOther() {
		return Forget, time.Time{} // back with us, or idle: nothing to take back
	}
	if q := st.QuietSince(); q.After(since) {
		return WatchAgain, q
	}
	if s.ReturnWait() == IdleExpiry {
		return Forget, time.Time{} // return_after_idle is off and the thread is idle by now
	}
	return QueueReturn, time.Time{}
}

// grantMetadata is the metadata of a pass made by handover.on_request: grant.
const grantMetadata = "threadgate: request granted (handover.on_request: grant)"

// returnMetadata tells the app that loses the thread why.
const returnMetadata = "threadgate: the bot took the thread back after %s without messages (handover.return_after_idle)"

// transition accumulates one transition's state and effects.
type transition struct {
	st      State
	now     time.Time
	s       Settings
	effects []Effect
	// buf is the first allocation for effects, nil until one is emitted.
	buf *effectsBuf
}

// effectsBuf holds, in one allocation, room for a transition's first
// effects and the event a RunRules or LookupOwner points to or carries:
// most transitions emit one or two effects, and at most one of them runs
// the rules.
type effectsBuf struct {
	effects [4]Effect
	event   engine.Event
	// eventUsed is true once event is given out.
	eventUsed bool
}

func (t *transition) emit(e Effect) {
	t.grow()
	t.effects = append(t.effects, e)
}

// grow makes the transition's first allocation for effects.
func (t *transition) grow() {
	if t.buf == nil {
		t.buf = new(effectsBuf)
		t.effects = t.buf.effects[:0]
	}
}

// event returns a pointer to a copy of e that the transition's effects may
// keep, in effectsBuf when it has room.
func (t *transition) event(e engine.Event) *engine.Event {
	t.grow()
	if t.buf.eventUsed {
		p := new(engine.Event)
		*p = e
		return p
	}
	t.buf.eventUsed = true
	t.buf.event = e
	return &t.buf.event
}

func (t *transition) note(level slog.Level, msg string, attrs []any, report string) {
	t.emit(Note{Level: level, Message: msg, Attrs: attrs, Report: report})
}

// setOwner records a new owner, learned now, and watches the thread when
// another app holds it.
func (t *transition) setOwner(o Owner) {
	t.st.Owner = o
	t.st.OwnerSince = t.now
	if o.HeldByOther() {
		t.emit(Watch{Since: t.now})
	}
}

// isHandBack reports whether a pass gives the thread to threadgate: its new
// owner is APP_ID, or, with no APP_ID configured, it came on the messaging
// channel.
func (t *transition) isHandBack(ev Event) bool {
	if t.s.AppID != "" {
		return ev.AppID == t.s.AppID
	}
	return !ev.Standby
}

// learnOwner updates the owner from what a webhook shows.
func (t *transition) learnOwner(ev Event) {
	switch ev.Kind {
	case EventPass:
		if t.isHandBack(ev) {
			t.setOwner(Self)
			t.emit(Observe{Target: string(OwnerSelf), Direction: DirectionReturned})
			return
		}
		t.setOwner(AppOwner(ev.AppID))
		t.emit(Observe{Target: string(OwnerOther), Direction: DirectionPassedElsewhere})
	case EventTake:
		owner := AppOwner(ev.AppID)
		if ev.AppID == "" || (t.s.AppID != "" && ev.AppID == t.s.AppID) {
			owner = Self
		}
		t.setOwner(owner)
		t.emit(Observe{Target: string(OwnerOther), Direction: DirectionTaken})
	case EventMessage, EventPostback:
		cur := t.st.Owner
		switch {
		case ev.Standby && !cur.HeldByOther():
			t.setOwner(Other)
		case !ev.Standby && cur != Self:
			t.setOwner(Self)
		}
	case EventEcho:
		t.learnFromEcho(ev)
	case EventRequest:
		// A request moves nothing, but operators count them: an agent
		// app asking for threads the bot keeps is worth a look.
		t.emit(Observe{Target: string(OwnerOther), Direction: DirectionRequested})
	}
}

// learnFromEcho updates the owner from an echo: one on the standby channel
// shows that the app that sent it (or, without an app_id, some other app)
// owns the thread.
func (t *transition) learnFromEcho(ev Event) {
	if !ev.Standby {
		return
	}
	if ev.AppID == "" || (t.s.AppID != "" && ev.AppID == t.s.AppID) {
		if !t.st.Owner.HeldByOther() {
			t.setOwner(Other)
		}
		return
	}
	if o := AppOwner(ev.AppID); t.st.Owner != o {
		t.setOwner(o)
	}
}

// observeActivity records what an event shows of the people in the thread:
// the user's messages and an agent's echoes (for the idle clocks), a pause
// after a person wrote (handover.pause_on_human), the end of the pause when
// the thread is handed back.
func (t *transition) observeActivity(ev Event) {
	if ev.Object != "" {
		t.st.Object = ev.Object
	}
	switch {
	case ev.Kind == EventMessage || ev.Kind == EventPostback:
		t.st.LastUserMessage = t.now
		t.st.LastActivity = t.now
	case ev.Kind == EventEcho && t.isHumanEcho(ev):
		t.st.LastActivity = t.now
		pause := t.s.Handover.PauseOnHuman
		if !t.s.RulesLoaded || pause <= 0 {
			return
		}
		if until := t.now.Add(pause); until.After(t.st.PausedUntil) {
			t.st.PausedUntil = until
		}
		t.note(slog.LevelInfo, "a person wrote to the user: the bot is paused for them", []any{"pause", pause.String()}, "")
	case ev.Kind == EventPass && t.isHandBack(ev):
		// The agent gave the thread back: the bot answers again now.
		t.st.PausedUntil = time.Time{}
	}
}

// isHumanEcho reports whether an echo is of a message that a person (the
// Page Inbox, Business Suite) or another app sent, not threadgate itself.
//
// With APP_ID set, that is any echo whose app_id is not APP_ID, or that has
// none. Without APP_ID threadgate cannot recognise its own echoes by
// app_id, so only these count: an echo on the standby channel (another app
// owns the thread, so threadgate did not send it), and an echo whose app_id
// is the Page Inbox's, the Instagram Inbox's or an app named under the
// rules file's apps.
func (t *transition) isHumanEcho(ev Event) bool {
	if t.s.AppID != "" {
		return ev.AppID != t.s.AppID
	}
	switch {
	case ev.Standby:
		return true
	case ev.AppID == "":
		return false
	case messenger.IsInboxApp(ev.AppID):
		return true
	}
	return t.s.appName(ev.AppID) != ""
}

// rulesEvent completes the event as rules read it; false for an event that
// triggers no rule (an echo).
func (t *transition) rulesEvent(ev Event) (engine.Event, bool) {
	e := ev.Rules
	e.Standby, e.Object, e.AppID = ev.Standby, ev.Object, ev.AppID
	switch ev.Kind {
	case EventMessage:
		e.Kind = engine.KindMessage
	case EventPostback:
		e.Kind = engine.KindPostback
	case EventPass:
		e.Kind = engine.KindPassThreadControl
		// Only a hand-back to us is seen by ordinary rules; a pass to
		// another app is a standby matter.
		e.Standby = !t.isHandBack(ev)
	case EventTake:
		e.Kind = engine.KindTakeThreadControl
	case EventRequest:
		e.Kind = engine.KindRequestThreadControl
	default:
		return e, false
	}
	return e, true
}

// requestPolicy handles a request_thread_control as handover.on_request
// says. It returns false when the rules decide.
func (t *transition) requestPolicy(e engine.Event) bool {
	switch t.s.Handover.Policy() {
	case engine.RequestIgnore:
		t.note(slog.LevelInfo, "event handled", []any{"rule", "", "actions", []string{}, "outcome", "request_ignored"},
			"request ignored (handover.on_request: ignore)")
		return true
	case engine.RequestGrant:
	default:
		return false
	}
	if e.AppID == "" {
		t.note(slog.LevelWarn, "request_thread_control without requested_owner_app_id: not granted", nil,
			"request without a requesting app: nothing to grant")
		return true
	}
	t.note(slog.LevelDebug, "granting the request (handover.on_request: grant)", []any{"app", t.s.target(e.AppID)},
		"request granted (handover.on_request: grant)")
	t.emit(RunStep{Step: actions.PassThreadControl(t.s.target(e.AppID), e.AppID, grantMetadata), Purpose: PurposeGrant})
	return true
}

// runRules runs the rules with e, first asking who owns the thread when a
// rule reads the owner, nothing is known of it, the platform can tell, and
// it was not asked within OwnerLookupRetry.
func (t *transition) runRules(e engine.Event) {
	if t.st.CurrentOwner(t.now) == Unknown && t.s.ReadsOwner && t.s.CanLookupOwner &&
		(t.st.OwnerLookupAt.IsZero() || t.now.Sub(t.st.OwnerLookupAt) >= OwnerLookupRetry) {
		t.st.OwnerLookupAt = t.now
		t.emit(LookupOwner{Then: e})
		return
	}
	t.emit(RunRules{
		Input: engine.Input{
			Event: t.event(e),
			State: engine.State{
				Owner:      t.s.OwnerForRules(t.st.CurrentOwner(t.now)),
				Paused:     t.st.Paused(t.now),
				Transcript: t.st.Transcript,
			},
			Now: t.now,
		},
		CarryControl: t.s.CanCarryControl && t.s.Handover.DialectFor(e.PageID) == engine.DialectRouting,
	})
}

// ownerFound records the platform's answer to a lookup and runs the rules.
func (t *transition) ownerFound(out OwnerFound) {
	switch {
	case out.Err != nil:
		t.note(slog.LevelWarn, "could not ask who owns the thread; rules read owner as unknown", []any{"error", out.Err.Error()}, "")
	case out.AppID == "":
		t.setOwner(Idle)
	case t.s.AppID != "" && out.AppID == t.s.AppID:
		t.setOwner(Self)
	default:
		t.setOwner(AppOwner(out.AppID))
	}
	t.emitRules(out.Lookup.Then)
}

// emitRules runs the rules with e without asking for the owner again.
func (t *transition) emitRules(e engine.Event) {
	lookup := t.s.CanLookupOwner
	t.s.CanLookupOwner = false
	t.runRules(e)
	t.s.CanLookupOwner = lookup
}

// returnDue takes the thread back if another app still holds it and it has
// been quiet for handover.return_after_idle.
func (t *transition) returnDue(ev Event) {
	wait := t.s.Handover.ReturnAfterIdle
	if !t.s.RulesLoaded || wait <= 0 {
		return // turned off by a reload since the return was queued
	}
	if !t.st.CurrentOwner(t.now).HeldByOther() {
		return
	}
	if q := t.st.QuietSince(); t.now.Sub(q) < wait {
		t.emit(Watch{Since: q})
		return
	}
	object := t.st.Object
	if object == "" {
		object = "page"
	}
	then := engine.Event{Kind: engine.KindReturned, Object: object, PageID: ev.Rules.PageID, SenderID: ev.Rules.SenderID}
	t.emit(RunStep{Step: actions.TakeThreadControl(fmt.Sprintf(returnMetadata, FormatWait(wait))), Purpose: PurposeReturn, Then: then})
}

// stepDone records what a step did to the thread.
func (t *transition) stepDone(out StepDone) {
	eff := out.Run.Step.Effect()
	if out.Run.Purpose == PurposeReturn {
		t.returnDone(out)
		return
	}
	if out.Err != nil {
		if messenger.IsNotThreadOwner(out.Err) {
			t.setOwner(Other)
		}
		if out.Run.Purpose == PurposeGrant {
			t.note(slog.LevelError, "granting the request failed", []any{"app", eff.Target, "error", out.Err.Error()}, "")
		}
		return
	}
	t.controlled(eff)
	if out.Run.Purpose == PurposeGrant {
		t.note(slog.LevelInfo, "event handled", []any{"rule", "", "actions", []string{out.Run.Step.Kind()}, "outcome", "request_granted"}, "")
	}
}

// controlled records a successful thread-control change of threadgate's.
func (t *transition) controlled(eff actions.Effect) {
	switch eff.Control {
	case actions.ControlPass:
		t.setOwner(AppOwner(eff.AppID))
		t.emit(Observe{Target: eff.Target, Direction: DirectionPass})
	case actions.ControlTake:
		t.setOwner(Self)
		t.st.PausedUntil = time.Time{} // the bot has the thread again
		t.emit(Observe{Target: string(OwnerSelf), Direction: DirectionTake})
	case actions.ControlRelease:
		t.setOwner(Idle)
		t.emit(Observe{Target: string(OwnerIdle), Direction: DirectionRelease})
	case actions.ControlRequest:
		t.emit(Observe{Target: string(OwnerSelf), Direction: DirectionRequest})
	}
}

// returnDone records the outcome of taking a quiet thread back: on success
// the rules run with `event: returned`, on failure the next try waits a
// full return_after_idle.
func (t *transition) returnDone(out StepDone) {
	if out.Err != nil {
		t.st.ReturnTriedAt = t.now
		t.emit(Watch{Since: t.now})
		t.note(slog.LevelError, "taking an idle thread back failed", []any{"error", out.Err.Error()},
			"taking the idle thread back failed; will try again after return_after_idle")
		return
	}
	idle := t.now.Sub(t.st.QuietSince())
	t.controlled(out.Run.Step.Effect())
	t.note(slog.LevelInfo, "idle thread taken back", []any{"idle", FormatWait(idle)}, "")
	t.emitRules(out.Run.Then)
}

// FormatWait prints a duration without zero units: 2h, 1h30m, 45s.
func FormatWait(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
