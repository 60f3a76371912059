package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
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

// handleJob handles one queued event.
func (g *Gateway) handleJob(ctx context.Context, j Job) {
	if rj, ok := j.Value.(*returnJob); ok {
		g.handleReturn(ctx, rj)
		return
	}
	in := j.Value.(*incoming)
	ev := in.Event
	key := conversation.Key{PageID: in.PageID.String(), UserID: userOf(ev)}
	h := g.handling(key, string(ev.Kind()), in.Standby)
	defer h.report()
	if !g.dedup.FirstTime(dedupKey(key.PageID, ev)) {
		g.obs.DedupHit()
		h.rep.Note = "redelivered event skipped"
		h.log.Debug(h.rep.Note)
		return
	}
	cev := conversationEvent(in.Incoming)
	h.rep.Text = cev.Rules.Text
	if cev.Kind == conversation.EventPostback {
		h.rep.Text = cev.Rules.Payload
	}
	st, effects := conversation.Handle(g.state.Load(key), cev, h.start, h.settings)
	h.finish(h.run(ctx, st, effects))
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

// handling is the gateway's work on one event of one conversation: the
// rule set and settings read once at the start, the log and the report.
type handling struct {
	g        *Gateway
	key      conversation.Key
	to       messenger.Recipient
	set      *engine.Set
	settings conversation.Settings
	start    time.Time
	log      *eventLogger
	rep      Report
	// watch holds the Watch effects, carried out once the state is saved.
	watch []time.Time
}

func (g *Gateway) handling(key conversation.Key, kind string, standby bool) *handling {
	start := g.now()
	set := g.rules()
	return &handling{
		g:        g,
		key:      key,
		to:       messenger.Recipient{PageID: key.PageID, UserID: key.UserID},
		set:      set,
		settings: g.settings(set),
		start:    start,
		log:      g.eventLog(kind, standby, key.UserID),
		rep:      Report{Time: start, PageID: key.PageID, UserID: key.UserID, Kind: kind, Standby: standby},
	}
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
		s.ReadsOwner = g.readsOwner(set)
	}
	return s
}

// finish saves the conversation's state, then puts it on the return timer
// if an effect said so.
func (h *handling) finish(st conversation.State) {
	h.g.state.Save(h.key, st)
	for _, since := range h.watch {
		h.g.timers.watch(h.key, since)
	}
}

// report gives the report to Config.OnHandled, with the owner as rules
// read it after the event.
func (h *handling) report() {
	if h.g.cfg.OnHandled == nil {
		return
	}
	h.rep.Owner = h.settings.OwnerForRules(h.g.state.Load(h.key).CurrentOwner(h.g.now()))
	h.g.cfg.OnHandled(h.rep)
}

// run carries out effects in order; the effects that Apply returns for an
// outcome are carried out before the rest. It returns the state after all
// of them.
func (h *handling) run(ctx context.Context, st conversation.State, effects []conversation.Effect) conversation.State {
	for len(effects) > 0 {
		e := effects[0]
		effects = effects[1:]
		var more []conversation.Effect
		switch e := e.(type) {
		case conversation.RunRules:
			st = h.runRules(ctx, st, e)
		case conversation.RunStep:
			err := h.execute(ctx, h.g.cfg.Platform, e.Step)
			h.reportStep(e.Step, err)
			st, more = conversation.Apply(st, conversation.StepDone{Run: e, Err: err}, h.g.now(), h.settings)
		case conversation.LookupOwner:
			st, more = conversation.Apply(st, h.lookupOwner(ctx, e), h.g.now(), h.settings)
		case conversation.Watch:
			h.watch = append(h.watch, e.Since)
		case conversation.Observe:
			h.g.obs.Handover(e.Target, e.Direction)
		case conversation.Note:
			h.note(e)
		}
		effects = append(more, effects...)
	}
	return st
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

// lookupOwner asks the platform who owns the thread.
func (h *handling) lookupOwner(ctx context.Context, e conversation.LookupOwner) conversation.OwnerFound {
	lk, ok := h.g.cfg.Platform.(OwnerLookup)
	if !ok { // Settings.CanLookupOwner was false: never asked
		return conversation.OwnerFound{Lookup: e, Err: fmt.Errorf("the platform cannot tell who owns a thread")}
	}
	id, err := lk.ThreadOwner(ctx, h.to)
	return conversation.OwnerFound{Lookup: e, AppID: id, Err: err}
}

// runRules evaluates the rules and runs the steps of the rules that fire,
// recording what happened in the report.
func (h *handling) runRules(ctx context.Context, st conversation.State, r conversation.RunRules) conversation.State {
	g, log, rep := h.g, h.log, &h.rep
	rep.Paused = r.Input.State.Paused
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
	if len(dec.Fired) == 0 {
		rep.Note = "no rule fired"
		log.Info("event handled", "rule", "", "actions", []string{}, "outcome", "no_rule", "duration_ms", ms(g.now().Sub(h.start)))
		return st
	}
	var names, done []string
	outcome := "ok"
	for _, f := range dec.Fired {
		g.obs.RuleFired(f.Rule.Name)
		names = append(names, f.Rule.Name)
		rep.Rules = append(rep.Rules, f.Rule.Name)
		for _, err := range f.Errors {
			outcome = "error"
			log.Error("action not rendered", "rule", f.Rule.Name, "error", err.Error())
		}
		for _, c := range conversation.Calls(f.Steps, r.CarryControl) {
			var ran []stepRun
			st, ran = h.runCall(ctx, st, c)
			for _, sr := range ran {
				h.reportStep(sr.step, sr.err)
				if sr.err != nil {
					outcome = "error"
					log.Error("action failed", "rule", f.Rule.Name, "action", sr.step.Kind(), "error", sr.err.Error())
					done = append(done, sr.step.Kind()+":error")
					continue
				}
				done = append(done, sr.step.Kind())
			}
		}
	}
	log.Info("event handled", "rule", strings.Join(names, ","), "actions", done, "outcome", outcome, "duration_ms", ms(g.now().Sub(h.start)))
	return st
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

// readsOwner reports whether a rule of set reads the owner; the answer is
// computed once per rule set.
func (g *Gateway) readsOwner(set *engine.Set) bool {
	if n := g.ownerNeed.Load(); n != nil && n.set == set {
		return n.needs
	}
	n := &ownerNeed{set: set, needs: set.ReadsOwner()}
	g.ownerNeed.Store(n)
	return n.needs
}

// ownerNeed caches, for one rule set, whether a rule reads the owner.
type ownerNeed struct {
	set   *engine.Set
	needs bool
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
