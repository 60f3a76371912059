package gateway

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
)

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
	start := g.now()
	conv := Conversation{PageID: in.PageID.String(), UserID: userOf(ev)}
	log := g.eventLog(string(ev.Kind()), in.Standby, conv.UserID)
	rep := Report{Time: start, PageID: conv.PageID, UserID: conv.UserID, Kind: string(ev.Kind()), Standby: in.Standby}
	defer func() {
		if g.cfg.OnHandled != nil {
			rep.Owner = currentOwner(g.state.Get(conv), g.now())
			if set := g.rules(); set != nil {
				rep.Owner = ownerForRules(set, rep.Owner)
			}
			g.cfg.OnHandled(rep)
		}
	}()
	if !g.dedup.FirstTime(dedupKey(conv.PageID, ev)) {
		g.obs.DedupHit()
		rep.Note = "redelivered event skipped"
		log.Debug(rep.Note)
		return
	}
	set := g.rules()
	g.learnOwner(conv, in.Incoming)
	g.observeActivity(set, conv, in.Incoming, start)
	e := g.engineEvent(in.Incoming)
	if e == nil {
		rep.Note = "this kind of event triggers no rule"
		log.Debug(rep.Note)
		return
	}
	rep.Text = e.Text
	if e.Kind == engine.KindPostback {
		rep.Text = e.Payload
	}
	if set == nil {
		rep.Note = "no rules loaded"
		log.Warn("event not handled: no rules loaded")
		return
	}
	if e.Kind == engine.KindRequestThreadControl && g.applyRequestPolicy(ctx, set, conv, e, &rep, log) {
		return
	}
	if e.Kind == engine.KindMessage && e.Text != "" && !e.Standby {
		g.state.Update(conv, func(s *ThreadState) {
			s.LastActivity = start
			s.Transcript = appendTranscript(s.Transcript, e.Text)
		})
	}
	g.decide(ctx, set, conv, e, start, log, &rep)
}

// decide evaluates the rules for an event of a conversation and runs the
// steps of the rules that fire, recording what happened in rep.
func (g *Gateway) decide(ctx context.Context, set *engine.Set, conv Conversation, e *engine.Event, start time.Time, log *eventLogger, rep *Report) {
	st := g.lookupOwner(ctx, set, conv, g.state.Get(conv), start)
	rep.Paused = start.Before(st.PausedUntil)
	input := engine.Input{
		Event: e,
		State: engine.State{Owner: ownerForRules(set, currentOwner(st, start)), Paused: rep.Paused, Transcript: st.Transcript},
		Now:   start,
	}
	var dec engine.Decision
	if g.cfg.Explain {
		dec = set.Explain(input)
		rep.Trace = dec.Trace
	} else {
		dec = set.Evaluate(input)
	}
	for _, we := range dec.WhenErrors {
		log.Warn("when expression failed, counted as false", "rule", we.Rule, "error", we.Error())
	}
	if len(dec.Fired) == 0 {
		rep.Note = "no rule fired"
		log.Info("event handled", "rule", "", "actions", []string{}, "outcome", "no_rule", "duration_ms", ms(g.now().Sub(start)))
		return
	}
	to := messenger.Recipient{PageID: conv.PageID, UserID: conv.UserID}
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
		errs := g.runSteps(ctx, set, conv, to, f.Steps)
		for i, s := range f.Steps {
			err := errs[i]
			if g.cfg.OnHandled != nil { // Fields builds a map: only for a reader of reports
				ar := ActionReport{Kind: s.Kind(), Fields: s.Fields()}
				if err != nil {
					ar.Error = err.Error()
				}
				rep.Actions = append(rep.Actions, ar)
			}
			if err != nil {
				outcome = "error"
				log.Error("action failed", "rule", f.Rule.Name, "action", s.Kind(), "error", err.Error())
				done = append(done, s.Kind()+":error")
				continue
			}
			done = append(done, s.Kind())
		}
	}
	log.Info("event handled", "rule", strings.Join(names, ","), "actions", done, "outcome", outcome, "duration_ms", ms(g.now().Sub(start)))
}

// ownerOther stands for "another app, not known which".
const ownerOther = "other"

func (g *Gateway) setOwner(conv Conversation, owner string) {
	now := g.now()
	g.state.Update(conv, func(s *ThreadState) {
		s.Owner = owner
		s.OwnerSince = now
	})
	if heldByOther(owner) {
		g.timers.watch(conv, now)
	}
}

