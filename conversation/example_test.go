package conversation_test

import (
	"fmt"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
)

// A user writes, a rule passes the thread to an agent app, and the timer
// later finds the thread quiet and takes it back.
func Example() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := conversation.Settings{
		AppID:       "1001",
		RulesLoaded: true,
		Handover:    engine.Handover{ReturnAfterIdle: 2 * time.Hour},
		Apps:        map[string]string{"zendesk": "2006"},
		// The rules' templates read .Transcript (engine.Set.ReadsTranscript).
		KeepTranscript: true,
	}

	// The user's message on the main channel: threadgate owns the thread,
	// and the rules run.
	msg := conversation.Event{Kind: conversation.EventMessage, Object: "page", Rules: engine.Event{PageID: "p1", SenderID: "u1", Text: "agent please"}}
	st, effects := conversation.Handle(conversation.State{}, msg, now, s)
	run := effects[0].(conversation.RunRules)
	fmt.Println("owner:", st.Owner, "| rules read owner", run.Input.State.Owner, "and transcript", run.Input.State.Transcript)

	// A rule passed the thread to zendesk and the call succeeded.
	pass := actions.PassThreadControl("zendesk", "2006", "the user asked for an agent")
	st, effects = conversation.Apply(st, conversation.StepDone{Run: conversation.RunStep{Step: pass, Purpose: conversation.PurposeRule}}, now, s)
	fmt.Println("owner:", s.OwnerForRules(st.Owner), "| effects:", len(effects))
	for _, e := range effects {
		fmt.Printf("  %T %+v\n", e, e)
	}

	// Three quiet hours later the return timer fires: take the thread back.
	later := now.Add(3 * time.Hour)
	_, effects = conversation.Handle(st, conversation.Event{Kind: conversation.EventReturnDue, Rules: engine.Event{PageID: "p1", SenderID: "u1"}}, later, s)
	take := effects[0].(conversation.RunStep)
	fmt.Println(take.Purpose, take.Step.Kind(), "then", take.Then.Kind)
	// Output:
	// owner: self | rules read owner self and transcript [agent please]
	// owner: zendesk | effects: 2
	//   conversation.Watch {Since:2026-03-01 12:00:00 +0000 UTC}
	//   conversation.Observe {Target:zendesk Direction:pass}
	// return take_thread_control then returned
}
