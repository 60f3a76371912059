package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/retry"
	"github.com/threadgate/threadgate/store"
)

// This file handles one queued event: it loads the conversation's state,
// asks the conversation package what to do (conversation.Handle), carries
// out the effects — the rules through the engine, their steps through the
// actions, the platform's answers back through conversation.Apply — and
// saves the new state.

// userOf returns the ID of the user a webhook event is about. Echoes go from
// the Page to the user, so their user is the recipient.
func userOf(ev *messenger.Event) string {
	if ev.Kind() == messenger.KindEcho {
		return ev.Recipient.ID.String()
	}
	return ev.Sender.ID.String()
}

// dedupKey identifies an event across redeliveries: its mid, or for handover
// events the tuple (kind, user, timestamp, app).
func dedupKey(pageID string, ev *messenger.Event) string {
	kind := ev.Kind()
	switch kind {
	case messenger.KindMessage, messenger.KindEcho:
		if ev.Message.MID != "" {
			return "m:" + ev.Message.MID
		}
	case messenger.KindPostback:
		if ev.Postback.MID != "" {
			return "p:" + ev.Postback.MID
		}
	}
	return fmt.Sprintf("%s:%s:%s:%d:%s", kind, pageID, userOf(ev), int64(ev.Timestamp), handoverApp(ev))
}

func handoverApp(ev *messenger.Event) string {
	switch {
	case ev.PassThreadControl != nil:
		return ev.PassThreadControl.NewOwnerAppID.String()
	case ev.TakeThreadControl != nil:
		return ev.TakeThreadControl.NewOwnerAppID.String()
	case ev.RequestThreadControl != nil:
		return ev.RequestThreadControl.RequestedOwnerAppID.String()
	}
	return ""
}

// conversationEvent converts a webhook event into what the conversation
// package and the rules read.
func conversationEvent(in messenger.Incoming) conversation.Event {
	ev := in.Event
	c := conversation.Event{
		Standby: in.Standby,
		Object:  in.Object,
		Rules:   engine.Event{PageID: in.PageID.String(), SenderID: ev.Sender.ID.String()},
	}
	switch ev.Kind() {
	case messenger.KindMessage:
		m := ev.Message
		c.Kind = conversation.EventMessage
		c.Rules.MID = m.MID
		c.Rules.Text = m.Text
		if m.QuickReply != nil {
			c.Rules.QuickReply, c.Rules.HasQuickReply = m.QuickReply.Payload, true
		}
		for _, a := range m.Attachments {
			c.Rules.Attachments = append(c.Rules.Attachments, a.Type)
		}
	case messenger.KindEcho:
		c.Kind = conversation.EventEcho
		c.AppID = ev.Message.AppID.String()
	case messenger.KindPostback:
		c.Kind = conversation.EventPostback
		c.Rules.MID = ev.Postback.MID
		c.Rules.Payload = ev.Postback.Payload
		c.Rules.Text = ev.Postback.Title
	case messenger.KindPassThreadControl:
		c.Kind = conversation.EventPass
		c.AppID = ev.PassThreadControl.NewOwnerAppID.String()
		c.Rules.Metadata = ev.PassThreadControl.Metadata
	case messenger.KindTakeThreadControl:
		c.Kind = conversation.EventTake
		c.AppID = ev.TakeThreadControl.NewOwnerAppID.String()
		c.Rules.Metadata = ev.TakeThreadControl.Metadata
	case messenger.KindRequestThreadControl:
		c.Kind = conversation.EventRequest
		c.AppID = ev.RequestThreadControl.RequestedOwnerAppID.String()
		c.Rules.Metadata = ev.RequestThreadControl.Metadata
	}
	return c
}

// mode says how a handling carries out the effects.
type mode int

const (
	// modeLive decides and runs at once, and a failed step goes back to
	// the transitions (the return timer's events, which are not stored).
	modeLive mode = iota
	// modeDecide is the first pass over a stored event: it asks who owns
	// the thread and evaluates the rules, runs no step, and records all
	// it learned in a plan.
	modeDecide
	// modeExec replays a stored event's plan: it runs the steps not done
	// yet, records each success, and stops at the first failure.
	modeExec
)

