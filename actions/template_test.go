package actions

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"text/template"

	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

const fieldList = ".Text, .Payload, .Event, .SenderID, .PageID, .Rule, .Groups, .Metadata, .Vars, .Owner, .Transcript, .User"

func TestParseTemplate(t *testing.T) {
	long := strings.Repeat("é", 21)
	tests := []struct {
		name    string
		src     string // "t: VALUE"
		max     int
		want    string // the error, empty when the template compiles
		literal bool
	}{
		{name: "literal", src: `t: "hello"`, max: 20, literal: true},
		{name: "literal at the limit in characters", src: `t: "` + strings.Repeat("é", 20) + `"`, max: 20, literal: true},
		{name: "literal over the limit", src: `t: "` + long + `"`, max: 20, want: "1:4: reply.text: the text is 21 characters long, the limit is 20"},
		{name: "no limit", src: `t: "` + long + `"`, max: 0, literal: true},
		{name: "single braces are literal", src: `t: "{ .Foo }"`, max: 20, literal: true},
		{name: "fields", src: `t: "{{ .Text }} {{ .Payload }} {{ .Event }} {{ .SenderID }} {{ .PageID }} {{ .Rule }} {{ .Metadata }} {{ .Owner }}"`, max: 2000},
		{name: "groups and vars", src: `t: "{{ .Groups.order }} {{ .Vars.brand }} {{ index .Groups \"x\" }} {{ $.Vars.any.thing }}"`, max: 2000},
		{name: "branches and loops", src: `t: "{{ if .Groups.x }}{{ .Text }}{{ else }}{{ .Payload }}{{ end }}{{ range .Transcript }}{{ . }}{{ end }}{{ with .Groups }}{{ .order }}{{ end }}"`, max: 2000},
		{name: "functions", src: `t: "{{ lower .Text }}{{ upper .Vars.brand }}{{ trim .Text }}{{ .Transcript | join \", \" }}{{ printf \"%s\" .Text }}"`, max: 2000},
		{name: "data-dependent failure is left to render", src: `t: "{{ index .Transcript 3 }}{{ slice .Text 0 5 }}"`, max: 2000},
		{name: "number", src: `t: 12`, max: 20, want: "1:4: reply.text: expected a string, got a number (put it in quotes)"},
		{name: "null", src: `t:`, max: 20, want: "1:3: reply.text: expected a string, got nothing (null)"},
		{name: "list", src: `t: [a]`, max: 20, want: "1:4: reply.text: expected a string, got a list"},
		{name: "unknown field", src: `t: "Hi {{ .Foo }}"`, max: 2000, want: "1:11: reply.text: unknown field .Foo, a template can read " + fieldList},
		{name: "unknown field plain scalar", src: `t: Hi {{ .Foo }}`, max: 2000, want: "1:10: reply.text: unknown field .Foo, a template can read " + fieldList},
		{name: "unknown field single quoted", src: `t: 'Hi {{ .Foo }}'`, max: 2000, want: "1:11: reply.text: unknown field .Foo, a template can read " + fieldList},
		{name: "column counts characters", src: `t: "été {{ .Foo }}"`, max: 2000, want: "1:12: reply.text: unknown field .Foo, a template can read " + fieldList},
		{name: "unknown field in a branch not taken", src: `t: "{{ if .Text }}{{ .Txet }}{{ end }}"`, max: 2000, want: "1:22: reply.text: unknown field .Txet, a template can read " + fieldList},
		{name: "unknown field through $", src: `t: "{{ $.Groups.x }}{{ $.Foo.Bar }}"`, max: 2000, want: "1:25: reply.text: unknown field .Foo, a template can read " + fieldList},
		{name: "field of a text", src: `t: "{{ .Text.Foo }}"`, max: 2000, want: "1:13: reply.text: .Text is a text and has no field .Foo"},
		{name: "field of a group", src: `t: "{{ .Groups.order.id }}"`, max: 2000, want: "1:21: reply.text: .Groups.order is a text and has no field .id"},
		{name: "field of dot in range", src: `t: "{{ range .Transcript }}{{ .Foo }}{{ end }}"`, max: 2000, want: "1:31: reply.text: dot is a text here (inside with or range) and has no field .Foo"},
		{name: "does not parse", src: `t: "{{ .Text "`, max: 2000, want: "1:4: reply.text: the template does not parse: unclosed action"},
		{name: "unknown function", src: `t: "{{ shout .Text }}"`, max: 2000, want: `1:4: reply.text: the template does not parse: function "shout" not defined (threadgate adds lower, upper, trim and join to the text/template built-ins)`},
		{name: "named template", src: `t: "{{ template \"x\" }}"`, max: 2000, want: `1:17: reply.text: {{ template }} and {{ block }} are not supported in rules: write the text in place`},
		{name: "define", src: `t: "{{ define \"x\" }}{{ template \"x\" . }}{{ template \"x\" . }}{{ end }}{{ template \"x\" . }}"`, max: 2000, want: `1:4: reply.text: {{ define }} and {{ block }} are not supported in rules: write the text in place`},
		{name: "block", src: `t: "{{ block \"x\" . }}hi{{ end }}"`, max: 2000, want: `1:4: reply.text: {{ define }} and {{ block }} are not supported in rules: write the text in place`},
		{name: "range over a number", src: `t: "{{ if eq .Text \"boom\" }}{{ range 2000000000 }}{{ end }}{{ end }}ok"`, max: 2000, want: `1:38: reply.text: range: only over .Transcript, .Groups or .Vars (a range over a number or another value could loop without bound)`},
		{name: "range over a var", src: `t: "{{ range .Vars.n }}x{{ end }}"`, max: 2000, want: `1:14: reply.text: range: only over .Transcript, .Groups or .Vars (a range over a number or another value could loop without bound)`},
		{name: "range over a text", src: `t: "{{ range .Text }}x{{ end }}"`, max: 2000, want: `1:14: reply.text: range: only over .Transcript, .Groups or .Vars (a range over a number or another value could loop without bound)`},
		{name: "range over the transcript with index", src: `t: "{{ range $i, $m := .Transcript }}{{ $i }}{{ $m }}{{ end }}{{ range .Groups }}{{ . }}{{ end }}{{ range .Vars }}{{ . }}{{ end }}"`, max: 2000},
		{name: "wrong number of arguments", src: `t: "ok {{ join }}"`, max: 2000, want: "1:11: reply.text: at <join>: wrong number of args for join: want 2 got 0"},
		{name: "parse error on a later line points at the value", src: "t: \"a\n\n  {{ .Text \"", max: 2000, want: "1:4: reply.text: the template does not parse: unclosed action"},
		{name: "block scalar points at the value", src: "t: |\n  a\n  {{ .Foo }}", max: 2000, want: "1:4: reply.text: unknown field .Foo, a template can read " + fieldList},
		{name: "too long even when empty", src: `t: "{{ .Text }}` + strings.Repeat("x", 9000) + `"`, max: 2000, want: "1:4: reply.text: the template renders more than 2000 characters even for an empty event"},
		{name: "over the limit when empty", src: `t: "{{ .Text }}ééééééééééééééé"`, max: 10, want: "1:4: reply.text: the template renders 15 characters even for an empty event, the limit is 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := ParseTemplate(valueNode(t, tt.src), "reply.text", tt.max)
			if tt.want != "" {
				if err == nil {
					t.Fatalf("got no error, want %q", tt.want)
				}
				if err.Error() != tt.want {
					t.Fatalf("error:\n got %q\nwant %q", err, tt.want)
				}
				if tmpl != nil {
					t.Fatal("got a template with the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %q", err)
			}
			if tmpl.Literal() != tt.literal {
				t.Errorf("Literal() = %v, want %v", tmpl.Literal(), tt.literal)
			}
			if got := valueNode(t, tt.src).Value; tmpl.Source() != got {
				t.Errorf("Source() = %q, want %q", tmpl.Source(), got)
			}
		})
	}
}

