package rules

import (
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// containsCondition holds when the normalized message text contains one of
// its normalized phrases on word boundaries.
type containsCondition struct {
	phrases []string
}

var _ engine.Condition = (*containsCondition)(nil)

// compileContains compiles `contains: PHRASE` or `contains: [PHRASE, ...]`.
func compileContains(value *yaml.Node, c *matchContext) (engine.Condition, diag.List) {
	phrases, errs := normalizedPhrases(value, c)
	if len(errs) > 0 {
		return nil, errs
	}
	return &containsCondition{phrases: newStringSet(phrases).list}, nil
}

func (t *containsCondition) Key() string { return "contains" }

func (t *containsCondition) Holds(s *engine.Subject) bool {
	if s.Event.Kind != engine.KindMessage {
		return false
	}
	for _, p := range t.phrases {
		if engine.ContainsWords(s.Normalized, p) {
			return true
		}
	}
	return false
}

func (t *containsCondition) Describe() string {
	return "wants the text to contain the words " + quoteList(t.phrases)
}
