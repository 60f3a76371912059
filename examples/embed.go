// Package examples holds the example rules files. The seed's rules.yaml is
// embedded, with its test file, so that `threadgate serve` in sandbox mode
// has rules to run even where no rules file exists yet.
package examples

import _ "embed"

// DefaultRules is examples/rules.yaml: the seed's handover bot.
//
//go:embed rules.yaml
var DefaultRules []byte

// DefaultTests is examples/rules.test.yaml: the rule tests of
// DefaultRules, run before they are put in force.
//
//go:embed rules.test.yaml
var DefaultTests []byte

// DefaultRulesName is the name under which DefaultRules is reported.
const DefaultRulesName = "embedded:examples/rules.yaml"
