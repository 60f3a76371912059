package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules"
)

// phraseRules returns a rules file of n phrase rules ("phrase number K")
// followed by a catch-all echo.
func phraseRules(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\napps:\n  zendesk: 200646160103180\nrules:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: rule-%d\n    match:\n      text: [\"phrase number %d\", \"other phrase %d\"]\n    do:\n      - reply: \"Answer %d\"\n", i, i, i, i)
	}
	b.WriteString("  - name: echo\n    do:\n      - echo: \"[bot] \"\n")
	return []byte(b.String())
}

func benchEvaluate(b *testing.B, n int) {
	f, err := rules.Parse("bench.yaml", phraseRules(n))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for _, bc := range []struct {
		name, text, want string
	}{
		{"middle", fmt.Sprintf("  Phrase NUMBER %d! ", n/2), fmt.Sprintf("rule-%d", n/2)},
		{"none", "Hello there, is anybody here?", "echo"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := engine.Input{Event: &engine.Event{Kind: engine.KindMessage, Text: bc.text, SenderID: "1", PageID: "2"}, Now: now}
			if d := f.Set.Evaluate(in); len(d.Fired) != 1 || d.Fired[0].Rule.Name != bc.want {
				b.Fatalf("fired %v, want %s", d.Fired, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				f.Set.Evaluate(in)
			}
		})
	}
}

// BenchmarkEvaluate10Rules evaluates a message against 9 phrase rules and a
// catch-all.
func BenchmarkEvaluate10Rules(b *testing.B) { benchEvaluate(b, 9) }

// BenchmarkEvaluate10000Rules evaluates a message against 10,000 phrase
// rules and a catch-all: the index keeps it close to the 10-rule cost.
func BenchmarkEvaluate10000Rules(b *testing.B) { benchEvaluate(b, 10000) }
