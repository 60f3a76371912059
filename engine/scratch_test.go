package engine_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules"
)

// scratchRules fires a rule whose regex has a group for "order N", and a
// catch-all whose reply prints the groups it reads (none).
const scratchRules = `version: 1
rules:
  - name: order
    match: {regex: '^order (?P<n>\d+)$'}
    do:
      - reply: "order {{ .Groups.n }} for {{ .SenderID }}: {{ .Text }}"
  - name: other
    do:
      - reply: "groups {{ .Groups }} for {{ .SenderID }}: {{ .Text }}"
`

func replyText(t *testing.T, d engine.Decision) string {
	t.Helper()
	if len(d.Fired) != 1 || len(d.Fired[0].Steps) != 1 {
		t.Fatalf("fired %+v, want one rule with one step", d.Fired)
	}
	return fmt.Sprint(d.Fired[0].Steps[0].Fields()["text"])
}

// TestEvaluationsShareNothing: the scratch an evaluation works with is
// reused by the next one, which must see none of it: not its groups, text
// or sender, not even when evaluations run at once.
func TestEvaluationsShareNothing(t *testing.T) {
	f, err := rules.Parse("scratch.yaml", []byte(scratchRules))
	if err != nil {
		t.Fatal(err)
	}
	msg := func(sender, text string) engine.Input {
		return engine.Input{Event: &engine.Event{Kind: engine.KindMessage, SenderID: sender, PageID: "p", Text: text}}
	}
	if got := replyText(t, f.Set.Evaluate(msg("u1", "order 12"))); got != "order 12 for u1: order 12" {
		t.Errorf("first = %q", got)
	}
	d := f.Set.Evaluate(msg("u2", "hello"))
	if got := replyText(t, d); got != "groups map[] for u2: hello" {
		t.Errorf("after a regex rule = %q, want no groups", got)
	}
	if d.Fired[0].Groups != nil {
		t.Errorf("Firing.Groups = %v, want nil for a rule without a regex", d.Fired[0].Groups)
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				sender := fmt.Sprintf("u%d-%d", g, i)
				want := fmt.Sprintf("order %d for %s: order %d", i, sender, i)
				text := fmt.Sprintf("order %d", i)
				if i%2 == 1 {
					text = fmt.Sprintf("hi %d", i)
					want = fmt.Sprintf("groups map[] for %s: hi %d", sender, i)
				}
				if got := replyText(t, f.Set.Evaluate(msg(sender, text))); got != want {
					t.Errorf("got %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestEvaluateAllocations counts the allocations of the seed's echo rule
// on a message: the first firing with its steps, and the echo's text and
// step. A regression shows as a count, not a time.
func TestEvaluateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items: the count varies")
	}
	f, err := rules.Parse("echo.yaml", []byte("version: 1\nrules:\n  - name: echo\n    do: [echo: \"[bot] \"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := engine.Input{Event: &engine.Event{Kind: engine.KindMessage, SenderID: "u", PageID: "p", Text: "hello there"}}
	if got := replyText(t, f.Set.Evaluate(in)); got != "[bot] hello there" {
		t.Fatalf("echo = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { f.Set.Evaluate(in) }); n > 3 {
		t.Errorf("Evaluate made %v allocations, want at most 3", n)
	}
}
