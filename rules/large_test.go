package rules

import (
	"errors"
	"fmt"
	"os"
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
	t.Parallel()
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

// TestFileLimits checks that a file over the size or rule-count limit is
// refused quickly with a positioned error, and that ReadFile does not read
// a huge file whole.
func TestFileLimits(t *testing.T) {
	t.Parallel()
	t.Run("too many rules", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("version: 1\nrules:\n")
		for i := 0; i <= MaxRules; i++ {
			fmt.Fprintf(&b, "  - {name: r%d, do: [reply: hi]}\n", i)
		}
		_, err := Parse("many.yaml", []byte(b.String()))
		want := fmt.Sprintf("many.yaml:%d:5: rules: this is rule %d of %d, the limit is %d rules in a file", MaxRules+3, MaxRules+1, MaxRules+1, MaxRules)
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		data := []byte("version: 1\nrules:\n  - {name: a, do: [reply: hi]}\n# " + strings.Repeat("x", MaxFileBytes) + "\n")
		_, err := Parse("big.yaml", data)
		if err == nil || !strings.HasPrefix(err.Error(), "big.yaml:1:1: the file is over the limit of 8 MiB") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("ReadFile stops past the limit", func(t *testing.T) {
		t.Parallel()
		path := t.TempDir() + "/huge.yaml"
		if err := os.WriteFile(path, make([]byte, MaxFileBytes+4096), 0o644); err != nil {
			t.Fatal(err)
		}
		data, err := ReadFile(path)
		if err != nil || len(data) != MaxFileBytes+1 {
			t.Errorf("ReadFile read %d bytes, %v; want %d", len(data), err, MaxFileBytes+1)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "over the limit") {
			t.Errorf("Load of a huge file: %v", err)
		}
	})
}
