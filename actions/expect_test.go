package actions

import (
	"fmt"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// docNode parses src and returns its top node.
func docNode(t testing.TB, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("bad test YAML %q: %v", src, err)
	}
	return doc.Content[0]
}

func TestDecodeExpectation(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want *Expectation
		errs []string
	}{
		{name: "reply text", src: `reply: "Connecting you with an agent."`, want: &Expectation{Kind: "reply", Want: map[string]any{"text": "Connecting you with an agent."}, Line: 1, Column: 1}},
		{name: "echo text", src: `echo: "[bot] hello"`, want: &Expectation{Kind: "echo", Want: map[string]any{"text": "[bot] hello"}, Line: 1, Column: 1}},
		{name: "target short form", src: `pass_thread_control: zendesk`, want: &Expectation{Kind: "pass_thread_control", Want: map[string]any{"target": "zendesk"}, Line: 1, Column: 1}},
		{name: "target mapping", src: `pass_thread_control: {target: zendesk}`, want: &Expectation{Kind: "pass_thread_control", Want: map[string]any{"target": "zendesk"}, Line: 1, Column: 1}},
		{name: "numeric app id", src: `pass_thread_control: {app_id: 200646160103180, metadata: ~}`, want: &Expectation{Kind: "pass_thread_control", Want: map[string]any{"app_id": "200646160103180", "metadata": ""}, Line: 1, Column: 1}},
		{name: "kind only", src: `take_thread_control:`, want: &Expectation{Kind: "take_thread_control", Want: map[string]any{}, Line: 1, Column: 1}},
		{name: "empty mapping", src: `release_thread_control: {}`, want: &Expectation{Kind: "release_thread_control", Want: map[string]any{}, Line: 1, Column: 1}},
		{name: "metadata short form", src: `take_thread_control: bot resumes`, want: &Expectation{Kind: "take_thread_control", Want: map[string]any{"metadata": "bot resumes"}, Line: 1, Column: 1}},
		{name: "sender action", src: `sender_action: typing_on`, want: &Expectation{Kind: "sender_action", Want: map[string]any{"action": "typing_on"}, Line: 1, Column: 1}},
		{name: "lists", src: "reply:\n  quick_replies: [{title: Yes, payload: 12}]", want: &Expectation{Kind: "reply", Want: map[string]any{
			"quick_replies": []any{map[string]any{"title": "Yes", "payload": "12"}},
		}, Line: 1, Column: 1}},
		{name: "unknown kind", src: `replie: hi`, errs: []string{`1:1: expected action: unknown action "replie", expected one of: echo, pass_thread_control, release_thread_control, reply, request_thread_control, sender_action, take_thread_control`}},
		{name: "two keys", src: `{reply: hi, echo: x}`, errs: []string{"1:1: expected action: expected a mapping with one key, the action (e.g. reply: TEXT), got a mapping with 2 keys"}},
		{name: "bare kind", src: `reply`, errs: []string{"1:1: expected action: expected a mapping with one key, the action (e.g. reply: TEXT), got a string"}},
		{name: "no scalar for release", src: `release_thread_control: x`, errs: []string{"1:25: release_thread_control: takes no value to compare, write release_thread_control: {}"}},
		{name: "list value", src: `reply: [a]`, errs: []string{"1:8: reply: expected a value or a mapping of the fields to check, got a list"}},
		{name: "unknown and duplicate fields", src: "pass_thread_control:\n  targte: x\n  target: a\n  target: b\n  metadata: {a: 1, a: 2}", errs: []string{
			`2:3: pass_thread_control: unknown key "targte", expected one of: target, app_id, metadata`,
			`4:3: pass_thread_control: key "target" is given twice`,
			`5:20: pass_thread_control.metadata: key "a" is given twice`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := DecodeExpectation(docNode(t, tt.src))
			if gotErrs := errStrings(errs); !reflect.DeepEqual(gotErrs, tt.errs) {
				t.Fatalf("errors:\n got %q\nwant %q", gotErrs, tt.errs)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestExpectationMatch(t *testing.T) {
	d := &Data{Text: "chat with agent", Groups: map[string]string{"order": "1234"}}
	tests := []struct {
		name   string
		action string // the action, planned for d
		expect string // the expectation
		ok     bool
		diff   string
	}{
		{name: "reply text", action: `reply: "Connecting you with an agent."`, expect: `reply: "Connecting you with an agent."`, ok: true},
		{name: "reply text differs", action: `reply: "Connecting you."`, expect: `reply: "Connecting you with an agent."`, diff: `reply: text: got "Connecting you.", want "Connecting you with an agent."`},
		{name: "kind only", action: `reply: hi`, expect: `reply:`, ok: true},
		{name: "kind differs", action: `echo: "> "`, expect: `reply: "> chat with agent"`, diff: `got echo {text: "> chat with agent"}, want reply`},
		{name: "echo", action: `echo: "[bot] "`, expect: `echo: "[bot] chat with agent"`, ok: true},
		{name: "target whatever the metadata", action: `pass_thread_control: {target: zendesk, metadata: "asked: {{ .Text }}"}`, expect: `pass_thread_control: {target: zendesk}`, ok: true},
		{name: "target short form", action: `pass_thread_control: zendesk`, expect: `pass_thread_control: zendesk`, ok: true},
		{name: "target and metadata differ", action: `pass_thread_control: {target: zendesk, metadata: "a"}`, expect: `pass_thread_control: {target: page_inbox, metadata: b}`, diff: `pass_thread_control: metadata: got "a", want "b"; target: got "zendesk", want "page_inbox"`},
		{name: "app id", action: `pass_thread_control: zendesk`, expect: `pass_thread_control: {app_id: 200646160103180}`, ok: true},
		{name: "quick replies whole", action: `reply: {text: "Order {{ .Groups.order }}?", quick_replies: [{title: Yes, payload: AGENT}, {title: No, payload: 7}]}`, expect: `reply: {text: "Order 1234?", quick_replies: [{title: Yes, payload: AGENT}, {title: No, payload: 7}]}`, ok: true},
		{name: "quick replies are compared whole", action: `reply: {text: hi, quick_replies: [{title: Yes, payload: AGENT}, {title: No, payload: NO}]}`, expect: `reply: {quick_replies: [{title: Yes, payload: AGENT}]}`, diff: `reply: quick_replies: got [{payload: "AGENT", title: "Yes"}, {payload: "NO", title: "No"}], want [{payload: "AGENT", title: "Yes"}]`},
		{name: "quick replies missing", action: `reply: hi`, expect: `reply: {quick_replies: [{title: Yes, payload: AGENT}]}`, diff: `reply: quick_replies: not set, want [{payload: "AGENT", title: "Yes"}]`},
		{name: "buttons", action: `reply: {text: hi, buttons: [{title: Go, url: "https://example.com"}]}`, expect: `reply: {buttons: [{title: Go, url: "https://example.com"}]}`, ok: true},
		{name: "release", action: `release_thread_control: {}`, expect: `release_thread_control: {}`, ok: true},
		{name: "take metadata", action: `take_thread_control: {metadata: "x {{ .Text }}"}`, expect: `take_thread_control: x chat with agent`, ok: true},
		{name: "sender action differs", action: `sender_action: typing_on`, expect: `sender_action: typing_off`, diff: `sender_action: action: got "typing_on", want "typing_off"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := plan(t, tt.action, d)
			if err != nil {
				t.Fatal(err)
			}
			e, errs := DecodeExpectation(docNode(t, tt.expect))
			if len(errs) > 0 {
				t.Fatal(errStrings(errs))
			}
			ok, diff := e.Match(s)
			if ok != tt.ok || diff != tt.diff {
				t.Fatalf("Match = %v, %q; want %v, %q", ok, diff, tt.ok, tt.diff)
			}
		})
	}
}

func TestMatchSteps(t *testing.T) {
	d := &Data{Text: "chat with agent"}
	steps := func(srcs ...string) []Step {
		var out []Step
		for _, src := range srcs {
			s, err := plan(t, src, d)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	expects := func(src string) []*Expectation {
		var out []*Expectation
		for _, item := range docNode(t, src).Content {
			e, errs := DecodeExpectation(item)
			if len(errs) > 0 {
				t.Fatal(errStrings(errs))
			}
			out = append(out, e)
		}
		return out
	}
	tests := []struct {
		name   string
		got    []Step
		expect string
		want   []string
	}{
		{name: "all match", got: steps(`reply: "Connecting you."`, `pass_thread_control: zendesk`), expect: `[{reply: "Connecting you."}, {pass_thread_control: {target: zendesk}}]`},
		{name: "none expected, none done", got: nil, expect: `[]`},
		{name: "missing", got: steps(`reply: "Connecting you."`), expect: `[{reply: "Connecting you."}, {pass_thread_control: zendesk}]`, want: []string{"action 2: missing pass_thread_control"}},
		{name: "unexpected", got: steps(`reply: hi`, `sender_action: mark_seen`), expect: `[{reply: hi}]`, want: []string{`action 2: unexpected sender_action {action: "mark_seen"}`}},
		{name: "order matters", got: steps(`pass_thread_control: zendesk`, `reply: hi`), expect: `[{reply: hi}, {pass_thread_control: zendesk}]`, want: []string{
			`action 1: got pass_thread_control {app_id: "200646160103180", metadata: "", target: "zendesk"}, want reply`,
			`action 2: got reply {text: "hi"}, want pass_thread_control`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchSteps(tt.got, expects(tt.expect)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func ExampleFormat() {
	fmt.Println(Format(map[string]any{"text": "hi", "quick_replies": []any{map[string]any{"title": "Yes", "payload": "AGENT"}}}))
	// Output: {quick_replies: [{payload: "AGENT", title: "Yes"}], text: "hi"}
}

func ExampleDecodeExpectation() {
	var doc yaml.Node
	_ = yaml.Unmarshal([]byte(`pass_thread_control: {target: zendesk}`), &doc)
	e, _ := DecodeExpectation(doc.Content[0])

	c := &Compiler{Apps: map[string]string{"zendesk": "200646160103180", "inbox": "263902037430900"}}
	for _, target := range []string{"zendesk", "inbox"} {
		a, _ := passThreadControlSpec.Decode(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: target}, c)
		s, _ := a.Plan(&Data{Text: "chat with agent"})
		if ok, diff := e.Match(s); ok {
			fmt.Println("match")
		} else {
			fmt.Println(diff)
		}
	}
	// Output:
	// match
	// pass_thread_control: target: got "inbox", want "zendesk"
}
