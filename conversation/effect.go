package conversation

import (
	"log/slog"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
)

// Effect is something the gateway must do for a conversation: one of
// RunRules, RunStep, LookupOwner, Watch, Observe and Note.
type Effect interface{ effect() }

// RunRules evaluates the rules with Input and runs the steps of the rules
// that fire, in order, as Calls plans them; each step's outcome goes back
// through Apply as a StepDone with PurposeRule.
type RunRules struct {
	// Input is the event and the state the rules read.
	Input engine.Input
	// CarryControl is true in the routing dialect when the platform can
	// carry a thread_control with a message (see Calls).
	CarryControl bool
}

// Purpose says why a step runs.
type Purpose string

// Purposes of a step.
const (
	// PurposeRule: a rule that fired planned it.
	PurposeRule Purpose = "rule"
	// PurposeGrant: handover.on_request: grant passes the thread to the
	// app that requested it.
	PurposeGrant Purpose = "grant"
	// PurposeReturn: handover.return_after_idle takes an idle thread back.
	PurposeReturn Purpose = "return"
)

// RunStep runs one step of the actions package outside the rules (a grant
// or a return); its outcome goes back through Apply as a StepDone.
type RunStep struct {
	// Step is the step to run.
	Step actions.Step
	// Purpose says why it runs.
	Purpose Purpose
	// Then, for PurposeReturn, is the event the rules run with once the
	// thread is back (event: returned).
	Then engine.Event
}

// LookupOwner asks the platform who owns the thread (GET thread_owner);
// the answer goes back through Apply as an OwnerFound.
type LookupOwner struct {
	// Then is the event the rules run with once the answer is in.
	Then engine.Event
}

// Watch puts the conversation on the return timer, quiet since Since
// (another app holds the thread). Watching a watched conversation does
// nothing.
type Watch struct {
	Since time.Time
}

// Observe tells the Observer that thread control moved.
type Observe struct {
	// Target is an app name from the rules file, an app ID, or "self",
	// "idle" or "other".
	Target string
	// Direction is one of the Direction constants.
	Direction string
}

// Directions of Observe, as Observer.Handover and the metric
// threadgate_handovers_total name them.
const (
	// Threadgate's own calls.
	DirectionPass    = "pass"    // threadgate passed the thread to an app
	DirectionTake    = "take"    // threadgate took the thread
	DirectionRequest = "request" // threadgate asked the owner for the thread
	DirectionRelease = "release" // threadgate made the thread idle
	// Webhooks from the platform.
	DirectionReturned        = "returned"         // an app passed the thread to threadgate
	DirectionTaken           = "taken"            // an app took the thread
	DirectionPassedElsewhere = "passed_elsewhere" // an app passed the thread to another app
	// DirectionRequested is in the metric's label set for another app's
	// request_thread_control; no transition emits it, since a request does
	// not move the thread.
	DirectionRequested = "requested"
)

// Note is a line for the log, and perhaps the note of the gateway's report
// of the event. Its attributes are bounded values and error texts, never
// user text.
type Note struct {
	// Level is the log level.
	Level slog.Level
	// Message is the log message.
	Message string
	// Attrs are the log line's key-value pairs.
	Attrs []any
	// Report, when not empty, is the report's note.
	Report string
}

func (RunRules) effect()    {}
func (RunStep) effect()     {}
func (LookupOwner) effect() {}
func (Watch) effect()       {}
func (Observe) effect()     {}
func (Note) effect()        {}

// Outcome is what one of the gateway's calls did: StepDone or OwnerFound.
type Outcome interface{ outcome() }

// StepDone is the outcome of one step: a step of RunStep, or one of the
// steps of a rule (Run.Purpose PurposeRule).
type StepDone struct {
	// Run is the step that ran and why.
	Run RunStep
	// Err is its error, nil when it succeeded.
	Err error
}

// OwnerFound is the platform's answer to a LookupOwner.
type OwnerFound struct {
	// Lookup is the effect answered.
	Lookup LookupOwner
	// AppID is the owner's app ID, "" when the thread is idle.
	AppID string
	// Err is the lookup's error; the owner stays unknown.
	Err error
}

func (StepDone) outcome()   {}
func (OwnerFound) outcome() {}

// Call is one step of a rule as the gateway runs it: the step, and in the
// routing dialect a pass or release that rides on the step's message.
type Call struct {
	// Step is the step to run.
	Step actions.Step
	// Carried, when not nil, is a pass_thread_control or
	// release_thread_control step whose thread_control rides on Step's
	// message (Step.Effect().SendsMessage is true). When the message
	// cannot carry it, Carried runs on its own after Step.
	Carried actions.Step
}

// Calls plans how a fired rule's steps run. With carry (the routing
// dialect, on a platform that can), a pass or release right after a step
// that sends a message rides on that message's Send API call, so that the
// message and the handover happen together or not at all. Every other step
// runs on its own: take and request, which the Send API cannot carry, and a
// pass or release with no message right before it.
func Calls(steps []actions.Step, carry bool) []Call {
	out := make([]Call, 0, len(steps))
	for i := 0; i < len(steps); i++ {
		c := Call{Step: steps[i]}
		if carry && i+1 < len(steps) && steps[i].Effect().SendsMessage && canRide(steps[i+1].Effect()) {
			c.Carried = steps[i+1]
			i++
		}
		out = append(out, c)
	}
	return out
}

// canRide reports whether a step's thread-control change can ride on a
// message: a pass to a known app, or a release.
func canRide(e actions.Effect) bool {
	return (e.Control == actions.ControlPass && e.AppID != "") || e.Control == actions.ControlRelease
}
