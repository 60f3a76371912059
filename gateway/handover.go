package gateway

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
)

// This file runs a rule's steps in the handover dialect of the event's Page,
// records what our own handover calls did to ownership, and applies the
// request policy (handover.on_request).

// ControlSender is implemented by platforms that can hand a thread over in
// the Send API call that sends a message (Conversation Routing's
// thread_control): the Graph API client and the sandbox's.
type ControlSender interface {
	SendMessageWithControl(ctx context.Context, to messenger.Recipient, msg *messenger.Message, control *messenger.ThreadControl) error
}

// maxSendMetadata is the Send API's limit on message.metadata: fewer than
// 1000 characters.
const maxSendMetadata = 999

// runSteps runs a fired rule's steps in order and returns each one's error.
//
// In the routing dialect, a pass_thread_control or release_thread_control
// that comes right after a reply or echo of the same rule rides on that
// message's Send API call as thread_control (with the handover's metadata as
// the message's metadata), so that the message and the handover happen
// together or not at all. A pass or release with no message right before it
// uses the Graph edge, as in the legacy dialect; so do take and request,
// which the Send API cannot carry.
func (g *Gateway) runSteps(ctx context.Context, set *engine.Set, conv Conversation, to messenger.Recipient, steps []actions.Step) []error {
	errs := make([]error, len(steps))
	routing := set.Handover().DialectFor(conv.PageID) == engine.DialectRouting
	cs, canCarry := g.cfg.Platform.(ControlSender)
	for i := 0; i < len(steps); i++ {
		s := steps[i]
		if routing && canCarry && i+1 < len(steps) && carriesMessage(s) {
			if ctl, meta, ok := sendAPIControl(steps[i+1]); ok {
				errs[i], errs[i+1] = g.executeCarrying(ctx, cs, conv, to, s, steps[i+1], ctl, meta)
				i++
				continue
			}
		}
		errs[i] = g.executeOn(ctx, g.cfg.Platform, conv, to, s)
	}
	return errs
}

// carriesMessage reports whether a step sends one message that a
// thread_control can ride on.
func carriesMessage(s actions.Step) bool {
	k := s.Kind()
	return k == "reply" || k == "echo"
}

// sendAPIControl returns the Send API thread_control of a pass or release
// step, and the step's metadata.
func sendAPIControl(s actions.Step) (*messenger.ThreadControl, string, bool) {
	f := s.Fields()
	meta, _ := f["metadata"].(string)
	switch s.Kind() {
	case "pass_thread_control":
		app, _ := f["app_id"].(string)
		if app == "" {
			return nil, "", false
		}
		return &messenger.ThreadControl{ControlType: messenger.ControlPass, AppID: app}, meta, true
	case "release_thread_control":
		return &messenger.ThreadControl{ControlType: messenger.ControlRelease}, meta, true
	}
	return nil, "", false
}

// executeCarrying runs a message step with a handover step riding on its
// Send API call. When the message could not carry it (the step sent
// nothing, or the call failed for another reason than ownership), the
// handover step runs on its own, as in the legacy dialect.
func (g *Gateway) executeCarrying(ctx context.Context, cs ControlSender, conv Conversation, to messenger.Recipient, msgStep, ctlStep actions.Step, ctl *messenger.ThreadControl, meta string) (error, error) {
	c := &carrier{Platform: g.cfg.Platform, cs: cs, control: ctl, metadata: meta}
	err := g.executeOn(ctx, c, conv, to, msgStep)
	switch {
	case !c.used, err != nil && !messenger.IsNotThreadOwner(err):
		return err, g.executeOn(ctx, g.cfg.Platform, conv, to, ctlStep)
	case err != nil:
		g.obs.Action(ctlStep.Kind(), "error")
		return err, fmt.Errorf("%s: carried by the message, which failed: %w", ctlStep.Kind(), err)
	}
	g.obs.Action(ctlStep.Kind(), "ok")
	g.recordControl(conv, ctlStep)
	return nil, nil
}

// carrier is a Platform whose first SendMessage carries a thread_control.
type carrier struct {
	actions.Platform
	cs       ControlSender
	control  *messenger.ThreadControl
	metadata string
	used     bool
}

