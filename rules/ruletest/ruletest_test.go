package ruletest_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules"
	"github.com/threadgate/threadgate/rules/ruletest"
	"gopkg.in/yaml.v3"
)

const rulesFile = `version: 1
apps:
  zendesk: 200646160103180
rules:
  - name: seen
    do: [sender_action: mark_seen]
    continue: true
  - name: agent-open
    match:
      text: [chat with agent, talk to a human]
    when: 'business_hours("Mon-Fri 09:00-18:00", "Europe/Paris")'
    do:
      - reply: "Connecting you with an agent."
      - pass_thread_control:
          target: zendesk
          metadata: "asked: {{ .Text }}"
  - name: agent-closed
    match:
      text: [chat with agent, talk to a human]
    do:
      - reply: "We are closed."
  - name: agent-button
    match:
      postback: TALK_TO_AGENT
    do:
      - pass_thread_control: zendesk
  - name: yes
    match: {quick_reply: YES}
    do: [reply: "Great"]
  - name: photo
    match: {attachment: image}
    do: [reply: "Nice picture"]
  - name: back
    match: {event: pass_thread_control}
    do: [reply: "Back, owner {{ .Owner }}"]
  - name: take-back
    match: {standby: true, text: bot please}
    do: [take_thread_control: {}]
  - name: echo
    do: [echo: "[bot] "]
`

// kinds lists the event kinds as messages do.
func kinds() string {
	var out []string
	for _, k := range engine.Kinds {
		out = append(out, string(k))
	}
	return strings.Join(out, ", ")
}

// cases decodes a YAML list of cases.
func cases(t *testing.T, src string) []*ruletest.Case {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	cs, errs := ruletest.DecodeCases(doc.Content[0], "cases")
	if len(errs) > 0 {
		t.Fatalf("DecodeCases: %v", errs)
	}
	return cs
}

