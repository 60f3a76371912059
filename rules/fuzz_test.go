package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
)

// FuzzParse checks that no input makes Parse panic, that a refused file
// always says where and why, and that an accepted file can be evaluated.
// Seeds: testdata/fuzz/FuzzParse plus every good, bad and example file.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad", "../examples"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, path := range files {
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T, want *Errors: %v", err, err)
			}
			if len(errs.List) == 0 {
				t.Fatal("*Errors with no messages")
			}
			for _, e := range errs.List {
				if e.Line < 1 || e.Column < 1 || strings.TrimSpace(e.Msg) == "" {
					t.Fatalf("message without a position or text: %+v", e)
				}
			}
			return
		}
		if file.Set == nil || file.RuleCount != len(file.Set.Rules()) || file.RuleCount == 0 {
			t.Fatalf("accepted file with Set %v and RuleCount %d", file.Set, file.RuleCount)
		}
		now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
		for _, ev := range []*engine.Event{
			{Kind: engine.KindMessage, Text: string(data[:min(len(data), 64)])},
			{Kind: engine.KindMessage, Text: "hello", QuickReply: "YES", HasQuickReply: true, Attachments: []string{"image"}},
			{Kind: engine.KindPostback, Payload: "TALK_TO_AGENT"},
			{Kind: engine.KindPassThreadControl, Metadata: "m"},
			{Kind: engine.KindMessage, Text: "agent", Standby: true},
		} {
			in := engine.Input{Event: ev, Now: now}
			a, b := file.Set.Evaluate(in), file.Set.Explain(in)
			if len(a.Fired) != len(b.Fired) {
				t.Fatalf("Evaluate fired %d rules, Explain %d", len(a.Fired), len(b.Fired))
			}
		}
	})
}