// handling is the gateway's work on one event of one conversation: the
// rule set and settings read once at the start, the log and the report.
type handling struct {
	g        *Gateway
	key      conversation.Key
	to       messenger.Recipient
	set      *engine.Set
	settings conversation.Settings
	start    time.Time
	// log writes the event's lines: it points at logger, which the
	// handling holds so that the two take one allocation.
	log    *eventLogger
	logger eventLogger
	rep    Report
	// watch holds the Watch effects, carried out once the state is saved.
	watch []time.Time

	mode mode
	// rec is the plan being recorded (modeDecide); plan the plan replayed
	// (modeExec).
	rec *plan
	// decided holds the plan made in modeDecide; rec points into it.
	decided decodedPlan
	// recFired holds, in modeDecide, each evaluation's firings as made:
	// the run that follows replays them as they are, and they are encoded
	// only when the plan is written.
	recFired [][]firing
	plan     *decodedPlan
	// owners and decisions are the replay's cursors into the plan's
	// answers; step is the index of the next step of the plan.
	owners, decisions, step int
	// resumeFrom is how many steps a previous attempt did: they are not
	// run again.
	resumeFrom int
	// quiet suppresses the logs, notes, counts and reports of what a
	// previous attempt did already (and of modeDecide's dry run).
	quiet bool
	// rule names the rule whose steps run ("" outside a rule).
	rule string
	// halt is the failure that stopped a modeExec handling.
	halt *stepFailure
	// stored is the stored event whose plan runs (modeExec), and wctx
	// the context of its store writes: stepDone records its progress.
	stored *store.Event
	wctx   context.Context
	// now is the state now of a replayed dead letter (modeExec): the
	// steps that run are applied to it, since the plan's state is older
	// than the conversation's.
	now *conversation.State
	// fired and ran are the rules fired and the steps that ran (a failed
	// one marked ":error"), for the log line; a nil slice starts in the
	// handling's own array (addFired, addRan), which holds nearly every
	// event's.
	fired, ran []string
	firedBuf   [2]string
	ranBuf     [4]string
	// dedupBuf holds the event's dedup key for its completion.
	dedupBuf [1]string
	// evaluated is true once the rules ran; renderErrors counts the
	// actions of the fired rules that could not be rendered.
	evaluated    bool
	renderErrors int
	// final is the state a dead-lettered event left, for its report.
	final conversation.State
}

// stepFailure is the failure of a step that stopped a stored event.
type stepFailure struct {
	rule  string
	index int
	kind  string
	err   error
	class retry.Class
}

// retryable reports whether the handling stopped on a failure that is
// tried again later (the state is not told about it).
func (h *handling) retryable() bool { return h.halt != nil && h.halt.class != retry.Permanent }

func (g *Gateway) handling(key conversation.Key, kind string, standby bool) *handling {
	start := g.now()
	set := g.rules()
	h := &handling{
		g:        g,
		key:      key,
		to:       messenger.Recipient{PageID: key.PageID, UserID: key.UserID},
		set:      set,
		settings: g.settings(set),
		start:    start,
		logger:   eventLogger{g: g, kind: kind, standby: standby, user: key.UserID},
		rep:      Report{Time: start, PageID: key.PageID, UserID: key.UserID, Kind: kind, Standby: standby},
	}
	h.log = &h.logger
	return h
}

// settings returns what the conversation's transitions read with a rule
// set (nil when none is loaded).
func (g *Gateway) settings(set *engine.Set) conversation.Settings {
	_, lookup := g.cfg.Platform.(OwnerLookup)
	_, carry := g.cfg.Platform.(ControlSender)
	s := conversation.Settings{AppID: g.cfg.AppID, CanLookupOwner: lookup, CanCarryControl: carry}
	if set != nil {
		s.RulesLoaded = true
		s.Handover = set.Handover()
		s.Apps = set.Apps()
		s.ReadsOwner = set.ReadsOwner()
		s.KeepTranscript = set.ReadsTranscript()
	}
	return s
}

// at is the transitions' clock: the plan's time for a stored event, so
// that a replay derives the same state, the clock for the timer's events.
func (h *handling) at() time.Time {
	if h.mode == modeLive {
		return h.g.now()
	}
	return h.start
}

// report gives the report to Config.OnHandled, with the owner as rules
// read it after the event.
func (h *handling) report(st conversation.State) {
	if h.g.cfg.OnHandled == nil {
		return
	}
	h.rep.Owner = h.settings.OwnerForRules(st.CurrentOwner(h.g.now()))
	h.g.cfg.OnHandled(h.rep)
}

