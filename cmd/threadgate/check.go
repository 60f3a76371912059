package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/threadgate/threadgate/rules"
)

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: threadgate check PATH...\n\nValidates rules files and prints every error as PATH:LINE:COL: message.")
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
	for _, path := range fs.Args() {
		f, err := rules.Load(path)
		if err != nil {
			code = exitFailed
			printRulesError(stderr, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok, %d rules\n", path, len(f.Set.Rules))
	}
	return code
}

// printRulesError prints every positioned error on its own line.
func printRulesError(w io.Writer, err error) {
	var re *rules.Errors
	if errors.As(err, &re) {
		for _, l := range re.Lines() {
			fmt.Fprintln(w, l)
		}
		return
	}
	fmt.Fprintln(w, err)
}
