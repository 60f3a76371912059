package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/threadgate/threadgate/reload"
	"github.com/threadgate/threadgate/rules"
	"gopkg.in/yaml.v3"
)

// testRules runs `threadgate test PATH...`: each PATH is a rule-test file
// (rules: FILE and cases:) or a rules file, whose `tests:` cases and those
// of NAME.test.yaml beside it run. It prints one line per failing case and
// a final "N passed, N failed" line, and exits 1 when a case failed or a
// file could not be read.
func testRules(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	fset.SetOutput(stderr)
	verbose := fset.Bool("v", false, "also print the cases that pass")
	fset.Usage = func() {
		fmt.Fprintln(stderr, `usage: threadgate test [-v] PATH...

Runs rule tests. PATH is a test file (rules: FILE and cases:), or a rules file:
then the cases under its tests: key and those of NAME.test.yaml beside it run
(a NAME.test.yaml given with NAME.yaml, as by a glob, runs once).
Prints one line per failing case, PATH:LINE:COL: case "NAME": what differed,
and a final line "N passed, N failed". Exit 0 when every case passed, 1 when not.`)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return exitUsage
	}
	if fset.NArg() == 0 {
		fset.Usage()
		return exitUsage
	}
	now := time.Now()
	passed, failed := 0, 0
	broken := false
	for _, path := range besideTests(fset.Args()) {
		results, err := runTestPath(path, now)
		if err != nil {
			broken = true
			printRulesError(stderr, err)
			continue
		}
		for i := range results {
			r := &results[i]
			if r.Passed() {
				passed++
				if *verbose {
					fmt.Fprintln(stdout, r.Line())
				}
				continue
			}
			failed++
			fmt.Fprintln(stdout, r.Line())
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 || broken {
		return exitFailed
	}
	return exitOK
}

// runTestPath runs the cases of one PATH of `threadgate test`: a rules
// file with its own cases and those of the test file beside it, or a test
// file's cases against the rules file it names.
func runTestPath(path string, now time.Time) ([]reload.TestResult, error) {
	src := pickRules(path, true, false)
	files, err := reload.Read(src.Path, src.Read)
	if err != nil {
		// PATH may be a test file: do not call it a rules file.
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == path {
			return nil, pe
		}
		return nil, err
	}
	if isRulesFile(files.Data) {
		f, tf, err := reload.Parse(files)
		if err != nil {
			return nil, err
		}
		results := reload.RunTests(f, tf, now)
		if len(results) == 0 {
			return nil, fmt.Errorf("%s: no rule tests: add a tests: list to the file, or write %s", path, files.TestPath)
		}
		return results, nil
	}
	tf, err := rules.ParseTestFile(path, files.Data)
	if err != nil {
		return nil, err
	}
	rulesPath := tf.RulesPath
	if rulesPath == "" {
		r, ok := testedBy(path)
		if !ok {
			return nil, fmt.Errorf("%s:1:1: rules: missing, expected the rules file to test, such as rules: rules.yaml", path)
		}
		rulesPath = r
	}
	f, err := rules.Load(rulesPath)
	if err != nil {
		return nil, err
	}
	return reload.RunCases(f, tf, now), nil
}

// isRulesFile reports whether data looks like a rules file (a mapping with
// version and no cases) rather than a test file.
func isRulesFile(data []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return false
	}
	root := doc.Content[0]
	hasVersion := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "cases":
			return false
		case "version":
			hasVersion = true
		}
	}
	return hasVersion
}
