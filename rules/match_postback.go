package rules

import (
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// postbackCondition holds when a postback's payload equals one of its
// values exactly. The engine indexes it on the payload.
type postbackCondition struct {
	payloads stringSet
}

var _ engine.IndexedCondition = (*postbackCondition)(nil)

// compilePostback compiles `postback: PAYLOAD` or `postback: [PAYLOAD, ...]`.
func compilePostback(value *yaml.Node, c *matchContext) (engine.Condition, diag.List) {
	payloads, errs := payloadList(value, c)
	if len(errs) > 0 {
		return nil, errs
	}
	return &postbackCondition{payloads: newStringSet(payloads)}, nil
}

// payloadList decodes a string-or-list of exact payloads, refusing empty
// ones.
func payloadList(value *yaml.Node, c *matchContext) ([]string, diag.List) {
	items, errs := diag.Strings(value, c.what)
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it.Value == "" {
			errs.Add(diag.At(it.Node, "%s: the payload is empty, expected the payload of a button such as TALK_TO_AGENT", c.what))
			continue
		}
		out = append(out, it.Value)
	}
	return out, errs
}

func (p *postbackCondition) Key() string { return "postback" }

func (p *postbackCondition) Holds(s *engine.Subject) bool {
	return s.Event.Kind == engine.KindPostback && p.payloads.has(s.Event.Payload)
}

func (p *postbackCondition) Describe() string {
	return "wants the postback payload " + quoteList(p.payloads.list)
}

func (p *postbackCondition) IndexField() engine.Field { return engine.FieldPostback }

func (p *postbackCondition) IndexKeys() []string { return p.payloads.list }
