package gateway_test

import (
	"testing"

	"github.com/threadgate/threadgate/internal/fakegraph"
)

// Templates greet the user by name: the profile is asked of the User
// Profile API only when a rule reads .User, once per user while it is
// kept, and a refusal renders the template's fallback.
func TestUserProfileInTemplates(t *testing.T) {
	t.Parallel()
	const greeting = `version: 1
rules:
  - name: hello
    do: [reply: "Hi {{ or .User.FirstName \"there\" }}!"]
`
	const plain = `version: 1
rules:
  - name: echo
    do: [echo: "[bot] "]
`
	tests := []struct {
		name    string
		rules   string
		answer  *fakegraph.Answer
		want    string
		lookups int
	}{
		{"a rule reads .User", greeting, &fakegraph.Answer{Status: 200, Body: `{"first_name":"Anna","last_name":"Berg","id":"u1"}`}, "Hi Anna!", 1},
		{"the platform refuses", greeting, func() *fakegraph.Answer {
			a := fakegraph.GraphError{Status: 400, Code: 100, Subcode: 2018218, Message: "no profile", FBTraceID: "TraceUser"}.Answer()
			return &a
		}(), "Hi there!", 1},
		{"no rule reads .User", plain, nil, "[bot] hello", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			graph := fakegraph.New(t, fakegraph.Options{})
			if tt.answer != nil {
				graph.Fault(fakegraph.Match{Path: "/u1"}, *tt.answer)
			}
			d := newDurable(t, durableOptions{rules: tt.rules, graph: graph})
			d.mustPost(envelope("messaging", textEvent("u1", "hello")))
			d.mustPost(envelope("messaging", textEvent("u1", "hello")+","+textEventMID("u1", "m-second", "hello")))
			got := d.out.waitDelivered(t, "u1", 3)
			for _, text := range got {
				if text != tt.want {
					t.Errorf("replies %q, want %q each", got, tt.want)
					break
				}
			}
			if n := len(graph.CallsTo("/u1")); n != tt.lookups {
				t.Errorf("%d User Profile lookups for three messages, want %d", n, tt.lookups)
			}
		})
	}
}
