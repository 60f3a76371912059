package reload

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/threadgate/threadgate/rules"
	"github.com/threadgate/threadgate/rules/diag"
	"github.com/threadgate/threadgate/rules/ruletest"
)

// ReadFunc reads a file; os.ReadFile is one. A missing file gives an error
// for which errors.Is(err, fs.ErrNotExist) holds.
type ReadFunc func(path string) ([]byte, error)

// Files is the content of a rules file and of the rule-test file beside it
// (rules.TestFilePath), as Read found them.
type Files struct {
	// Path is the rules file's path.
	Path string
	// Data is the rules file's content.
	Data []byte
	// TestPath is the path of the test file beside it.
	TestPath string
	// TestData is the test file's content; nil when there is none.
	TestData []byte
}

// Read reads the rules file at path and the test file beside it with read
// (os.ReadFile when nil). A missing test file is no error: TestData is nil.
// This is the one place where the two files are read, for serve, check,
// test and the Manager's poll.
func Read(path string, read ReadFunc) (*Files, error) {
	if read == nil {
		read = rules.ReadFile
	}
	data, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	f := &Files{Path: path, Data: data, TestPath: rules.TestFilePath(path)}
	f.TestData, err = read(f.TestPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read test file: %w", err)
		}
		f.TestData = nil
	}
	return f, nil
}

// Key identifies the content of both files: it changes when either
// changes, or when the test file appears or goes away.
func (f *Files) Key() string {
	h := sha256.New()
	sum := sha256.Sum256(f.Data)
	h.Write(sum[:])
	if f.TestData != nil {
		sum = sha256.Sum256(f.TestData)
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Parse parses the rules file and, when there is one, the test file beside
// it (tf is nil when there is none). A test file whose `rules:` names
// another file is a mistake. The error holds the mistakes of both files
// (see rules.ErrorLines).
func Parse(files *Files) (f *rules.File, tf *rules.TestFile, err error) {
	f, err = rules.Parse(files.Path, files.Data)
	var tErr error
	if files.TestData != nil {
		tf, tErr = rules.ParseTestFile(files.TestPath, files.TestData)
		if tErr == nil && tf.RulesPath != "" && !samePath(tf.RulesPath, files.Path) {
			tErr = &rules.Errors{Path: files.TestPath, List: diag.List{{Line: 1, Column: 1, Msg: fmt.Sprintf(
				"rules: names %s, but this file sits beside %s and tests it; remove rules: or name %s", tf.RulesPath, files.Path, filepath.Base(files.Path))}}}
		}
	}
	if err != nil || tErr != nil {
		return nil, nil, errors.Join(err, tErr)
	}
	return f, tf, nil
}

// samePath reports whether two paths name the same file.
func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// Checked is a rules file that loaded and whose rule tests all passed: what
// the Manager puts in force.
type Checked struct {
	// File is the rules file.
	File *rules.File
	// TestFile is the test file beside it, nil when there is none.
	TestFile *rules.TestFile
	// Tests is the number of cases that ran (and passed).
	Tests int
}

// Check parses the files and runs every rule test, the file's own (its
// `tests:` key) and the test file's; cases without `at` run at now. It
// fails like an invalid file when either file has mistakes or a case fails:
// a failed case is an error at the case's position.
func Check(files *Files, now time.Time) (*Checked, error) {
	f, tf, err := Parse(files)
	if err != nil {
		return nil, err
	}
	results := RunTests(f, tf, now)
	if err := testFailures(results); err != nil {
		return nil, err
	}
	return &Checked{File: f, TestFile: tf, Tests: len(results)}, nil
}

// Load reads the rules file at path and the test file beside it with read
// (os.ReadFile when nil) and checks them (Read, then Check): the rules file
// comes back only when it is valid and every rule test passes, the way
// serve accepts a file.
func Load(path string, read ReadFunc, now time.Time) (*Checked, error) {
	files, err := Read(path, read)
	if err != nil {
		return nil, err
	}
	return Check(files, now)
}

// TestResult is the result of one rule-test case with the path of the file
// that holds it.
type TestResult struct {
	// Path is the file that holds the case.
	Path string
	ruletest.Result
}

// Line describes a case as `PATH:LINE:COL: case "NAME": what differed` (or
// `ok`).
func (r *TestResult) Line() string {
	return fmt.Sprintf("%s:%d:%d: %s", r.Path, r.Case.Line, r.Case.Column, r.Summary())
}

// RunTests runs the file's own cases (its `tests:` key) and then those of
// the test file tf, if not nil, against the file's rules; now is the clock
// of the cases that give no `at`.
func RunTests(f *rules.File, tf *rules.TestFile, now time.Time) []TestResult {
	var out []TestResult
	for _, r := range ruletest.Run(f.Set, f.Tests, now) {
		out = append(out, TestResult{Path: f.Path, Result: r})
	}
	if tf != nil {
		out = append(out, RunCases(f, tf, now)...)
	}
	return out
}

// RunCases runs the cases of the test file tf, and only those, against the
// rules of f.
func RunCases(f *rules.File, tf *rules.TestFile, now time.Time) []TestResult {
	var out []TestResult
	for _, r := range ruletest.Run(f.Set, tf.Cases, now) {
		out = append(out, TestResult{Path: tf.Path, Result: r})
	}
	return out
}

// testFailures turns failed cases into *rules.Errors, one per file, joined;
// nil when every case passed.
func testFailures(results []TestResult) error {
	byPath := map[string]*rules.Errors{}
	var order []string
	for i := range results {
		r := &results[i]
		if r.Passed() {
			continue
		}
		e := byPath[r.Path]
		if e == nil {
			e = &rules.Errors{Path: r.Path}
			byPath[r.Path] = e
			order = append(order, r.Path)
		}
		e.List.Add(&diag.Error{Line: r.Case.Line, Column: r.Case.Column, Msg: "rule test failed: " + r.Summary()})
	}
	var errs []error
	for _, p := range order {
		errs = append(errs, byPath[p])
	}
	return errors.Join(errs...)
}