// run carries out effects in order; the effects that Apply returns for an
// outcome are carried out before the rest. It returns the state after all
// of them, or after the step that stopped a stored event.
func (h *handling) run(ctx context.Context, st conversation.State, effects []conversation.Effect) conversation.State {
	for len(effects) > 0 && h.halt == nil {
		e := effects[0]
		effects = effects[1:]
		var more []conversation.Effect
		switch e := e.(type) {
		case conversation.RunRules:
			st = h.runRules(ctx, st, e)
		case conversation.RunStep:
			h.rule = "handover." + string(e.Purpose)
			live, err := h.doStep(ctx, h.g.cfg.Platform, e.Step)
			if h.retryable() {
				return st
			}
			if live {
				h.reportStep(e.Step, err)
			}
			st, more = conversation.Apply(st, conversation.StepDone{Run: e, Err: err}, h.at(), h.settings)
			h.applyNow(conversation.StepDone{Run: e, Err: err}, live)
		case conversation.LookupOwner:
			found, ok := h.lookupOwner(ctx, e)
			if !ok {
				return st
			}
			st, more = conversation.Apply(st, found, h.at(), h.settings)
		case conversation.Watch:
			if h.mode != modeDecide {
				h.watch = append(h.watch, e.Since)
			}
		case conversation.Observe:
			if !h.quiet {
				h.g.obs.Handover(e.Target, e.Direction)
			}
		case conversation.Note:
			if !h.quiet {
				h.note(e)
			}
		}
		effects = append(more, effects...)
	}
	return st
}

// applyNow applies a step that ran to the state now of a replayed dead
// letter.
func (h *handling) applyNow(done conversation.StepDone, live bool) {
	if h.now != nil && live {
		*h.now, _ = conversation.Apply(*h.now, done, h.g.now(), h.settings)
	}
}

// note logs a Note and sets the report's note.
func (h *handling) note(n conversation.Note) {
	if n.Report != "" {
		h.rep.Note = n.Report
	}
	switch n.Level {
	case slog.LevelDebug:
		h.log.Debug(n.Message, n.Attrs...)
	case slog.LevelInfo:
		h.log.Info(n.Message, n.Attrs...)
	case slog.LevelWarn:
		h.log.Warn(n.Message, n.Attrs...)
	default:
		h.log.Error(n.Message, n.Attrs...)
	}
}

// OwnerLookup is implemented by platforms that can tell who owns a thread
// (the Graph API client: GET /me/thread_owner). It returns the owner's app
// ID, or "" when the thread is idle.
type OwnerLookup interface {
	ThreadOwner(ctx context.Context, to messenger.Recipient) (string, error)
}

// lookupOwner asks the platform who owns the thread, or, replaying a
// plan, answers as the platform did. ok is false when the plan has no
// answer (the handling is stopped).
func (h *handling) lookupOwner(ctx context.Context, e conversation.LookupOwner) (found conversation.OwnerFound, ok bool) {
	if h.mode == modeExec {
		if h.owners >= len(h.plan.Owners) {
			h.halt = &stepFailure{index: h.step, err: errPlanMismatch, class: retry.Permanent}
			return found, false
		}
		a := h.plan.Owners[h.owners]
		h.owners++
		return conversation.OwnerFound{Lookup: e, AppID: a.AppID, Err: a.err()}, true
	}
	lk, can := h.g.cfg.Platform.(OwnerLookup)
	if !can { // Settings.CanLookupOwner was false: never asked
		found = conversation.OwnerFound{Lookup: e, Err: fmt.Errorf("the platform cannot tell who owns a thread")}
	} else {
		id, err := lk.ThreadOwner(ctx, h.to)
		found = conversation.OwnerFound{Lookup: e, AppID: id, Err: err}
	}
	if h.mode == modeDecide {
		a := ownerAnswer{AppID: found.AppID}
		if found.Err != nil {
			a.Error = found.Err.Error()
		}
		h.rec.Owners = append(h.rec.Owners, a)
	}
	return found, true
}

