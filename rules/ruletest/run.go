package ruletest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
)

// Result is the outcome of one case.
type Result struct {
	// Case is the case that ran.
	Case *Case
	// Fired names the rules that fired, in order.
	Fired []string
	// Diffs says what differed from the expectation, one item per
	// difference; empty when the case passed.
	Diffs []string
}

// Passed reports whether the case passed.
func (r *Result) Passed() bool { return len(r.Diffs) == 0 }

// Summary describes a failed case on one line: its name and every
// difference, e.g. `case "button": rule: got "echo", want "agent-button"`.
func (r *Result) Summary() string {
	if r.Passed() {
		return fmt.Sprintf("case %q: ok", r.Case.Name)
	}
	return fmt.Sprintf("case %q: %s", r.Case.Name, strings.Join(r.Diffs, "; "))
}

// Run runs every case against the rule set; now is the clock of the cases
// that give no `at`. The results are in the cases' order.
func Run(set *engine.Set, cases []*Case, now time.Time) []Result {
	out := make([]Result, len(cases))
	for i, c := range cases {
		out[i] = RunCase(set, c, now)
	}
	return out
}

// RunCase runs one case against the rule set.
func RunCase(set *engine.Set, c *Case, now time.Time) Result {
	res := Result{Case: c}
	d := set.Evaluate(engineInput(set, &c.Input, now))
	var steps []actions.Step
	for _, f := range d.Fired {
		res.Fired = append(res.Fired, f.Rule.Name)
		steps = append(steps, f.Steps...)
		for _, err := range f.Errors {
			res.Diffs = append(res.Diffs, "an action failed to render: "+err.Error())
		}
	}
	if want := c.Expect.Rules; want != nil {
		for _, name := range want {
			if set.Rule(name) == nil {
				res.Diffs = append(res.Diffs, fmt.Sprintf("rule: the rules file has no rule named %q", name))
			}
		}
		switch {
		case c.Expect.Exact && !equal(res.Fired, want):
			res.Diffs = append(res.Diffs, fmt.Sprintf("rule: got %s, want %s", names(res.Fired), names(want)))
		case !c.Expect.Exact && !contains(res.Fired, want[0]):
			res.Diffs = append(res.Diffs, fmt.Sprintf("rule: got %s, want %s", names(res.Fired), names(want)))
		}
	}
	if c.Expect.HasActions {
		res.Diffs = append(res.Diffs, actions.MatchSteps(steps, c.Expect.Actions)...)
	}
	if !res.Passed() {
		for _, we := range d.WhenErrors {
			res.Diffs = append(res.Diffs, "note: "+we.Error()+" (counted as false)")
		}
	}
	return res
}

// names lists rule names for a message: "a", "a" then "b", or no rule.
func names(list []string) string {
	if len(list) == 0 {
		return "no rule"
	}
	q := make([]string, len(list))
	for i, n := range list {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, " then ")
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Count returns how many results passed and how many failed.
func Count(results []Result) (passed, failed int) {
	for i := range results {
		if results[i].Passed() {
			passed++
		} else {
			failed++
		}
	}
	return passed, failed
}