func TestRunCase(t *testing.T) {
	t.Parallel()
	f, err := rules.Parse("rules.yaml", []byte(rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	monday := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		src  string // one case, without "- name:"
		want []string
	}{
		{name: "phrase hands over", src: `
    message: "  Chat with AGENT! "
    expect:
      rule: agent-open
      actions:
        - sender_action: mark_seen
        - reply: "Connecting you with an agent."
        - pass_thread_control: {target: zendesk}`},
		{name: "metadata checked", src: `
    message: talk to a human
    expect:
      actions: [sender_action: {}, reply: {}, pass_thread_control: {metadata: "asked: talk to a human", app_id: "200646160103180"}]`},
		{name: "exact list", src: `
    message: chat with agent
    expect: {rule: [seen, agent-open]}`},
		{name: "out of hours", src: `
    message: chat with agent
    at: "2026-01-04T22:00:00+01:00"
    expect: {rule: agent-closed}`},
		{name: "wrong rule", src: `
    message: chat with agent
    at: "2026-01-04T22:00:00+01:00"
    expect: {rule: agent-open}`, want: []string{`rule: got "seen" then "agent-closed", want "agent-open"`}},
		{name: "wrong exact list", src: `
    message: hello
    expect: {rule: [echo]}`, want: []string{`rule: got "seen" then "echo", want "echo"`}},
		{name: "no rule expected", src: `
    event: take_thread_control
    expect: {rule: [], actions: []}`},
		{name: "unknown rule", src: `
    message: hello
    expect: {rule: ech}`, want: []string{`rule: the rules file has no rule named "ech"`, `rule: got "seen" then "echo", want "ech"`}},
		{name: "actions differ", src: `
    message: hello
    expect:
      actions: [sender_action: mark_seen, echo: "[bot] hi", reply: x]`, want: []string{
			`action 2: echo: text: got "[bot] hello", want "[bot] hi"`,
			`action 3: missing reply`,
		}},
		{name: "button", src: `
    postback: TALK_TO_AGENT
    expect: {rule: [agent-button], actions: [pass_thread_control: zendesk]}`},
		{name: "quick reply", src: `
    quick_reply: "YES"
    message: "Yes!"
    expect: {rule: yes}`},
		{name: "attachment", src: `
    attachment: [image]
    expect: {rule: photo}`},
		{name: "hand-back with owner", src: `
    event: pass_thread_control
    metadata: done
    owner: idle
    expect: {actions: [reply: "Back, owner idle"]}`},
		{name: "standby", src: `
    message: bot please
    standby: true
    expect: {rule: [take-back]}`},
		{name: "standby defaults the owner to other", src: `
    message: nothing
    standby: true
    expect: {rule: []}`},
		{name: "paused", src: `
    message: hello
    paused: true
    expect: {rule: []}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := cases(t, "  - name: "+tt.name+tt.src)
			res := ruletest.RunCase(f.Set, cs[0], monday)
			if strings.Join(res.Diffs, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("diffs:\n%s\nwant:\n%s\n(fired %q)", strings.Join(res.Diffs, "\n"), strings.Join(tt.want, "\n"), res.Fired)
			}
			if res.Passed() != (len(tt.want) == 0) {
				t.Errorf("Passed() = %v", res.Passed())
			}
		})
	}
}

func TestDecodeCasesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{name: "not a list", src: `{name: x}`, want: []string{"1:1: cases: expected a list of cases (each starting with - name: ...), got a mapping"}},
		{name: "empty", src: `[]`, want: []string{"1:1: cases: the list is empty, expected at least one case"}},
		{name: "not a mapping", src: `- hello`, want: []string{"1:3: cases: case #1: expected a mapping with name, an event (such as message: hello) and expect, got a string"}},
		{name: "missing everything", src: `- {}`, want: []string{
			"1:3: cases: case #1: expect: missing, expected what must happen, such as expect: {rule: agent-on-request}",
			"1:3: cases: case #1: name: missing, expected a name such as name: phrase hands over",
			"1:3: cases: case #1: no event: give message, postback, quick_reply, attachment or event",
		}},
		{name: "duplicate names", src: "- {name: a, message: x, expect: {rule: r}}\n- {name: a, message: y, expect: {rule: r}}", want: []string{
			`2:10: cases: case "a": the name is already used by the case on line 1, expected a unique name`,
		}},
		{name: "bad values", src: `- {name: a, message: [x], standby: maybe, at: tomorrow, event: postbak, expect: {rule: {a: b}, actions: reply}}`, want: []string{
			`1:22: cases: case "a": message: expected a single value, got a list`,
			`1:36: cases: case "a": standby: expected true or false, got a string`,
			`1:47: cases: case "a": at: "tomorrow" is not a time, expected a date and time with its zone such as 2026-01-05T10:00:00+01:00`,
			`1:88: cases: case "a": expect.rule: expected a rule's name, or a list of names ([] when no rule may fire), got a mapping`,
			`1:105: cases: case "a": expect.actions: expected a list of actions such as [reply: "Hello"] ([] when no action may run), got a string`,
		}},
		{name: "unknown event", src: `- {name: a, event: postbak, expect: {rule: r}}`, want: []string{
			`1:13: cases: case "a": event: unknown event "postbak", expected one of: ` + kinds(),
		}},
		{name: "keys that do not go together", src: `- {name: a, message: hi, postback: P, expect: {rule: r}}`, want: []string{
			`1:26: cases: case "a": postback: an event is either a message (message, quick_reply, attachment) or a postback, not both`,
		}},
		{name: "message with a handover event", src: `- {name: a, message: hi, event: pass_thread_control, expect: {rule: r}}`, want: []string{
			`1:26: cases: case "a": event: message, quick_reply and attachment describe a message, not a pass_thread_control event`,
		}},
		{name: "standby postback payload", src: `- {name: a, postback: P, standby: true, expect: {rule: r}}`, want: []string{
			`1:13: cases: case "a": postback: postbacks on the standby channel carry no payload; write event: postback and standby: true without postback`,
		}},
		{name: "metadata on a message", src: `- {name: a, message: hi, metadata: m, expect: {rule: r}}`, want: []string{
			`1:26: cases: case "a": metadata: metadata belongs to handover events (pass_thread_control, take_thread_control, request_thread_control)`,
		}},
		{name: "empty expect and bad action", src: "- {name: a, message: hi, expect: {}}\n- {name: b, message: hi, expect: {actions: [replie: x]}}", want: []string{
			`1:34: cases: case "a": expect: expected rule, actions or both, such as {rule: agent-on-request}`,
			`2:45: cases: case "b": expect.actions: expected action: unknown action "replie", expected one of: echo, pass_thread_control, release_thread_control, reply, request_thread_control, sender_action, take_thread_control`,
		}},
		{name: "unknown key", src: `- {name: a, mesage: hi, expect: {rule: r, rules: [r]}}`, want: []string{
			`1:3: cases: case "a": no event: give message, postback, quick_reply, attachment or event`,
			`1:13: cases: case "a": unknown key "mesage", expected one of: name, message, postback, quick_reply, attachment, event, standby, metadata, at, owner, paused, sender, page, expect`,
			`1:43: cases: case "a": expect: unknown key "rules", expected one of: rule, actions`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
				t.Fatal(err)
			}
			cs, errs := ruletest.DecodeCases(doc.Content[0], "cases")
			errs.Sort()
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			want := append([]string(nil), tt.want...)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if cs != nil {
				t.Errorf("cases returned along with errors")
			}
		})
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	f, err := rules.Parse("rules.yaml", []byte(rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	sunday := time.Date(2026, 1, 4, 21, 0, 0, 0, time.UTC)
	x := ruletest.Explain(f.Set, ruletest.Input{Message: "Chat with agent!"}, sunday)
	if len(x.Fired) != 2 || x.Fired[0].Rule != "seen" || x.Fired[1].Rule != "agent-closed" || x.Fired[1].Line != 17 {
		t.Fatalf("fired %+v", x.Fired)
	}
	if len(x.Trace) != 3 || !strings.HasPrefix(x.Trace[1].Reason, `when: business_hours(`) || x.Trace[1].Line != 8 {
		t.Errorf("trace %+v", x.Trace)
	}
	if x.NotTried != 6 {
		t.Errorf("NotTried = %d, want 6", x.NotTried)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var back ruletest.Explanation
	if err := json.Unmarshal(b, &back); err != nil || back.Fired[1].Actions[0].Fields["text"] != "We are closed." {
		t.Errorf("JSON round trip: %v %s", err, b)
	}
}

func TestInputValidateJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want string
	}{
		{`{"message": "hi"}`, ""},
		{`{"postback": "P", "standby": true}`, "postback: postbacks on the standby channel carry no payload; write event: postback and standby: true without postback"},
		{`{}`, "no event: give message, postback, quick_reply, attachment or event"},
		{`{"event": "nope"}`, `event: unknown event "nope", expected one of: ` + kinds()},
		{`{"event": "message"}`, ""},
	}
	for _, tt := range tests {
		var in ruletest.Input
		if err := json.Unmarshal([]byte(tt.body), &in); err != nil {
			t.Fatal(err)
		}
		err := in.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: Validate() = %q, want %q", tt.body, got, tt.want)
		}
	}
}

// TestPageByName checks that a case's page may be a name of the file's
// pages, standing for the page's ID.
func TestPageByName(t *testing.T) {
	t.Parallel()
	f, err := rules.Parse("rules.yaml", []byte(`version: 1
pages:
  shop: 111222333444555
  support: 222333444555666
rules:
  - name: shop
    match: {page: shop}
    do: [reply: "shop"]
  - name: other
    do: [reply: "other"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for page, want := range map[string]string{"shop": "shop", "111222333444555": "shop", "support": "other", "": "other"} {
		x := ruletest.Explain(f.Set, ruletest.Input{Message: "hi", Page: page}, time.Now())
		if len(x.Fired) != 1 || x.Fired[0].Rule != want {
			t.Errorf("page %q: fired %+v, want %s", page, x.Fired, want)
		}
	}
}
