// Package examples holds the example rules files. The seed's rules.yaml is
// embedded so that `threadgate serve` in sandbox mode has rules to run even
// where no rules file exists yet.
package examples

import _ "embed"

// DefaultRules is examples/rules.yaml: the seed's handover bot.
//
//go:embed rules.yaml
var DefaultRules []byte

// DefaultRulesName is the name under which DefaultRules is reported.
const DefaultRulesName = "embedded:examples/rules.yaml"
