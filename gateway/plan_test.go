package gateway

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
)

// A plan goes through its encoding with everything a replay reads: the
// time, the state before, the settings, the owner answers, and the fired
// rules with their calls, a carried pass included.
func TestPlanRoundTrips(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	reply, err := actions.DecodeStep(actions.EncodedStep{Kind: "reply", Data: []byte(`{"text":"Connecting you."}`)})
	if err != nil {
		t.Fatal(err)
	}
	calls := conversation.Calls([]actions.Step{
		actions.TakeThreadControl("mine"),
		reply,
		actions.PassThreadControl("zendesk", "200646160103180", "wants a human"),
	}, true)
	if len(calls) != 2 || calls[1].Carried == nil {
		t.Fatalf("calls = %+v, want the pass carried by the reply", calls)
	}
	pcs, err := encodePlanCalls(calls)
	if err != nil {
		t.Fatal(err)
	}
	p := &plan{
		Version: planVersion,
		Time:    at,
		State:   conversation.State{Owner: conversation.AppOwner("42"), OwnerSince: at.Add(-time.Hour), Transcript: []string{"hi"}},
		Settings: conversation.Settings{AppID: "1", RulesLoaded: true, CanCarryControl: true, Apps: map[string]string{"zendesk": "200646160103180"},
			Handover: engine.Handover{ReturnAfterIdle: 30 * time.Minute, Dialect: engine.DialectRouting}},
		Owners:    []ownerAnswer{{AppID: "42"}, {Error: "graph api me/thread_owner: HTTP 500"}},
		Decisions: []ruleDecision{{Fired: []firedRule{{Rule: "agent", Calls: pcs, RenderErrors: 1}}}, {}},
		Steps:     []string{"take_thread_control", "reply", "pass_thread_control"},
	}
	data, err := p.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePlan(data)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(p.Time) || !reflect.DeepEqual(got.Settings, p.Settings) || !reflect.DeepEqual(got.Owners, p.Owners) ||
		!reflect.DeepEqual(got.Steps, p.Steps) || got.State.Owner != p.State.Owner || !got.State.OwnerSince.Equal(p.State.OwnerSince) {
		t.Errorf("decoded plan = %+v, want %+v", got.plan, p)
	}
	if len(got.decisions) != 2 || len(got.decisions[0]) != 1 || len(got.decisions[1]) != 0 {
		t.Fatalf("decisions = %+v", got.decisions)
	}
	f := got.decisions[0][0]
	if f.rule != "agent" || f.renderErrors != 1 || len(f.calls) != len(calls) {
		t.Fatalf("firing = %+v, want %d calls", f, len(calls))
	}
	for i, c := range f.calls {
		want := calls[i]
		if c.Step.Kind() != want.Step.Kind() || !reflect.DeepEqual(c.Step.Fields(), want.Step.Fields()) || (c.Carried == nil) != (want.Carried == nil) {
			t.Errorf("call %d = %+v, want %+v", i, c, want)
		}
		if c.Carried != nil && !reflect.DeepEqual(c.Carried.Fields(), want.Carried.Fields()) {
			t.Errorf("call %d carries %v, want %v", i, c.Carried.Fields(), want.Carried.Fields())
		}
	}
	if a := got.Owners[1].err(); a == nil || a.Error() != p.Owners[1].Error {
		t.Errorf("the recorded lookup error = %v", a)
	}
}

func TestDecodePlanRefusesAnotherVersion(t *testing.T) {
	t.Parallel()
	for _, data := range []string{`{"v":2}`, `{"v":1,"decisions":[{"fired":[{"rule":"r","calls":[{"step":{"kind":"nope","data":{}}}]}]}]}`, `not json`} {
		if _, err := decodePlan([]byte(data)); err == nil || !strings.Contains(err.Error(), "plan") {
			t.Errorf("decodePlan(%s) = %v, want an error about the plan", data, err)
		}
	}
}
