package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/threadgate/threadgate/rules"
)

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	strict := fs.Bool("strict", false, "exit 1 when there are warnings, too")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: threadgate check [--strict] PATH...\n\nValidates rules files and prints every error as PATH:LINE:COL: message. Runs the rule tests\nof each file (its tests: key and NAME.test.yaml beside it), as serve does before it accepts\na file, and warns of likely mistakes (PATH:LINE:COL: warning: ...): rules that can never\nfire, phrases listed twice, one-letter contains phrases, apps no rule uses.")
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
	for _, path := range fs.Args() {
		c, err := rules.LoadChecked(path, now)
		if err != nil {
			code = exitFailed
			printRulesError(stderr, err)
			continue
		}
		warnings, err := lintFile(path)
		if err != nil {
			code = exitFailed
			printRulesError(stderr, err)
			continue
		}
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
