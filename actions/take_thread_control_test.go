package actions

import (
	"strings"
	"testing"
)

func TestDecodeTakeThreadControl(t *testing.T) {
	runDecodeCases(t, metadataDecodeCases("take_thread_control"))
}

func TestTakeThreadControl(t *testing.T) {
	runControlCases(t, "take_thread_control", []controlCase{
		{
			name:      "no metadata",
			src:       `take_thread_control: {}`,
			d:         &Data{},
			want:      map[string]any{"metadata": ""},
			wantCalls: []call{{Method: "TakeThreadControl", To: testTo}},
		},
		{
			name:      "null",
			src:       `take_thread_control:`,
			d:         &Data{},
			want:      map[string]any{"metadata": ""},
			wantCalls: []call{{Method: "TakeThreadControl", To: testTo}},
		},
		{
			name:      "metadata",
			src:       `take_thread_control: {metadata: "bot resumes ({{ .Rule }})"}`,
			d:         &Data{Rule: "agent-timeout"},
			want:      map[string]any{"metadata": "bot resumes (agent-timeout)"},
			wantCalls: []call{{Method: "TakeThreadControl", To: testTo, Arg: "bot resumes (agent-timeout)"}},
		},
		{
			name:    "metadata over the limit",
			src:     `take_thread_control: {metadata: "{{ .Text }}!"}`,
			d:       &Data{Text: strings.Repeat("x", 1000)},
			wantErr: "take_thread_control.metadata: the rendered text is 1001 characters long, the limit is 1000",
		},
	})
}
