package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/threadgate/threadgate/examples"
	"github.com/threadgate/threadgate/reload"
	"github.com/threadgate/threadgate/rules"
)

// defaultRulesPath is the rules file serve and explain read when neither
// --rules nor THREADGATE_RULES names one.
const defaultRulesPath = "rules.yaml"

// rulesSource is the rules file a command works on: its path and how to
// read it and the test file beside it.
type rulesSource struct {
	// Path is the file's path, or examples.DefaultRulesName.
	Path string
	// Read reads it and the files beside it.
	Read reload.ReadFunc
	// Embedded is true when the embedded example rules stand in for a
	// rules.yaml that does not exist.
	Embedded bool
}

// pickRules picks the rules file of serve, check, test and explain: path,
// as given by --rules, THREADGATE_RULES or a command-line argument
// (explicit), else defaultRulesPath. Where no path was given, no rules.yaml
// exists and sandbox is true (no page token is configured, as serve's
// sandbox mode), the embedded example rules (examples/rules.yaml with its
// test file) stand in; they never change.
func pickRules(path string, explicit, sandbox bool) rulesSource {
	if path == "" {
		path = defaultRulesPath
	}
	if !explicit && sandbox {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return rulesSource{Path: examples.DefaultRulesName, Read: readEmbedded, Embedded: true}
		}
	}
	return rulesSource{Path: path, Read: rules.ReadFile}
}

// readEmbedded reads the embedded example rules and their test file.
func readEmbedded(path string) ([]byte, error) {
	switch path {
	case examples.DefaultRulesName:
		return examples.DefaultRules, nil
	case rules.TestFilePath(examples.DefaultRulesName):
		return examples.DefaultTests, nil
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

// sandboxEnv reports whether serve would run in sandbox mode with this
// environment: no page token is configured.
func sandboxEnv(getenv func(string) string) bool {
	return getenv("PAGE_ACCESS_TOKEN") == "" && getenv("THREADGATE_PAGES_FILE") == ""
}

// besideTests returns the paths of check and test without the test files
// that sit beside a rules file also given (NAME.test.yaml with NAME.yaml),
// as a glob such as examples/*.yaml gives them: their cases run with that
// rules file, once.
func besideTests(paths []string) []string {
	given := make(map[string]bool, len(paths))
	for _, p := range paths {
		given[p] = true
	}
	var out []string
	for _, p := range paths {
		if r, ok := testedBy(p); ok && given[r] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// testedBy returns the rules file that a test file named NAME.test.yaml
// (NAME.test.yml) sits beside: NAME.yaml (NAME.yml).
func testedBy(path string) (string, bool) {
	for _, ext := range []string{".yaml", ".yml"} {
		if base, ok := strings.CutSuffix(path, ".test"+ext); ok {
			return base + ext, true
		}
	}
	return "", false
}
