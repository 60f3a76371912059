package engine_test

import (
	"fmt"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules"
)

func ExampleSet_Evaluate() {
	f, err := rules.Parse("rules.yaml", []byte(`
version: 1
apps:
  zendesk: 200646160103180
rules:
  - name: agent
    match:
      text: chat with agent
    do:
      - reply: "Connecting you with an agent."
      - pass_thread_control: zendesk
  - name: echo
    do:
      - echo: "[bot] "
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, text := range []string{"  Chat with AGENT! ", "hello"} {
		d := f.Set.Evaluate(engine.Input{
			Event: &engine.Event{Kind: engine.KindMessage, Text: text, SenderID: "1254", PageID: "99"},
			Now:   time.Now(),
		})
		for _, fired := range d.Fired {
			for _, st := range fired.Steps {
				fmt.Println(fired.Rule.Name, st.Kind(), st.Fields()["text"], st.Fields()["target"])
			}
		}
	}
	// Output:
	// agent reply Connecting you with an agent. <nil>
	// agent pass_thread_control <nil> zendesk
	// echo echo [bot] hello <nil>
}

func ExampleSet_Explain() {
	f, err := rules.Parse("rules.yaml", []byte(`
version: 1
rules:
  - name: button
    match: {postback: TALK_TO_AGENT}
    do: [reply: "One moment."]
  - name: evening
    when: 'hour(now(), "Europe/Paris") >= 18'
    do: [reply: "We are closed."]
  - name: echo
    do: [echo: ""]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	d := f.Set.Explain(engine.Input{
		Event: &engine.Event{Kind: engine.KindMessage, Text: "hi"},
		Now:   time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC),
	})
	for _, tr := range d.Trace {
		fmt.Printf("%s fired=%v %s\n", tr.Rule, tr.Fired, tr.Reason)
	}
	// Output:
	// button fired=false event: is message, the rule wants postback
	// evening fired=false when: hour(now(), "Europe/Paris") >= 18 is false
	// echo fired=true
}
