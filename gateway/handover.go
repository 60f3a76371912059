package gateway

import (
	"context"
	"fmt"

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
// state. It returns the steps that ran (not those a previous attempt did),
// in order.
//
// A carried pass or release rides on the message's Send API call as
// thread_control (with the handover's metadata as the message's metadata).
// When the message could not carry it (the step sent nothing), the carried
// step runs on its own, as in the legacy dialect. When the message failed
// because another app owns the thread, the carried step failed with it.
//
// Handling a stored event, a step that fails stops the event: a transient
// failure before the state is told (the step is tried again later), a
// permanent one after.
func (h *handling) runCall(ctx context.Context, st conversation.State, c conversation.Call) (conversation.State, []stepRun) {
	p := h.g.cfg.Platform
	cs, canCarry := p.(ControlSender)
	var ran []stepRun
	if c.Carried == nil || !canCarry || h.done(h.step) {
		for _, s := range []actions.Step{c.Step, c.Carried} {
			if s == nil {
				continue
			}
			live, err := h.doStep(ctx, p, s)
			if h.retryable() {
				return st, ran
			}
			if live {
				ran = append(ran, stepRun{s, err})
			}
			st = h.apply(ctx, st, s, err, live)
			if h.halt != nil {
				return st, ran
			}
		}
		return st, ran
	}
	// The message and its carried step run as one call: steps i and i+1.
	i := h.step
	h.step += 2
	h.quiet = false
	eff := c.Carried.Effect()
	ctl := &messenger.ThreadControl{ControlType: messenger.ControlRelease}
	if eff.Control == actions.ControlPass {
		ctl = &messenger.ThreadControl{ControlType: messenger.ControlPass, AppID: eff.AppID}
	}
	car := &carrier{Platform: p, cs: cs, control: ctl, metadata: eff.Metadata}
	err := h.execute(ctx, car, c.Step)
	if err != nil && h.mode == modeExec && !messenger.IsNotThreadOwner(err) {
		h.fail(ctx, i, c.Step, err)
		if h.retryable() {
			return st, ran
		}
	}
	if err == nil && car.used {
		h.recordProgress(i + 2)
	} else if err == nil {
		h.recordProgress(i + 1)
	}
	st = h.apply(ctx, st, c.Step, err, true)
	ran = append(ran, stepRun{c.Step, err})
	if h.halt != nil {
		return st, ran
	}
	var cerr error
	switch {
	case !car.used:
		h.step = i + 1
		_, cerr = h.doStep(ctx, p, c.Carried)
		if h.retryable() {
			return st, ran
		}
	case err != nil:
		h.g.obs.Action(c.Carried.Kind(), "error")
		cerr = fmt.Errorf("%s: carried by the message, which failed: %w", c.Carried.Kind(), err)
		if h.mode == modeExec {
			h.fail(ctx, i, c.Step, err)
		}
	default:
		h.g.obs.Action(c.Carried.Kind(), "ok")
	}
	st = h.apply(ctx, st, c.Carried, cerr, true)
	return st, append(ran, stepRun{c.Carried, cerr})
}

// done reports whether step i of a replayed plan was done by a previous
// attempt, or (deciding) is only being planned.
func (h *handling) done(i int) bool {
	return h.mode == modeDecide || (h.mode == modeExec && i < h.resumeFrom)
}

// doStep takes the plan's next step: it runs it, or, when a previous
// attempt did it (or the plan is being made), counts it as a success
// without running it. live reports whether it ran.
func (h *handling) doStep(ctx context.Context, p actions.Platform, s actions.Step) (live bool, err error) {
	i := h.step
	h.step++
	if h.mode == modeDecide {
		h.rec.Steps = append(h.rec.Steps, s.Kind())
		return false, nil
	}
	if h.done(i) {
		return false, nil
	}
	h.quiet = false
	if err := h.execute(ctx, p, s); err != nil {
		h.fail(ctx, i, s, err)
		return true, err
	}
	h.recordProgress(i + 1)
	return true, nil
}

// recordProgress records that the first n steps succeeded (modeExec).
func (h *handling) recordProgress(n int) {
	if h.mode == modeExec && h.stored != nil {
		h.stepDone(n)
	}
}

// fail stops a stored event at step i (modeExec).
func (h *handling) fail(ctx context.Context, i int, s actions.Step, err error) {
	if h.mode != modeExec {
		return
	}
	h.halt = &stepFailure{rule: h.rule, index: i, kind: s.Kind(), err: err, class: classify(ctx, err)}
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
func (h *handling) apply(ctx context.Context, st conversation.State, s actions.Step, err error, live bool) conversation.State {
	done := conversation.StepDone{Run: conversation.RunStep{Step: s, Purpose: conversation.PurposeRule}, Err: err}
	st, effects := conversation.Apply(st, done, h.at(), h.settings)
	h.applyNow(done, live)
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
		m.Metadata = messenger.Truncate(c.metadata, maxSendMetadata)
	}
	return c.cs.SendMessageWithControl(ctx, to, &m, c.control)
}
