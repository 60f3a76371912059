package actions

import "testing"

func TestDecodeReleaseThreadControl(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "empty mapping", src: `release_thread_control: {}`},
		{name: "null", src: `release_thread_control:`},
		{name: "metadata", src: `release_thread_control: {metadata: x}`, want: []string{
			"1:26: release_thread_control: takes no keys, write release_thread_control: {}",
		}},
		{name: "string", src: `release_thread_control: now`, want: []string{
			"1:25: release_thread_control: expected {}, got a string",
		}},
		{name: "list", src: `release_thread_control: []`, want: []string{
			"1:25: release_thread_control: expected {}, got a list",
		}},
	})
}

func TestReleaseThreadControl(t *testing.T) {
	runControlCases(t, "release_thread_control", []controlCase{
		{
			name:      "empty",
			src:       `release_thread_control: {}`,
			d:         &Data{Text: "bye"},
			want:      map[string]any{},
			wantCalls: []call{{Method: "ReleaseThreadControl", To: testTo}},
		},
	})
}
