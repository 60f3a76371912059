package rules_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules"
)

func ExampleParse() {
	f, err := rules.Parse("rules.yaml", []byte(`
version: 1
apps:
  zendesk: 200646160103180
rules:
  - name: order-status
    match:
      regex: '(?i)order\s*#?(?P<order>\d{4,})'
    do:
      - reply: "Order {{ .Groups.order }}: let me find a person to check it."
      - pass_thread_control: zendesk
  - name: echo
    do:
      - echo: "[bot] "
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	d := f.Set.Evaluate(engine.Input{
		Event: &engine.Event{Kind: engine.KindMessage, Text: "Where is order #12345?"},
		Now:   time.Now(),
	})
	fmt.Println(f.RuleCount, "rules")
	for _, fired := range d.Fired {
		for _, st := range fired.Steps {
			fmt.Println(fired.Rule.Name, st.Kind(), st.Fields())
		}
	}
	// Output:
	// 2 rules
	// order-status reply map[text:Order 12345: let me find a person to check it.]
	// order-status pass_thread_control map[app_id:200646160103180 metadata: target:zendesk]
}

func ExampleParse_errors() {
	_, err := rules.Parse("rules.yaml", []byte(`version: 1
rules:
  - name: agent
    match:
      txt: chat with agent
      regex: 'agents?(?=!)'
    do:
      - reply: "One moment."
  - name: agent
    when: hour(now(), "Europe/Pariss") >= 9
    do: []
`))
	var errs *rules.Errors
	if errors.As(err, &errs) {
		for _, line := range errs.Lines() {
			fmt.Println(line)
		}
	}
	// Output:
	// rules.yaml:5:7: rule "agent": match: unknown key "txt", expected one of: event, text, contains, regex, postback, quick_reply, attachment, page, standby
	// rules.yaml:6:22: rule "agent": match.regex: invalid or unsupported Perl syntax in `(?=`, expected an RE2 regular expression (RE2 has no look-ahead, look-behind or back-references)
	// rules.yaml:9:11: rule "agent": the name is already used by the rule on line 3, expected a unique name
	// rules.yaml:10:23: rule "agent": when: unknown time zone "Europe/Pariss", expected an IANA time zone such as "Europe/Paris" or "UTC"
	// rules.yaml:11:9: rule "agent": do: the list is empty, expected at least one action
}
