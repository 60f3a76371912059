package actions

import (
	"reflect"
	"testing"
)

// Every action kind says what its steps do to the thread; the gateway reads
// that, never Fields.
func TestStepEffect(t *testing.T) {
	d := &Data{Text: "hi"}
	tests := []struct {
		src  string
		want Effect
	}{
		{`echo: "you said: "`, Effect{SendsMessage: true}},
		{`reply: hello`, Effect{SendsMessage: true}},
		{`reply: {text: pick one, quick_replies: [{title: A, payload: a}]}`, Effect{SendsMessage: true}},
		{`reply: {text: pick one, buttons: [{title: A, payload: a}]}`, Effect{SendsMessage: true}},
		{`sender_action: typing_on`, Effect{}},
		{`pass_thread_control: zendesk`, Effect{Control: ControlPass, Target: "zendesk", AppID: "200646160103180"}},
		{`pass_thread_control: {target: page_inbox, metadata: "asked: {{ .Text }}"}`,
			Effect{Control: ControlPass, Target: "page_inbox", AppID: "263902037430900", Metadata: "asked: hi"}},
		{`take_thread_control: {metadata: back}`, Effect{Control: ControlTake, Metadata: "back"}},
		{`take_thread_control: {}`, Effect{Control: ControlTake}},
		{`request_thread_control: {metadata: "{{ .Text }}"}`, Effect{Control: ControlRequest, Metadata: "hi"}},
		{`release_thread_control: {}`, Effect{Control: ControlRelease}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		s, err := plan(t, tt.src, d)
		if err != nil || s == nil {
			t.Fatalf("%s: plan gave %v, %v", tt.src, s, err)
		}
		seen[s.Kind()] = true
		if got := s.Effect(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Effect() = %+v, want %+v", tt.src, got, tt.want)
		}
	}
	for _, name := range Names() {
		if !seen[name] {
			t.Errorf("no Effect case for the action kind %s", name)
		}
	}
}

// The steps threadgate makes by itself are the actions' own steps.
func TestStepsMadeByThreadgate(t *testing.T) {
	pass := PassThreadControl("zendesk", "200646160103180", "granted")
	if pass.Kind() != "pass_thread_control" ||
		!reflect.DeepEqual(pass.Fields(), map[string]any{"target": "zendesk", "app_id": "200646160103180", "metadata": "granted"}) ||
		pass.Effect() != (Effect{Control: ControlPass, Target: "zendesk", AppID: "200646160103180", Metadata: "granted"}) {
		t.Errorf("PassThreadControl = %s %v %+v", pass.Kind(), pass.Fields(), pass.Effect())
	}
	calls, err := execute(t, pass, nil)
	if err != nil || !reflect.DeepEqual(calls, []call{{Method: "PassThreadControl", To: testTo, Arg: "200646160103180", Meta: "granted"}}) {
		t.Errorf("PassThreadControl executed %+v, %v", calls, err)
	}
	take := TakeThreadControl("back")
	if take.Kind() != "take_thread_control" || !reflect.DeepEqual(take.Fields(), map[string]any{"metadata": "back"}) ||
		take.Effect() != (Effect{Control: ControlTake, Metadata: "back"}) {
		t.Errorf("TakeThreadControl = %s %v %+v", take.Kind(), take.Fields(), take.Effect())
	}
	calls, err = execute(t, take, nil)
	if err != nil || !reflect.DeepEqual(calls, []call{{Method: "TakeThreadControl", To: testTo, Arg: "back"}}) {
		t.Errorf("TakeThreadControl executed %+v, %v", calls, err)
	}
}
