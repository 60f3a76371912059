package actions

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/messenger"
)

func TestDecodeEcho(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "prefix", src: `echo: "[bot] "`},
		{name: "empty prefix", src: `echo: ""`},
		{name: "template prefix", src: `echo: "[{{ .Vars.brand }}] "`},
		{name: "null", src: `echo:`, want: []string{"1:6: echo: expected a string, got nothing (null)"}},
		{name: "number", src: `echo: 42`, want: []string{"1:7: echo: expected a string, got a number (put it in quotes)"}},
		{name: "mapping", src: `echo: {prefix: x}`, want: []string{"1:7: echo: expected a string, got a mapping"}},
		{name: "unknown field", src: `echo: "{{ .Txt }} "`, want: []string{"1:11: echo: unknown field .Txt, a template can read " + fieldList}},
		{name: "unknown var", src: `echo: "{{ .Vars.brnad }} "`, want: []string{`1:16: echo: unknown var "brnad", expected one of: brand, tags`}},
		{name: "too long", src: `echo: "` + strings.Repeat("x", 2001) + `"`, want: []string{"1:7: echo: the text is 2001 characters long, the limit is 2000"}},
	})
}

func TestPlanEcho(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		d       *Data
		want    map[string]any // nil: no step
		wantErr string
	}{
		{name: "prefixed", src: `echo: "[bot] "`, d: &Data{Text: "hello"}, want: map[string]any{"text": "[bot] hello"}},
		{name: "no prefix", src: `echo: ""`, d: &Data{Text: "héllo"}, want: map[string]any{"text": "héllo"}},
		{name: "template prefix", src: `echo: "[{{ .Rule }}] "`, d: &Data{Text: "hi", Rule: "echo"}, want: map[string]any{"text": "[echo] hi"}},
		{name: "no text", src: `echo: "[bot] "`, d: &Data{Event: "message"}, want: nil},
		{name: "postback", src: `echo: "[bot] "`, d: &Data{Event: "postback", Payload: "AGENT"}, want: nil},
		{name: "nil data", src: `echo: "[bot] "`, d: nil, want: nil},
		{name: "text at the limit", src: `echo: "é"`, d: &Data{Text: strings.Repeat("é", 1999)}, want: map[string]any{"text": strings.Repeat("é", 2000)}},
		{name: "text over the limit", src: `echo: "[bot] "`, d: &Data{Text: strings.Repeat("x", 1995)}, wantErr: "echo: the text to send is 2001 characters long, the limit is 2000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := planCase(t, tt.src, tt.d, tt.wantErr)
			if !ok {
				return
			}
			if tt.want == nil {
				if s != nil {
					t.Fatalf("got step %v, want none", s.Fields())
				}
				return
			}
			if s == nil {
				t.Fatal("got no step")
			}
			if s.Kind() != "echo" {
				t.Errorf("Kind() = %q", s.Kind())
			}
			if !reflect.DeepEqual(s.Fields(), tt.want) {
				t.Fatalf("Fields() = %v, want %v", s.Fields(), tt.want)
			}
		})
	}
}

func TestExecuteEcho(t *testing.T) {
	s, err := plan(t, `echo: "[bot] "`, &Data{Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	calls, err := execute(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []call{{Method: "SendMessage", To: testTo, Msg: &messenger.Message{Text: "[bot] hello"}}}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls:\n got %+v\nwant %+v", calls, want)
	}
	_, err = execute(t, s, map[string]error{"SendMessage": errGraph})
	if !errors.Is(err, errGraph) {
		t.Fatalf("error %v does not wrap the platform's", err)
	}
	mustContain(t, err, "echo: ")
}
