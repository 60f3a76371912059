package engine_test

import (
	"testing"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

// TestUserInTemplates renders .User from the state, with the template's
// fallback when the profile is empty (not fetched, or refused), and tells
// which fired rule reads it.
func TestUserInTemplates(t *testing.T) {
	f, err := rules.Parse("rules.yaml", []byte(`
version: 1
rules:
  - name: welcome
    match: {postback: GET_STARTED}
    do:
      - reply: "Hi {{ or .User.FirstName \"there\" }}!"
  - name: echo
    do:
      - echo: "> "
`))
	if err != nil {
		t.Fatal(err)
	}
	ev := &engine.Event{Kind: engine.KindPostback, Payload: "GET_STARTED"}
	for _, tt := range []struct {
		user messenger.UserProfile
		want string
	}{
		{messenger.UserProfile{FirstName: "Anna"}, "Hi Anna!"},
		{messenger.UserProfile{}, "Hi there!"},
	} {
		d := f.Set.Evaluate(engine.Input{Event: ev, State: engine.State{User: tt.user}})
		if len(d.Fired) != 1 || len(d.Fired[0].Steps) != 1 {
			t.Fatalf("decision = %+v", d)
		}
		if got := d.Fired[0].Steps[0].Fields()["text"]; got != tt.want {
			t.Errorf("text = %q, want %q", got, tt.want)
		}
		if !actions.ReadsUser(d.Fired[0].Rule.Actions) {
			t.Error("the welcome rule does not read .User")
		}
	}
	if actions.ReadsUser(f.Set.Rule("echo").Actions) {
		t.Error("the echo rule reads .User")
	}
}
