package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/engine"
)

// largeFile returns a file of n rules of every kind; with broken set, every
// 100th rule has a bad regex and the last rule repeats the first one's name.
func largeFile(n int, broken bool) (string, []string) {
	var b strings.Builder
	var want []string
	b.WriteString("version: 1\napps: {zendesk: 200646160103180}\nvars: {brand: Acme}\nrules:\n")
	line := 5
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("r%d", i)
		if broken && i == n-1 {
			name = "r0"
			want = append(want, fmt.Sprintf("large.yaml:%d:11: rule \"r0\": the name is already used by the rule on line 5, expected a unique name", line))
		}
		fmt.Fprintf(&b, "  - name: %s\n", name)
		switch i % 6 {
		case 0:
			fmt.Fprintf(&b, "    match: {text: [\"phrase %d\", \"other %d\"]}\n", i, i)
		case 1:
			fmt.Fprintf(&b, "    match: {postback: P%d}\n", i)
		case 2:
			fmt.Fprintf(&b, "    match: {quick_reply: Q%d}\n", i)
		case 3:
			if broken && i%100 == 3 {
				fmt.Fprintf(&b, "    match: {regex: 'x(%d'}\n", i)
				want = append(want, fmt.Sprintf("large.yaml:%d:21: rule %q: match.regex: missing closing ) in `x(%d`, expected an RE2 regular expression", line+1, name, i))
			} else {
				fmt.Fprintf(&b, "    match: {regex: 'x(?P<n>%d)'}\n", i)
			}
		case 4:
			fmt.Fprintf(&b, "    match: {contains: word%d, attachment: image}\n", i)
		case 5:
			fmt.Fprintf(&b, "    when: 'text == \"w%d\"'\n", i)
		}
		fmt.Fprintf(&b, "    do: [reply: \"{{ .Vars.brand }} %d\"]\n", i)
		line += 3
	}
	return b.String(), want
}

// TestLargeFile compiles files big enough to be split across CPUs and
// checks that rules keep their order and mistakes are all reported.
func TestLargeFile(t *testing.T) {
	const n = 1500
	src, _ := largeFile(n, false)
	f, err := Parse("large.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.RuleCount != n {
		t.Fatalf("RuleCount = %d", f.RuleCount)
	}
	for i, r := range f.Set.Rules() {
		if r.Name != fmt.Sprintf("r%d", i) || r.Line != 5+3*i {
			t.Fatalf("rule %d is %s on line %d", i, r.Name, r.Line)
		}
	}
	for _, tc := range []struct {
		ev   *engine.Event
		want string
	}{
		{message("Phrase 1194!"), "r1194"},
		{&engine.Event{Kind: engine.KindPostback, Payload: "P1195"}, "r1195"},
		{&engine.Event{Kind: engine.KindMessage, QuickReply: "Q8", HasQuickReply: true}, "r8"},
		{message("x1497"), "r1497"},
		{message("w1499"), "r1499"},
	} {
		d := f.Set.Evaluate(engine.Input{Event: tc.ev})
		if len(d.Fired) != 1 || d.Fired[0].Rule.Name != tc.want {
			t.Errorf("%+v fired %v, want %s", tc.ev, fired(d), tc.want)
		}
	}

	src, want := largeFile(n, true)
	_, err = Parse("large.yaml", []byte(src))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want *Errors", err)
	}
	if got := errs.Lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %d messages:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
}
