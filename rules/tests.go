package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/rules/diag"
	"github.com/threadgate/threadgate/rules/ruletest"
	"gopkg.in/yaml.v3"
)

// The `tests:` key of a rules file holds rule tests that must pass before
// the file is accepted, by `check`, at start and at every reload.
func init() {
	topKeys = append(topKeys, topKey{
		Name:   "tests",
		Doc:    "Rule tests that must pass before this file is accepted (at start, at every reload and by threadgate check): each case gives an event and the rule or actions that must follow.",
		Schema: map[string]any{"type": "array", "minItems": 1, "items": caseSchema()},
		Decode: func(value *yaml.Node, _ *File) (any, diag.List) {
			return ruletest.DecodeCases(value, "tests")
		},
	})
}

// Tests returns the cases under the file's `tests:` key (none when it has
// no such key).
func (f *File) Tests() []*ruletest.Case {
	cases, _ := f.Extra["tests"].([]*ruletest.Case)
	return cases
}

// TestFile is a rule-test file: the rules file it tests and its cases.
type TestFile struct {
	// Path is the test file's path.
	Path string
	// RulesPath is the rules file named by its `rules:` key, relative to
	// the directory of the test file; "" when the key is absent.
	RulesPath string
	// Cases are the cases, in file order.
	Cases []*ruletest.Case
}

// testFileKeys are the top-level keys of a test file.
var testFileKeys = []string{"rules", "cases"}

// ParseTestFile parses a rule-test file held in data. On mistakes it
// returns *Errors holding all of them, positioned in path.
func ParseTestFile(path string, data []byte) (*TestFile, error) {
	p := &parser{src: newSource(data)}
	tf := &TestFile{Path: path}
	root := p.document(data)
	if root != nil {
		p.testFile(diag.Resolve(root), tf)
	}
	if len(p.errs) > 0 {
		p.errs.Sort()
		return nil, &Errors{Path: path, List: p.errs}
	}
	return tf, nil
}

// LoadTestFile reads and parses the rule-test file at path.
func LoadTestFile(path string) (*TestFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read test file: %w", err)
	}
	return ParseTestFile(path, data)
}

func (p *parser) testFile(root *yaml.Node, tf *TestFile) {
	if root.Kind != yaml.MappingNode {
		p.errs.Add(diag.At(root, "a test file must be a mapping with rules: FILE and cases, got %s", diag.KindName(root)))
		return
	}
	fields, errs := diag.Fields(root, "top level", testFileKeys)
	p.errs.Add(errs...)
	hasCases := false
	for _, fl := range fields {
		switch fl.Key.Value {
		case "rules":
			s, err := diag.String(fl.Value, "rules")
			switch {
			case err != nil:
				p.errs.Add(diag.At(fl.Value, "rules: expected the path of the rules file, relative to this file, such as rules.yaml"))
			case strings.TrimSpace(s) == "":
				p.errs.Add(diag.At(fl.Value, "rules: the path is empty, expected the path of the rules file, relative to this file, such as rules.yaml"))
			default:
				tf.RulesPath = s
				if !filepath.IsAbs(s) {
					tf.RulesPath = filepath.Join(filepath.Dir(tf.Path), s)
				}
			}
		case "cases":
			hasCases = true
			cases, errs := ruletest.DecodeCases(fl.Value, "cases")
			p.errs.Add(errs...)
			tf.Cases = cases
		}
	}
	if !hasCases {
		p.errs.Add(diag.At(root, "cases: missing, expected a list of cases, each with a name, an event such as message: hello, and expect"))
	}
}

// TestFilePath returns the path of the test file that goes with a rules
// file: NAME.test.yaml beside NAME.yaml (NAME.test.yml beside NAME.yml).
func TestFilePath(rulesPath string) string {
	ext := filepath.Ext(rulesPath)
	switch ext {
	case ".yaml", ".yml":
		return strings.TrimSuffix(rulesPath, ext) + ".test" + ext
	}
	return rulesPath + ".test.yaml"
}

// TestResult is the result of one case with the path of its file.
type TestResult struct {
	// Path is the file that holds the case.
	Path string
	ruletest.Result
}

// Line describes a failed case as `PATH:LINE:COL: case "NAME": what
// differed`.
func (r *TestResult) Line() string {
	return fmt.Sprintf("%s:%d:%d: %s", r.Path, r.Case.Line, r.Case.Column, r.Summary())
}

// RunTests runs the file's own cases (its `tests:` key) and then those of
// the test file tf, if not nil, against the file's rules; now is the clock
// of the cases that give no `at`.
func RunTests(f *File, tf *TestFile, now time.Time) []TestResult {
	var out []TestResult
	for _, r := range ruletest.Run(f.Set, f.Tests(), now) {
		out = append(out, TestResult{Path: f.Path, Result: r})
	}
	if tf != nil {
		for _, r := range ruletest.Run(f.Set, tf.Cases, now) {
			out = append(out, TestResult{Path: tf.Path, Result: r})
		}
	}
	return out
}

