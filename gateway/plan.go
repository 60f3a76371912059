package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/conversation"
)

// A plan is what the first handling of an event decided and learned. It is
// recorded (store.Progress.Plan) with the first write that needs it: the
// progress after a step when more steps follow, the record of a failed
// attempt, a dead letter. A plan whose one step succeeds is never written
// (the event's completion follows at once); a crash before that write
// decides the event again, and the step in flight may run twice either
// way. A retry, a restart or a replay after the plan was recorded does not
// decide again — the rules may have been reloaded, the
// clock moved, the state changed — it replays the plan: the same
// transitions from the same state at the same time with the same settings,
// the owner lookups answered as they were, the rules fired as they did with
// the steps as they were rendered. The steps done are not run again; the
// state the event leaves is derived again, deterministically.

// planVersion is the version of the plan's encoding.
const planVersion = 1

// plan is the recorded decision of one event.
type plan struct {
	// Version is planVersion.
	Version int `json:"v"`
	// Time is when the event was first handled: the transitions' clock.
	Time time.Time `json:"time"`
	// State is the conversation's state before the event.
	State conversation.State `json:"state"`
	// Settings are the settings the transitions read.
	Settings conversation.Settings `json:"settings"`
	// Owners are the answers of the owner lookups, in order.
	Owners []ownerAnswer `json:"owners,omitempty"`
	// Decisions are the rules' decisions, one per evaluation, in order.
	Decisions []ruleDecision `json:"decisions,omitempty"`
	// Steps are the kinds of every step of the plan, in the order they
	// run (a carried pass or release counts as a step of its own).
	Steps []string `json:"steps,omitempty"`
}

// ownerAnswer is the answer of one owner lookup.
type ownerAnswer struct {
	AppID string `json:"app_id,omitempty"`
	// Error is the lookup's error, "" when it succeeded.
	Error string `json:"error,omitempty"`
}

// ruleDecision is one evaluation of the rules: the rules that fired and
// their rendered steps.
type ruleDecision struct {
	Fired []firedRule `json:"fired,omitempty"`
}

// firedRule is a rule that fired, with its calls as conversation.Calls
// planned them.
type firedRule struct {
	Rule  string     `json:"rule"`
	Calls []planCall `json:"calls,omitempty"`
	// RenderErrors counts the actions that could not be rendered (logged
	// when the plan was made).
	RenderErrors int `json:"render_errors,omitempty"`
}

// planCall is a conversation.Call in its recorded form.
type planCall struct {
	Step    actions.EncodedStep  `json:"step"`
	Carried *actions.EncodedStep `json:"carried,omitempty"`
}

// encodePlanCalls records a firing's calls.
func encodePlanCalls(calls []conversation.Call) ([]planCall, error) {
	out := make([]planCall, 0, len(calls))
	for _, c := range calls {
		s, err := actions.EncodeStep(c.Step)
		if err != nil {
			return nil, err
		}
		pc := planCall{Step: s}
		if c.Carried != nil {
			cs, err := actions.EncodeStep(c.Carried)
			if err != nil {
				return nil, err
			}
			pc.Carried = &cs
		}
		out = append(out, pc)
	}
	return out, nil
}

// decodePlanCalls is the inverse of encodePlanCalls.
func decodePlanCalls(pcs []planCall) ([]conversation.Call, error) {
	out := make([]conversation.Call, 0, len(pcs))
	for _, pc := range pcs {
		s, err := actions.DecodeStep(pc.Step)
		if err != nil {
			return nil, err
		}
		c := conversation.Call{Step: s}
		if pc.Carried != nil {
			if c.Carried, err = actions.DecodeStep(*pc.Carried); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// firing is a fired rule with its calls decoded.
type firing struct {
	rule         string
	calls        []conversation.Call
	renderErrors int
}

// decodedPlan is a plan with its steps decoded, ready to replay.
type decodedPlan struct {
	plan
	decisions [][]firing
}

// encode is the plan as store.Progress.Plan keeps it. A plan just decided
// has its firings only: their calls are encoded here, when a write needs
// the plan, not when it is decided (most plans are never written).
func (p *decodedPlan) encode() ([]byte, error) {
	if len(p.Decisions) != len(p.decisions) {
		p.Decisions = make([]ruleDecision, 0, len(p.decisions))
		for _, fs := range p.decisions {
			var rd ruleDecision
			for _, f := range fs {
				pcs, err := encodePlanCalls(f.calls)
				if err != nil {
					return nil, fmt.Errorf("gateway: encoding the plan of rule %q: %w", f.rule, err)
				}
				rd.Fired = append(rd.Fired, firedRule{Rule: f.rule, Calls: pcs, RenderErrors: f.renderErrors})
			}
			p.Decisions = append(p.Decisions, rd)
		}
	}
	return p.plan.encode()
}

// encode is the plan as store.Progress.Plan keeps it (JSON).
func (p *plan) encode() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("gateway: encoding a plan: %w", err)
	}
	return b, nil
}

// decodePlan reads a recorded plan.
func decodePlan(data []byte) (*decodedPlan, error) {
	var p decodedPlan
	if err := json.Unmarshal(data, &p.plan); err != nil {
		return nil, fmt.Errorf("gateway: decoding a plan: %w", err)
	}
	if p.Version != planVersion {
		return nil, fmt.Errorf("gateway: a plan of version %d, this gateway reads version %d", p.Version, planVersion)
	}
	for _, d := range p.Decisions {
		var fs []firing
		for _, f := range d.Fired {
			calls, err := decodePlanCalls(f.Calls)
			if err != nil {
				return nil, fmt.Errorf("gateway: decoding the plan of rule %q: %w", f.Rule, err)
			}
			fs = append(fs, firing{rule: f.Rule, calls: calls, renderErrors: f.RenderErrors})
		}
		p.decisions = append(p.decisions, fs)
	}
	return &p, nil
}

// err turns a recorded lookup error back into an error.
func (a ownerAnswer) err() error {
	if a.Error == "" {
		return nil
	}
	return errors.New(a.Error)
}

// errPlanMismatch is returned when replaying a plan asks for more than it
// recorded: a plan made by another version of the transitions.
var errPlanMismatch = errors.New("gateway: the recorded plan does not match the transitions")
