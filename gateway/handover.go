package gateway

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/messenger"
)

// This file runs the steps of the rules: each through its action, and in
// the routing dialect a pass or release riding on the message before it
// (conversation.Calls plans which). What each step did goes back to the
// conversation through conversation.Apply.

// ControlSender is implemented by platforms that can hand a thread over in
// the Send API call that sends a message (Conversation Routing's
// thread_control): the Graph API client and the sandbox's.
type ControlSender interface {
	SendMessageWithControl(ctx context.Context, to messenger.Recipient, msg *messenger.Message, control *messenger.ThreadControl) error
}

// maxSendMetadata is the Send API's limit on message.metadata: fewer than
// 1000 characters.
const maxSendMetadata = 999

// stepRun is a step that ran and its error.
type stepRun struct {
	step actions.Step
	err  error
}

// runCall runs one call of a rule and records each step's outcome in the
// state. It returns the steps that ran, in order.
//
// A carried pass or release rides on the message's Send API call as
// thread_control (with the handover's metadata as the message's metadata).
// When the message could not carry it (the step sent nothing, or the call
// failed for another reason than ownership), the carried step runs on its
// own, as in the legacy dialect.
func (h *handling) runCall(ctx context.Context, st conversation.State, c conversation.Call) (conversation.State, []stepRun) {
	p := h.g.cfg.Platform
	cs, canCarry := p.(ControlSender)
	if c.Carried == nil || !canCarry {
		err := h.execute(ctx, p, c.Step)
		st = h.apply(ctx, st, c.Step, err)
		ran := []stepRun{{c.Step, err}}
		if c.Carried != nil {
			err := h.execute(ctx, p, c.Carried)
			st = h.apply(ctx, st, c.Carried, err)
			ran = append(ran, stepRun{c.Carried, err})
		}
		return st, ran
	}
	eff := c.Carried.Effect()
	ctl := &messenger.ThreadControl{ControlType: messenger.ControlRelease}
	if eff.Control == actions.ControlPass {
		ctl = &messenger.ThreadControl{ControlType: messenger.ControlPass, AppID: eff.AppID}
	}
	car := &carrier{Platform: p, cs: cs, control: ctl, metadata: eff.Metadata}
	err := h.execute(ctx, car, c.Step)
	st = h.apply(ctx, st, c.Step, err)
	var cerr error
	switch {
	case !car.used, err != nil && !messenger.IsNotThreadOwner(err):
		cerr = h.execute(ctx, p, c.Carried)
	case err != nil:
		h.g.obs.Action(c.Carried.Kind(), "error")
		cerr = fmt.Errorf("%s: carried by the message, which failed: %w", c.Carried.Kind(), err)
	default:
		h.g.obs.Action(c.Carried.Kind(), "ok")
	}
	st = h.apply(ctx, st, c.Carried, cerr)
	return st, []stepRun{{c.Step, err}, {c.Carried, cerr}}
}

// execute runs one step against p and counts it.
func (h *handling) execute(ctx context.Context, p actions.Platform, s actions.Step) error {
	err := s.Execute(ctx, p, h.to)
	if err != nil {
		h.g.obs.Action(s.Kind(), "error")
		return err
	}
	h.g.obs.Action(s.Kind(), "ok")
	return nil
}

// apply records a rule's step's outcome in the state and carries out the
// effects that follow.
func (h *handling) apply(ctx context.Context, st conversation.State, s actions.Step, err error) conversation.State {
	done := conversation.StepDone{Run: conversation.RunStep{Step: s, Purpose: conversation.PurposeRule}, Err: err}
	st, effects := conversation.Apply(st, done, h.g.now(), h.settings)
	return h.run(ctx, st, effects)
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