// learnOwner updates thread ownership from what an event shows.
func (g *Gateway) learnOwner(conv Conversation, in messenger.Incoming) {
	ev := in.Event
	switch ev.Kind() {
	case messenger.KindPassThreadControl:
		if g.isHandBack(in) {
			g.setOwner(conv, OwnerSelf)
			g.obs.Handover(OwnerSelf, "returned")
			return
		}
		g.setOwner(conv, ev.PassThreadControl.NewOwnerAppID.String())
		g.obs.Handover(ownerOther, "passed_elsewhere")
	case messenger.KindTakeThreadControl:
		owner := ev.TakeThreadControl.NewOwnerAppID.String()
		if owner == "" || (g.cfg.AppID != "" && owner == g.cfg.AppID) {
			owner = OwnerSelf
		}
		g.setOwner(conv, owner)
		g.obs.Handover(ownerOther, "taken")
	case messenger.KindMessage, messenger.KindPostback:
		cur := g.state.Get(conv).Owner
		switch {
		case in.Standby && (cur == OwnerSelf || cur == OwnerIdle || cur == OwnerUnknown):
			g.setOwner(conv, ownerOther)
		case !in.Standby && cur != OwnerSelf:
			g.setOwner(conv, OwnerSelf)
		}
	}
}

// isHandBack reports whether a pass_thread_control event gives the thread to
// us: its new owner is our APP_ID, or, with no APP_ID configured, it arrived
// on the messaging channel.
func (g *Gateway) isHandBack(in messenger.Incoming) bool {
	if g.cfg.AppID != "" {
		return in.Event.PassThreadControl.NewOwnerAppID.String() == g.cfg.AppID
	}
	return !in.Standby
}

// engineEvent converts a webhook event into what rules read; nil for events
// that trigger no rule (echoes, deliveries, reads, …).
func (g *Gateway) engineEvent(in messenger.Incoming) *engine.Event {
	ev := in.Event
	e := &engine.Event{
		Standby:  in.Standby,
		Object:   in.Object,
		PageID:   in.PageID.String(),
		SenderID: ev.Sender.ID.String(),
	}
	switch ev.Kind() {
	case messenger.KindMessage:
		m := ev.Message
		e.Kind = engine.KindMessage
		e.MID = m.MID
		e.Text = m.Text
		if m.QuickReply != nil {
			e.QuickReply, e.HasQuickReply = m.QuickReply.Payload, true
		}
		for _, a := range m.Attachments {
			e.Attachments = append(e.Attachments, a.Type)
		}
	case messenger.KindPostback:
		e.Kind = engine.KindPostback
		e.MID = ev.Postback.MID
		e.Payload = ev.Postback.Payload
		e.Text = ev.Postback.Title
	case messenger.KindPassThreadControl:
		e.Kind = engine.KindPassThreadControl
		e.AppID = ev.PassThreadControl.NewOwnerAppID.String()
		e.Metadata = ev.PassThreadControl.Metadata
		// Only a hand-back to us is seen by ordinary rules; a pass to
		// another app is a standby matter.
		e.Standby = !g.isHandBack(in)
	case messenger.KindTakeThreadControl:
		e.Kind = engine.KindTakeThreadControl
		e.AppID = ev.TakeThreadControl.NewOwnerAppID.String()
		e.Metadata = ev.TakeThreadControl.Metadata
	case messenger.KindRequestThreadControl:
		e.Kind = engine.KindRequestThreadControl
		e.AppID = ev.RequestThreadControl.RequestedOwnerAppID.String()
		e.Metadata = ev.RequestThreadControl.Metadata
	default:
		return nil
	}
	return e
}

func (g *Gateway) rules() *engine.Set {
	if g.cfg.Rules == nil {
		return nil
	}
	return g.cfg.Rules()
}

// ownerForRules is the owner as rules read it: "self", "idle", the name the
// app has in the rules file, or its ID.
func ownerForRules(set *engine.Set, owner string) string {
	switch owner {
	case OwnerSelf, OwnerIdle, ownerOther, OwnerUnknown:
		return owner
	}
	if name := set.AppName(owner); name != "" {
		return name
	}
	return owner
}

const transcriptLen = 10

// appendBounded returns a new slice holding the last n of list and s. It
// never writes into list's array, so a copy of the state that still holds
// list may be read while the state is updated.
func appendBounded(list []string, s string, n int) []string {
	if len(list) >= n {
		list = list[len(list)-n+1:]
	}
	out := make([]string, len(list), len(list)+1)
	copy(out, list)
	return append(out, s)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64)
}
