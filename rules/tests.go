package rules

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/rules/diag"
	"github.com/threadgate/threadgate/rules/ruletest"
	"gopkg.in/yaml.v3"
)

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
