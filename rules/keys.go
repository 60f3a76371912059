package rules

import (
	"github.com/threadgate/threadgate/rules/diag"
	"github.com/threadgate/threadgate/rules/ruletest"
	"gopkg.in/yaml.v3"
)

// topKey is a top-level key of the rules file. One entry describes the key
// for the loader (decode), the JSON Schema (Doc, Schema) and the messages
// that list the keys.
//
// A new key is one typed field of File and one entry here whose decode
// stores the decoded value in that field:
//
//	{Name: "greeting", Doc: "…", Schema: greetingSchema,
//		decode: func(p *parser, n *yaml.Node, f *File) { f.Greeting = p.greeting(n) }},
type topKey struct {
	// Name is the key.
	Name string
	// Doc is one sentence for the JSON Schema.
	Doc string
	// Schema returns the JSON Schema (draft-07) of the key's value.
	Schema func() map[string]any
	// Missing, when set, makes the key required: it is the message of a
	// file without it.
	Missing string
	// decode decodes the key's value into its field of f, adding every
	// mistake to p. Keys are decoded in the order of topKeys, so a key can
	// read the fields of the keys above it.
	decode func(p *parser, value *yaml.Node, f *File)
}

// topKeys lists the top-level keys in the order they are decoded and
// listed in messages; rules comes last, as it names apps, vars and pages.
var topKeys = []topKey{
	{
		Name:    "version",
		Doc:     "The version of the rules format: 1.",
		Schema:  func() map[string]any { return map[string]any{"const": Version} },
		Missing: "version: missing, expected version: 1 at the top of the file",
		decode:  func(p *parser, n *yaml.Node, _ *File) { p.version(n) },
	},
	{
		Name:   "apps",
		Doc:    "Apps that a conversation can be handed to, by name: the name is used in rules, the value is the app's numeric ID.",
		Schema: appsSchema,
		decode: func(p *parser, n *yaml.Node, f *File) { f.Apps = p.apps(n) },
	},
	{
		Name:   "vars",
		Doc:    "Free values for templates (.Vars.NAME) and when expressions (vars.NAME).",
		Schema: varsSchema,
		decode: func(p *parser, n *yaml.Node, f *File) { f.Vars = p.vars(n) },
	},
	{
		Name:   "pages",
		Doc:    "Pages and Instagram accounts by name, for match: {page: NAME}: the value is the numeric ID, or a mapping with id and dialect. IDs only: tokens never go in the rules file.",
		Schema: pagesSchema,
		decode: func(p *parser, n *yaml.Node, f *File) { f.Pages = p.pages(n) },
	},
	{
		Name:   "handover",
		Doc:    "How threadgate hands threads over and takes them back: pause_on_human, return_after_idle, on_request and dialect.",
		Schema: handoverSchema,
		decode: func(p *parser, n *yaml.Node, f *File) { f.Handover = p.handover(n) },
	},
	{
		Name:   "profile",
		Doc:    "The Page's Messenger profile: Get Started button, greeting, ice breakers, persistent menu and commands, applied with threadgate profile apply. One profile for every Page, or a mapping of page names (from pages) to profiles.",
		Schema: profileSectionSchema,
		decode: func(p *parser, n *yaml.Node, f *File) {
			prof, errs := decodeProfileSection(n, f)
			p.errs.Add(errs...)
			f.Profile = prof
		},
	},
	{
		Name:   "tests",
		Doc:    "Rule tests that must pass before this file is accepted (at start, at every reload and by threadgate check): each case gives an event and the rule or actions that must follow.",
		Schema: func() map[string]any { return map[string]any{"type": "array", "minItems": 1, "items": caseSchema()} },
		decode: func(p *parser, n *yaml.Node, f *File) {
			cases, errs := ruletest.DecodeCases(n, "tests")
			p.errs.Add(errs...)
			f.Tests = cases
		},
	},
	{
		Name:    "rules",
		Doc:     "The rules, tried in order: the first that matches fires.",
		Schema:  rulesSchema,
		Missing: "rules: missing, expected a list of rules, each with a name and do",
		decode:  func(p *parser, n *yaml.Node, f *File) { p.compiled = p.rules(n, f) },
	},
}

// topLevelKeys returns the names of the top-level keys, in the order of
// topKeys.
func topLevelKeys() []string {
	out := make([]string, len(topKeys))
	for i, k := range topKeys {
		out[i] = k.Name
	}
	return out
}

// decodeTop decodes the keys of the root mapping into f, in the order of
// topKeys.
func (p *parser) decodeTop(root *yaml.Node, f *File) {
	fields, errs := diag.Fields(root, "top level", topLevelKeys())
	p.errs.Add(errs...)
	byKey := make(map[string]*yaml.Node, len(fields))
	for _, fl := range fields {
		byKey[fl.Key.Value] = fl.Value
	}
	for _, k := range topKeys {
		v, ok := byKey[k.Name]
		switch {
		case ok:
			k.decode(p, v, f)
		case k.Missing != "":
			p.errs.Add(diag.At(root, "%s", k.Missing))
		}
	}
}
