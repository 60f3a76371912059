package rules

import (
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// quickReplyCondition holds when a message carries a quick-reply payload
// equal to one of its values exactly. The engine indexes it on the payload.
type quickReplyCondition struct {
	payloads stringSet
}

var _ engine.IndexedCondition = (*quickReplyCondition)(nil)

// compileQuickReply compiles `quick_reply: PAYLOAD` or a list of payloads.
func compileQuickReply(value *yaml.Node, c *matchContext) (engine.Condition, diag.List) {
	payloads, errs := payloadList(value, c)
	if len(errs) > 0 {
		return nil, errs
	}
	return &quickReplyCondition{payloads: newStringSet(payloads)}, nil
}

func (q *quickReplyCondition) Key() string { return "quick_reply" }

func (q *quickReplyCondition) Holds(s *engine.Subject) bool {
	return s.Event.Kind == engine.KindMessage && s.Event.HasQuickReply && q.payloads.has(s.Event.QuickReply)
}

func (q *quickReplyCondition) Describe() string {
	return "wants a quick reply with payload " + quoteList(q.payloads.list)
}

func (q *quickReplyCondition) IndexField() engine.Field { return engine.FieldQuickReply }

func (q *quickReplyCondition) IndexKeys() []string { return q.payloads.list }