// testFailures turns failed cases into *Errors, one per file, joined; nil
// when every case passed.
func testFailures(results []TestResult) error {
	byPath := map[string]*Errors{}
	var order []string
	for i := range results {
		r := &results[i]
		if r.Passed() {
			continue
		}
		e := byPath[r.Path]
		if e == nil {
			e = &Errors{Path: r.Path}
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

// Checked is a rules file that loaded and whose rule tests all passed.
type Checked struct {
	// File is the rules file.
	File *File
	// TestFile is the test file beside it, nil when there is none.
	TestFile *TestFile
	// Tests is the number of cases that ran (and passed).
	Tests int
}

// check parses a rules file and the test file beside it (testData nil when
// there is none) and runs every rule test. It fails like an invalid file
// when the test file has mistakes or a case fails.
func check(path string, data []byte, testPath string, testData []byte, now time.Time) (*Checked, error) {
	f, err := Parse(path, data)
	var tf *TestFile
	var tErr error
	if testData != nil {
		tf, tErr = ParseTestFile(testPath, testData)
		if tErr == nil && tf.RulesPath != "" && !samePath(tf.RulesPath, path) {
			tErr = &Errors{Path: testPath, List: diag.List{{Line: 1, Column: 1, Msg: fmt.Sprintf(
				"rules: names %s, but this file sits beside %s and tests it; remove rules: or name %s", tf.RulesPath, path, filepath.Base(path))}}}
		}
	}
	if err != nil || tErr != nil {
		return nil, errors.Join(err, tErr)
	}
	results := RunTests(f, tf, now)
	if err := testFailures(results); err != nil {
		return nil, err
	}
	return &Checked{File: f, TestFile: tf, Tests: len(results)}, nil
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

// LoadChecked reads the rules file at path and the test file beside it
// (TestFilePath), if there is one, and returns the file only when it is
// valid and every rule test passes, the way serve accepts a file. Cases
// without `at` run at now.
func LoadChecked(path string, now time.Time) (*Checked, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	testPath := TestFilePath(path)
	testData, err := os.ReadFile(testPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read test file: %w", err)
		}
		testData = nil
	}
	return check(path, data, testPath, testData, now)
}

// ErrorLines returns the lines of an error from this package: every
// mistake of every file as `PATH:LINE:COL: message`, or the error's text.
func ErrorLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	var walk func(error)
	walk = func(e error) {
		if re, ok := e.(*Errors); ok {
			out = append(out, re.Lines()...)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var re *Errors
		if errors.As(e, &re) {
			out = append(out, re.Lines()...)
			return
		}
		out = append(out, e.Error())
	}
	walk(err)
	return out
}

// caseSchema is the JSON Schema of one rule-test case.
func caseSchema() map[string]any {
	str := map[string]any{"type": "string"}
	scalar := map[string]any{"type": []any{"string", "number", "boolean"}}
	acts := map[string]any{}
	for _, spec := range actions.Specs() {
		acts[spec.Name] = map[string]any{
			"description": "The expected " + spec.Name + ": a value, or a mapping of the fields to check (only those are compared).",
			"type":        []any{"string", "number", "object", "null"},
		}
	}
	return map[string]any{
		"type":                 "object",
		"required":             []any{"name", "expect"},
		"additionalProperties": false,
		"properties": map[string]any{
			"name":        map[string]any{"description": "A unique name, printed when the case fails.", "type": "string", "minLength": 1},
			"message":     withDoc(scalar, "The text of a message the user sends."),
			"postback":    withDoc(str, "The payload of a button the user taps."),
			"quick_reply": withDoc(str, "The payload of the quick reply the message carries."),
			"attachment":  stringOrList(map[string]any{"type": "string", "enum": attachmentTypes}),
			"event":       map[string]any{"description": "The event kind; by default postback with postback:, else message.", "type": "string", "enum": kindNames()},
			"standby":     map[string]any{"description": "true: the event arrives on the standby channel (another app owns the thread).", "type": "boolean"},
			"metadata":    withDoc(str, "The metadata of a handover event."),
			"at":          map[string]any{"description": "The clock that now() reads, e.g. 2026-01-05T10:00:00+01:00.", "type": "string", "format": "date-time"},
			"owner":       withDoc(str, "Who owns the thread: self, idle, other or an app name. Default self (other for a standby event)."),
			"paused":      map[string]any{"description": "true: the bot is paused for this user.", "type": "boolean"},
			"sender":      withDoc(scalar, "The user's ID, for templates that show it."),
			"page":        withDoc(scalar, "The Page the event is for: its name under pages, or its ID."),
			"expect": map[string]any{
				"description":          "What must happen: the rule that fires, the actions that run, or both.",
				"type":                 "object",
				"additionalProperties": false,
				"minProperties":        1,
				"properties": map[string]any{
					"rule": map[string]any{
						"description": "A rule's name: that rule fires. A list: exactly those rules fire, in order ([] for none).",
						"oneOf": []any{
							map[string]any{"type": "string", "minLength": 1},
							map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
						},
					},
					"actions": map[string]any{
						"description": "The actions that run, in order, across every rule that fires ([] for none).",
						"type":        "array",
						"items": map[string]any{
							"type":                 "object",
							"minProperties":        1,
							"maxProperties":        1,
							"additionalProperties": false,
							"properties":           acts,
						},
					},
				},
			},
		},
	}
}
