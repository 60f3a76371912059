package engine_test

import (
	"testing"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

// TestUserInTemplates renders .User from the event, with the template's
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
		ev.User = tt.user
		d := f.Set.Evaluate(engine.Input{Event: ev})
		if len(d.Fired) != 1 || len(d.Fired[0].Steps) != 1 {
			t.Fatalf("decision = %+v", d)
		}
		if got := d.Fired[0].Steps[0].Fields()["text"]; got != tt.want {
			t.Errorf("text = %q, want %q", got, tt.want)
		}
		if !actions.Reads(d.Fired[0].Rule.Actions, actions.FieldUser) {
			t.Error("the welcome rule does not read .User")
		}
	}
	if actions.Reads(f.Set.Rule("echo").Actions, actions.FieldUser) {
		t.Error("the echo rule reads .User")
	}
}

// TestSetReadsUser tells a rule set that reads .User from one that does
// not, so that the gateway asks the User Profile API only when needed.
func TestSetReadsUser(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want bool
	}{
		{`[{name: a, do: [reply: "Hi {{ .User.FirstName }}"]}]`, true},
		{`[{name: a, do: [{pass_thread_control: {target: z, metadata: "for {{ .User.LastName }}"}}]}]`, true},
		{`[{name: a, do: [reply: "Hi {{ .Text }}"]}, {name: b, do: [echo: "> "]}]`, false},
	} {
		f, err := rules.Parse("u.yaml", []byte("version: 1\napps: {z: 1}\nrules: "+tt.src+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Set.ReadsUser(); got != tt.want {
			t.Errorf("%s: ReadsUser = %v, want %v", tt.src, got, tt.want)
		}
	}
}

// TestSetReadsTranscript tells a rule set whose templates read .Transcript
// (in any rule, any action) from one that does not, so that the
// conversation keeps the user's messages only when needed.
func TestSetReadsTranscript(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want bool
	}{
		{`[{name: a, do: [reply: "{{ .Transcript | join \" / \" }}"]}]`, true},
		{`[{name: a, do: [echo: "> "]}, {name: b, do: [{pass_thread_control: {target: z, metadata: "{{ .Transcript | join \" / \" }}"}}]}]`, true},
		{`[{name: a, do: [sender_action: typing_on, {take_thread_control: {metadata: "{{ range .Transcript }}{{ . }}{{ end }}"}}]}]`, true},
		{`[{name: a, do: [reply: "Hi {{ .Text }} {{ .User.FirstName }}"]}, {name: b, do: [echo: "> "]}]`, false},
		{`[{name: a, when: 'text != ""', do: [{pass_thread_control: {target: z, metadata: "{{ .Text }}"}}]}]`, false},
	} {
		f, err := rules.Parse("t.yaml", []byte("version: 1\napps: {z: 1}\nrules: "+tt.src+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Set.ReadsTranscript(); got != tt.want {
			t.Errorf("%s: ReadsTranscript = %v, want %v", tt.src, got, tt.want)
		}
	}
}
