package gateway

import (
	"testing"

	"github.com/threadgate/threadgate/rules"
)

// TestSettingsKeepTranscriptOnlyWhenRead: the conversation keeps the
// user's messages only when a template of the rule set in force reads
// .Transcript.
func TestSettingsKeepTranscriptOnlyWhenRead(t *testing.T) {
	t.Parallel()
	g := &Gateway{}
	if s := g.settings(nil); s.KeepTranscript || s.RulesLoaded {
		t.Errorf("no rules loaded: settings %+v, want no transcript kept", s)
	}
	for _, tt := range []struct {
		name string
		src  string
		want bool
	}{
		{"echo only", `[{name: echo, do: [echo: "> "]}]`, false},
		{"metadata reads it", `[{name: a, do: [{pass_thread_control: {target: z, metadata: "{{ .Transcript | join \" / \" }}"}}]}, {name: echo, do: [echo: "> "]}]`, true},
	} {
		f, err := rules.Parse("s.yaml", []byte("version: 1\napps: {z: 1}\nrules: "+tt.src+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := g.settings(f.Set).KeepTranscript; got != tt.want {
			t.Errorf("%s: KeepTranscript = %v, want %v", tt.name, got, tt.want)
		}
	}
}
