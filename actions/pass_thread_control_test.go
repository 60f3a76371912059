package actions

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodePassThreadControl(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "short form", src: `pass_thread_control: zendesk`},
		{name: "mapping", src: `pass_thread_control: {target: zendesk, metadata: "asked: {{ .Text }}"}`},
		{name: "target only", src: `pass_thread_control: {target: page_inbox}`},
		{name: "unknown app", src: `pass_thread_control: zendsk`, want: []string{`1:22: pass_thread_control: unknown app "zendsk", expected one of: page_inbox, zendesk`}},
		{name: "unknown target", src: `pass_thread_control: {target: nope}`, want: []string{`1:31: pass_thread_control.target: unknown app "nope", expected one of: page_inbox, zendesk`}},
		{name: "raw app ID", src: `pass_thread_control: 200646160103180`, want: []string{"1:22: pass_thread_control: expected the name of an app under apps, got a number (rules name apps, they never hold raw app IDs)"}},
		{name: "null", src: `pass_thread_control:`, want: []string{"1:21: pass_thread_control: expected a string, got nothing (null)"}},
		{name: "list", src: `pass_thread_control: [zendesk]`, want: []string{"1:22: pass_thread_control: expected the name of an app, or a mapping with target and metadata, got a list"}},
		{name: "every mistake", src: `
pass_thread_control:
  targte: zendesk
  metadata: "{{ .Nope }}"
`, want: []string{
			"3:3: pass_thread_control: target is required (the name of an app under apps)",
			`3:3: pass_thread_control: unknown key "targte", expected one of: target, metadata`,
			"4:17: pass_thread_control.metadata: unknown field .Nope, a template can read " + fieldList,
		}},
		{name: "metadata too long", src: `pass_thread_control: {target: zendesk, metadata: "` + strings.Repeat("m", 1001) + `"}`, want: []string{
			"1:50: pass_thread_control.metadata: the text is 1001 characters long, the limit is 1000",
		}},
	})
}

func TestDecodePassThreadControlWithoutApps(t *testing.T) {
	for _, c := range []*Compiler{nil, {}} {
		_, errs := decode(t, `pass_thread_control: zendesk`, c)
		want := []string{`1:22: pass_thread_control: unknown app "zendesk", no apps are defined (add it under apps: with its app ID)`}
		if !reflect.DeepEqual(errs, want) {
			t.Fatalf("got %q, want %q", errs, want)
		}
	}
}

func TestPassThreadControl(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		d         *Data
		want      map[string]any
		wantCalls []call
		wantErr   string
	}{
		{
			name:      "short form",
			src:       `pass_thread_control: zendesk`,
			d:         &Data{Text: "chat with agent"},
			want:      map[string]any{"target": "zendesk", "app_id": "200646160103180", "metadata": ""},
			wantCalls: []call{{Method: "PassThreadControl", To: testTo, Arg: "200646160103180"}},
		},
		{
			name:      "metadata",
			src:       `pass_thread_control: {target: page_inbox, metadata: "asked: {{ .Text }}"}`,
			d:         &Data{Text: "chat with agent"},
			want:      map[string]any{"target": "page_inbox", "app_id": "263902037430900", "metadata": "asked: chat with agent"},
			wantCalls: []call{{Method: "PassThreadControl", To: testTo, Arg: "263902037430900", Meta: "asked: chat with agent"}},
		},
		{
			name:    "metadata over the limit",
			src:     `pass_thread_control: {target: zendesk, metadata: "{{ .Text }}"}`,
			d:       &Data{Text: strings.Repeat("x", 1001)},
			wantErr: "pass_thread_control.metadata: the rendered text is 1001 characters long, the limit is 1000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := planCase(t, tt.src, tt.d, tt.wantErr)
			if !ok {
				return
			}
			if s.Kind() != "pass_thread_control" {
				t.Errorf("Kind() = %q", s.Kind())
			}
			if !reflect.DeepEqual(s.Fields(), tt.want) {
				t.Errorf("Fields() = %v, want %v", s.Fields(), tt.want)
			}
			calls, err := execute(t, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(calls, tt.wantCalls) {
				t.Fatalf("calls:\n got %+v\nwant %+v", calls, tt.wantCalls)
			}
		})
	}
}

func TestPassThreadControlError(t *testing.T) {
	s, err := plan(t, `pass_thread_control: zendesk`, &Data{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = execute(t, s, map[string]error{"PassThreadControl": errGraph})
	if !errors.Is(err, errGraph) {
		t.Fatalf("error %v does not wrap the platform's", err)
	}
	mustContain(t, err, "pass_thread_control to zendesk: ")
}
