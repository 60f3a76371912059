package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/threadgate/threadgate/reload"
	"github.com/threadgate/threadgate/rules"
)

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	strict := fs.Bool("strict", false, "exit 1 when there are warnings, too")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: threadgate check [--strict] PATH...\n\nValidates rules files and prints every error as PATH:LINE:COL: message. Runs the rule tests\nof each file (its tests: key and NAME.test.yaml beside it), as serve does before it accepts\na file, and warns of likely mistakes (PATH:LINE:COL: warning: ...): rules that can never\nfire, phrases listed twice, one-letter contains phrases, apps no rule uses, profile\npostbacks no rule answers, postbacks a rule waits for that nothing sends, a menu without\nget_started, commands beside a menu. A PATH named NAME.test.yaml stands for NAME.yaml,\nchecked with it.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	code := exitOK
	now := time.Now()
	for _, path := range besideTests(fs.Args()) {
		if r, ok := testedBy(path); ok {
			path = r // a test file alone: check the rules file it sits beside, with it
		}
		src := pickRules(path, true, false)
		// One read and one parse of each file: the tests and lint use the
		// parsed file.
		c, err := reload.Load(src.Path, src.Read, now)
		if err != nil {
			code = exitFailed
			printRulesError(stderr, err)
			continue
		}
		warnings := rules.Lint(c.File)
		for _, w := range warnings {
			fmt.Fprintln(stdout, w)
		}
		if *strict && len(warnings) > 0 {
			code = exitFailed
		}
		fmt.Fprintln(stdout, checkSummary(path, c, len(warnings)))
	}
	return code
}

// printRulesError prints every positioned error on its own line, of the
// rules file and of its test file.
func printRulesError(w io.Writer, err error) {
	for _, l := range rules.ErrorLines(err) {
		fmt.Fprintln(w, l)
	}
}

// checkSummary is check's line for a file that is valid.
func checkSummary(path string, c *reload.Checked, warnings int) string {
	s := fmt.Sprintf("%s: ok, %d rules", path, c.File.RuleCount)
	if c.Tests > 0 {
		s += fmt.Sprintf(", %s passed", plural(c.Tests, "rule test", "rule tests"))
	}
	if warnings > 0 {
		s += ", " + plural(warnings, "warning", "warnings")
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