func TestCompilerTemplate(t *testing.T) {
	vars := map[string]any{"brand": "Acme", "count": 3}
	tests := []struct {
		name string
		c    *Compiler
		src  string
		want string
	}{
		{name: "nil compiler accepts any var", c: nil, src: `t: "{{ .Vars.nope }}"`},
		{name: "no vars set accepts any var", c: &Compiler{}, src: `t: "{{ .Vars.nope }}"`},
		{name: "known var", c: &Compiler{Vars: vars}, src: `t: "{{ .Vars.brand }} {{ $.Vars.count }}"`},
		{name: "unknown var", c: &Compiler{Vars: vars}, src: `t: "{{ .Vars.brand }} {{ .Vars.brnad }}"`, want: `1:31: m: unknown var "brnad", expected one of: brand, count`},
		{name: "unknown var through $", c: &Compiler{Vars: vars}, src: `t: "{{ $.Vars.brnad }}"`, want: `1:14: m: unknown var "brnad", expected one of: brand, count`},
		{name: "no vars defined", c: &Compiler{Vars: map[string]any{}}, src: `t: "{{ .Vars.brand }}"`, want: `1:13: m: unknown var "brand", no vars are defined (add it under vars:)`},
		{name: "var in a branch", c: &Compiler{Vars: vars}, src: `t: "{{ if .Text }}{{ .Vars.brnad }}{{ end }}"`, want: `1:27: m: unknown var "brnad", expected one of: brand, count`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Template(valueNode(t, tt.src), "m", MaxMetadataLen)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("error:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCompilerAt checks that the position inside the value is handed to
// Compiler.At, which the rules loader uses to map it with the file's text.
func TestCompilerAt(t *testing.T) {
	tests := []struct {
		name            string
		src             string
		line, col       int
		wantMsgContains string
	}{
		{name: "field on a later line", src: "t: |\n  hello\n  dear {{ .Foo }}", line: 2, col: 9, wantMsgContains: "unknown field .Foo"},
		{name: "parse error line", src: "t: |\n  hello\n  {{ .Text", line: 2, col: 1, wantMsgContains: "does not parse"},
		{name: "exec error", src: "t: \"{{ join }}\"", line: 1, col: 4, wantMsgContains: "wrong number of args"},
		{name: "unknown var", src: "t: \"ab\\n{{ .Vars.x }}\"", line: 2, col: 9, wantMsgContains: `unknown var "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotLine, gotCol int
			c := &Compiler{Vars: map[string]any{}, At: func(n *yaml.Node, line, col int, format string, args ...any) *diag.Error {
				gotLine, gotCol = line, col
				return diag.At(n, format, args...)
			}}
			_, err := c.Template(valueNode(t, tt.src), "reply", MaxTextLen)
			mustContain(t, err, tt.wantMsgContains)
			if gotLine != tt.line || gotCol != tt.col {
				t.Fatalf("At got %d:%d, want %d:%d", gotLine, gotCol, tt.line, tt.col)
			}
		})
	}
}

func TestRender(t *testing.T) {
	data := &Data{
		Text:       "Where is order 1234?",
		Payload:    "AGENT",
		Event:      "message",
		SenderID:   "222",
		PageID:     "111",
		Rule:       "order-status",
		Groups:     map[string]string{"order": "1234"},
		Metadata:   "reason=billing",
		Vars:       map[string]any{"brand": "Acme", "count": 3, "tags": []any{"a", 2}},
		Owner:      "bot",
		Transcript: []string{"hi", "order 1234"},
	}
	tests := []struct {
		name    string
		src     string
		max     int
		d       *Data
		want    string
		wantErr string
	}{
		{name: "literal", src: "Connecting you with an agent.", max: 2000, d: data, want: "Connecting you with an agent."},
		{name: "literal renders even with braces alone", src: "{ not a template }", max: 2000, d: data, want: "{ not a template }"},
		{name: "text", src: "You said: {{ .Text }}", max: 2000, d: data, want: "You said: Where is order 1234?"},
		{name: "group", src: "Order {{ .Groups.order }}: want a person?", max: 2000, d: data, want: "Order 1234: want a person?"},
		{name: "missing group is empty", src: "[{{ .Groups.nope }}]", max: 2000, d: data, want: "[]"},
		{name: "var", src: "You're back with the {{ .Vars.brand }} bot.", max: 2000, d: data, want: "You're back with the Acme bot."},
		{name: "missing var is empty", src: "[{{ .Vars.nope }}][{{ $.Vars.none }}]", max: 2000, d: data, want: "[][]"},
		{name: "missing var with no vars", src: "[{{ .Vars.nope }}]", max: 2000, d: &Data{}, want: "[]"},
		{name: "number var", src: "{{ .Vars.count }} items", max: 2000, d: data, want: "3 items"},
		{name: "event fields", src: "{{ .Event }}/{{ .SenderID }}/{{ .PageID }}/{{ .Rule }}/{{ .Payload }}/{{ .Metadata }}/{{ .Owner }}", max: 2000, d: data, want: "message/222/111/order-status/AGENT/reason=billing/bot"},
		{name: "lower upper trim", src: "{{ lower .Vars.brand }} {{ upper .Text }} [{{ trim \"  x \" }}] {{ lower .Vars.count }}", max: 2000, d: data, want: "acme WHERE IS ORDER 1234? [x] 3"},
		{name: "join", src: "{{ .Transcript | join \" / \" }} {{ join \",\" .Vars.tags }} [{{ join \",\" .Vars.none }}]", max: 2000, d: data, want: "hi / order 1234 a,2 []"},
		{name: "join of a number fails", src: "{{ join \",\" .Vars.count }}", max: 2000, d: data, wantErr: "reply.text: template line 1, column 4, at <join \",\" .Vars.count>: error calling join: join: expected a list"},
		{name: "nil data", src: "[{{ .Text }}{{ .Groups.x }}]", max: 2000, d: nil, want: "[]"},
		{name: "at the limit", src: "{{ .Text }}", max: 20, d: &Data{Text: strings.Repeat("é", 20)}, want: strings.Repeat("é", 20)},
		{name: "over the limit", src: "{{ .Text }}!", max: 20, d: &Data{Text: strings.Repeat("é", 20)}, wantErr: "reply.text: the rendered text is 21 characters long, the limit is 20"},
		{name: "far over the limit", src: "{{ .Text }}{{ .Text }}{{ .Text }}{{ .Text }}{{ .Text }}", max: 20, d: &Data{Text: strings.Repeat("x", 20)}, wantErr: "reply.text: the rendered text is over the limit of 20 characters"},
		{name: "index out of range", src: "a\n{{ index .Transcript 5 }}", max: 2000, d: data, wantErr: "reply.text: template line 2, column 4, at <index .Transcript 5>: error calling index: index out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, perr := ParseTemplate(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: tt.src, Line: 1, Column: 1}, "reply.text", tt.max)
			if perr != nil {
				t.Fatalf("parse: %v", perr)
			}
			got, err := tmpl.Render(tt.d)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error:\n got %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderErrorUnwraps(t *testing.T) {
	tmpl, perr := ParseTemplate(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "{{ index .Transcript 1 }}"}, "m", 0)
	if perr != nil {
		t.Fatal(perr)
	}
	_, err := tmpl.Render(&Data{})
	var xerr template.ExecError
	if !errors.As(err, &xerr) {
		t.Fatalf("error %v does not unwrap to a template.ExecError", err)
	}
}

// TestRenderConcurrent renders one template from many goroutines; run with
// -race.
func TestRenderConcurrent(t *testing.T) {
	tmpl, perr := ParseTemplate(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "{{ .Text }}-{{ .Groups.n }}"}, "m", 100)
	if perr != nil {
		t.Fatal(perr)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				want := fmt.Sprintf("%d-%d", i, j)
				got, err := tmpl.Render(&Data{Text: fmt.Sprint(i), Groups: map[string]string{"n": fmt.Sprint(j)}})
				if err != nil || got != want {
					errs <- fmt.Errorf("got %q, %v; want %q", got, err, want)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkRenderTemplate(b *testing.B) {
	d := &Data{
		Text:   "where is my order 123456",
		Groups: map[string]string{"order": "123456"},
		Vars:   map[string]any{"brand": "Acme"},
	}
	for _, bm := range []struct{ name, src string }{
		{"literal", "Connecting you with an agent."},
		{"text", "You said: {{ .Text }}"},
		{"group", "Order {{ .Groups.order }}: want a person to check it?"},
		{"var", "You're back with the {{ .Vars.brand }} bot."},
	} {
		tmpl, err := ParseTemplate(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: bm.src}, "reply", MaxTextLen)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tmpl.Render(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestExecErrKindDropsValues(t *testing.T) {
	const secret = "4111 1111 1111 1111"
	tests := []struct{ msg, want string }{
		{"error calling index: index out of range: 5", "error calling index: index out of range"},
		{"error calling slice: slice index out of range", "error calling slice: slice index out of range"},
		{"error calling join: join: expected a list, got int", "error calling join: join: expected a list"},
		{"error calling lower: " + secret, "error calling lower"},
		{"error calling " + secret + ": boom", "error calling"},
		{"wrong type for value; expected string; got int", "wrong type for value"},
		{"incompatible types for comparison", "incompatible types for comparison"},
		{"something new about " + secret, "the template failed"},
	}
	for _, tt := range tests {
		got := execErrKind(tt.msg)
		if got != tt.want {
			t.Errorf("execErrKind(%q) = %q, want %q", tt.msg, got, tt.want)
		}
		if strings.Contains(got, "4111") {
			t.Errorf("execErrKind(%q) kept the value: %q", tt.msg, got)
		}
	}
}

// TestRenderAfterAFailedRender: the writer a render leaves behind, even one
// stopped over the limit, holds nothing of it for the next render.
func TestRenderAfterAFailedRender(t *testing.T) {
	tmpl, perr := ParseTemplate(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "<{{ .Text }}>"}, "m", 8)
	if perr != nil {
		t.Fatal(perr)
	}
	for i, tt := range []struct{ text, want, wantErr string }{
		{"ok", "<ok>", ""},
		{strings.Repeat("x", 100), "", "over the limit"},
		{"é", "<é>", ""},
		{"123456", "<123456>", ""},
		{"1234567", "", "is 9 characters long, the limit is 8"},
		{"", "<>", ""},
	} {
		got, err := tmpl.Render(&Data{Text: tt.text})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%d: error %v, want %q", i, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%d: got %q, %v; want %q", i, got, err, tt.want)
		}
	}
}