// SendMessage sends the first message with the thread_control, the others
// as usual.
func (c *carrier) SendMessage(ctx context.Context, to messenger.Recipient, msg *messenger.Message) error {
	if c.used || msg == nil {
		return c.Platform.SendMessage(ctx, to, msg)
	}
	c.used = true
	m := *msg // steps may share their messages: never modify them
	if c.metadata != "" && m.Metadata == "" {
		m.Metadata = truncateRunes(c.metadata, maxSendMetadata)
	}
	return c.cs.SendMessageWithControl(ctx, to, &m, c.control)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// executeOn runs one step against p and records what it did to thread
// ownership.
func (g *Gateway) executeOn(ctx context.Context, p actions.Platform, conv Conversation, to messenger.Recipient, s actions.Step) error {
	err := s.Execute(ctx, p, to)
	if err != nil {
		g.obs.Action(s.Kind(), "error")
		if messenger.IsNotThreadOwner(err) {
			g.setOwner(conv, ownerOther)
		}
		return err
	}
	g.obs.Action(s.Kind(), "ok")
	g.recordControl(conv, s)
	return nil
}

// recordControl records what a successful step did to thread ownership.
func (g *Gateway) recordControl(conv Conversation, s actions.Step) {
	switch s.Kind() {
	case "pass_thread_control":
		target, _ := s.Fields()["target"].(string)
		appID, _ := s.Fields()["app_id"].(string)
		g.setOwner(conv, appID)
		g.obs.Handover(target, "pass")
	case "take_thread_control":
		g.setOwner(conv, OwnerSelf)
		g.unpause(conv)
		g.obs.Handover(OwnerSelf, "take")
	case "release_thread_control":
		g.setOwner(conv, OwnerIdle)
		g.obs.Handover(OwnerIdle, "release")
	case "request_thread_control":
		g.obs.Handover(OwnerSelf, "request")
	}
}

// unpause ends a pause: the bot has the thread again.
func (g *Gateway) unpause(conv Conversation) {
	g.state.Update(conv, func(s *ThreadState) { s.PausedUntil = time.Time{} })
}

// grantMetadata is the metadata of a pass made by handover.on_request: grant.
const grantMetadata = "threadgate: request granted (handover.on_request: grant)"

// applyRequestPolicy handles a request_thread_control event as
// handover.on_request says. It returns false when the rules decide.
func (g *Gateway) applyRequestPolicy(ctx context.Context, set *engine.Set, conv Conversation, e *engine.Event, rep *Report, log *eventLogger) bool {
	switch set.Handover().Policy() {
	case engine.RequestIgnore:
		rep.Note = "request ignored (handover.on_request: ignore)"
		log.Info("event handled", "rule", "", "actions", []string{}, "outcome", "request_ignored")
		return true
	case engine.RequestGrant:
	default:
		return false
	}
	if e.AppID == "" {
		rep.Note = "request without a requesting app: nothing to grant"
		log.Warn("request_thread_control without requested_owner_app_id: not granted")
		return true
	}
	target := set.AppName(e.AppID)
	if target == "" {
		target = e.AppID
	}
	to := messenger.Recipient{PageID: conv.PageID, UserID: conv.UserID}
	err := g.cfg.Platform.PassThreadControl(ctx, to, e.AppID, grantMetadata)
	ar := ActionReport{Kind: "pass_thread_control", Fields: map[string]any{"target": target, "app_id": e.AppID, "metadata": grantMetadata}}
	rep.Note = "request granted (handover.on_request: grant)"
	if err != nil {
		ar.Error = err.Error()
		rep.Actions = append(rep.Actions, ar)
		g.obs.Action("pass_thread_control", "error")
		if messenger.IsNotThreadOwner(err) {
			g.setOwner(conv, ownerOther)
		}
		log.Error("granting the request failed", "app", target, "error", err.Error())
		return true
	}
	rep.Actions = append(rep.Actions, ar)
	g.obs.Action("pass_thread_control", "ok")
	g.setOwner(conv, e.AppID)
	g.obs.Handover(target, "pass")
	log.Info("event handled", "rule", "", "actions", []string{"pass_thread_control"}, "outcome", "request_granted")
	return true
}
