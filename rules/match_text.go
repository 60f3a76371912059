package rules

import (
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// textCondition holds when the normalized message text equals one of its
// normalized phrases. The engine indexes it on the normalized text.
type textCondition struct {
	phrases stringSet
}

var _ engine.IndexedCondition = (*textCondition)(nil)

// compileText compiles `text: PHRASE` or `text: [PHRASE, ...]`.
func compileText(value *yaml.Node, c *matchContext) (engine.Condition, diag.List) {
	phrases, errs := normalizedPhrases(value, c)
	if len(errs) > 0 {
		return nil, errs
	}
	return &textCondition{phrases: newStringSet(phrases)}, nil
}

// normalizedPhrases decodes a string-or-list of phrases and normalizes each,
// refusing phrases that normalize to nothing.
func normalizedPhrases(value *yaml.Node, c *matchContext) ([]string, diag.List) {
	items, errs := diag.Strings(value, c.what)
	out := make([]string, 0, len(items))
	for _, it := range items {
		p := engine.Normalize(it.Value)
		if p == "" {
			errs.Add(diag.At(it.Node, "%s: %q has no words once white space and punctuation are trimmed, expected a phrase such as \"talk to a human\"", c.what, it.Value))
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

func (t *textCondition) Key() string { return "text" }

func (t *textCondition) Holds(s *engine.Subject) bool {
	return s.Event.Kind == engine.KindMessage && t.phrases.has(s.Normalized)
}

func (t *textCondition) Describe() string {
	return "wants the text to be " + quoteList(t.phrases.list) + " (after normalizing)"
}

func (t *textCondition) IndexField() engine.Field { return engine.FieldText }

func (t *textCondition) IndexKeys() []string { return t.phrases.list }
