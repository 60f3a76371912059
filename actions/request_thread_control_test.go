package actions

import "testing"

func TestDecodeRequestThreadControl(t *testing.T) {
	runDecodeCases(t, metadataDecodeCases("request_thread_control"))
}

func TestRequestThreadControl(t *testing.T) {
	runControlCases(t, "request_thread_control", []controlCase{
		{
			name:      "no metadata",
			src:       `request_thread_control: {}`,
			d:         &Data{},
			want:      map[string]any{"metadata": ""},
			wantCalls: []call{{Method: "RequestThreadControl", To: testTo}},
		},
		{
			name:      "metadata",
			src:       `request_thread_control: {metadata: "user said {{ .Text }}"}`,
			d:         &Data{Text: "bot please"},
			want:      map[string]any{"metadata": "user said bot please"},
			wantCalls: []call{{Method: "RequestThreadControl", To: testTo, Arg: "user said bot please"}},
		},
	})
}
