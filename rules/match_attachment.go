package rules

import (
	"strings"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// attachmentTypes are the attachment types `attachment` accepts. Stickers
// arrive as both image and sticker until Aug 30 2026, then only as sticker
// (messenger-platform.md): a rule meant for stickers should say sticker.
var attachmentTypes = []string{"image", "video", "audio", "file", "location", "fallback", "sticker"}

// attachmentCondition holds when a message carries an attachment of one of
// its types.
type attachmentCondition struct {
	types []string
}

var _ engine.Condition = (*attachmentCondition)(nil)

// compileAttachment compiles `attachment: TYPE` or `attachment: [TYPE, ...]`.
func compileAttachment(value *yaml.Node, c *matchContext) (engine.Condition, diag.List) {
	items, errs := diag.Strings(value, c.what)
	var types []string
	for _, it := range items {
		if !containsString(attachmentTypes, it.Value) {
			errs.Add(diag.At(it.Node, "%s: unknown attachment type %q, expected one of: %s", c.what, it.Value, strings.Join(attachmentTypes, ", ")))
			continue
		}
		types = append(types, it.Value)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &attachmentCondition{types: newStringSet(types).list}, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (a *attachmentCondition) Key() string { return "attachment" }

func (a *attachmentCondition) Holds(s *engine.Subject) bool {
	if s.Event.Kind != engine.KindMessage {
		return false
	}
	for _, t := range s.Event.Attachments {
		if containsString(a.types, t) {
			return true
		}
	}
	return false
}

func (a *attachmentCondition) Describe() string {
	return "wants an attachment of type " + strings.Join(a.types, " or ")
}