// runRules evaluates the rules (or, replaying a plan, takes the decision
// recorded) and runs the steps of the rules that fire, recording what
// happened in the report.
func (h *handling) runRules(ctx context.Context, st conversation.State, r conversation.RunRules) conversation.State {
	g, log, rep := h.g, h.log, &h.rep
	rep.Paused = r.Input.State.Paused
	h.evaluated = true
	var fired []firing
	if h.mode == modeExec {
		if h.decisions >= len(h.plan.decisions) {
			h.halt = &stepFailure{index: h.step, err: errPlanMismatch, class: retry.Permanent}
			return st
		}
		fired = h.plan.decisions[h.decisions]
		h.decisions++
	} else {
		var dec engine.Decision
		if g.cfg.Explain {
			dec = h.set.Explain(r.Input)
			rep.Trace = dec.Trace
		} else {
			dec = h.set.Evaluate(r.Input)
		}
		for _, we := range dec.WhenErrors {
			log.Warn("when expression failed, counted as false", "rule", we.Rule, "error", we.Error())
		}
		for _, f := range dec.Fired {
			for _, err := range f.Errors {
				log.Error("action not rendered", "rule", f.Rule.Name, "error", err.Error())
			}
			calls := conversation.Calls(f.Steps, r.CarryControl)
			fired = append(fired, firing{rule: f.Rule.Name, calls: calls, renderErrors: len(f.Errors)})
		}
		if h.mode == modeDecide {
			h.recFired = append(h.recFired, fired) // encoded if the plan is written
		}
	}
	if len(fired) == 0 {
		if !h.quiet {
			rep.Note = "no rule fired"
		}
		return st
	}
	for _, f := range fired {
		if !h.quiet && h.mode != modeDecide {
			g.obs.RuleFired(f.rule)
			if g.cfg.OnHandled != nil { // only a reader of reports sees it
				rep.Rules = append(rep.Rules, f.rule)
			}
		}
		h.addFired(f.rule)
		h.renderErrors += f.renderErrors
		h.rule = f.rule
		for _, c := range f.calls {
			var ran []stepRun
			st, ran = h.runCall(ctx, st, c)
			for _, sr := range ran {
				h.reportStep(sr.step, sr.err)
				if sr.err != nil {
					if h.mode == modeLive {
						log.Error("action failed", "rule", f.rule, "action", sr.step.Kind(), "error", sr.err.Error())
					}
					h.addRan(sr.step.Kind() + ":error")
					continue
				}
				h.addRan(sr.step.Kind())
			}
			if h.halt != nil {
				return st
			}
		}
	}
	return st
}

// addFired notes a rule that fired, for the log line.
func (h *handling) addFired(rule string) {
	if h.fired == nil {
		h.fired = h.firedBuf[:0]
	}
	h.fired = append(h.fired, rule)
}

// addRan notes a step that ran, for the log line.
func (h *handling) addRan(kind string) {
	if h.ran == nil {
		h.ran = h.ranBuf[:0]
	}
	h.ran = append(h.ran, kind)
}

// handledSite is the source of the "event handled" line.
var handledSite sitePC

// logHandled writes the event's log line, once the rules ran. Nothing of
// it is built when the line's level is disabled.
func (h *handling) logHandled(outcome string) {
	if !h.evaluated || !h.log.enabled(slog.LevelInfo) {
		return
	}
	switch {
	case len(h.fired) == 0:
		outcome = "no_rule"
	case outcome == "ok" && (h.renderErrors > 0 || slices.ContainsFunc(h.ran, func(k string) bool { return strings.HasSuffix(k, ":error") })):
		outcome = "error"
	}
	ran := h.ran
	if ran == nil {
		ran = []string{}
	}
	h.log.logAttrs(slog.LevelInfo, handledSite.get(), "event handled",
		slog.String("rule", strings.Join(h.fired, ",")),
		slog.Any("actions", ran),
		slog.String("outcome", outcome),
		slog.String("duration_ms", ms(h.g.now().Sub(h.rep.Time))))
}

// reportStep adds a step that ran to the report.
func (h *handling) reportStep(s actions.Step, err error) {
	if h.g.cfg.OnHandled == nil { // Fields builds a map: only for a reader of reports
		return
	}
	ar := ActionReport{Kind: s.Kind(), Fields: s.Fields()}
	if err != nil {
		ar.Error = err.Error()
	}
	h.rep.Actions = append(h.rep.Actions, ar)
}

func (g *Gateway) rules() *engine.Set {
	if g.cfg.Rules == nil {
		return nil
	}
	return g.cfg.Rules()
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64)
}
