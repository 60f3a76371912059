package rules

import (
	"fmt"
	"strings"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// MatchKind describes one key of a rule's `match` mapping. The table of
// kinds (matchKinds) feeds validation, the JSON Schema and the docs.
type MatchKind struct {
	// Key is the key in the rules file, e.g. "text".
	Key string
	// Doc is one sentence saying when the key holds.
	Doc string
	// Schema is the JSON Schema (draft-07) of the key's value.
	Schema map[string]any
	// Events are the event kinds the key can hold for. A rule whose events
	// include another kind is refused at load.
	Events []engine.Kind
	// Standby is true when the key can hold for events that arrive on the
	// standby channel.
	Standby bool

	// compile turns the key's value into a condition. It is nil for `event`
	// and `standby`, which set fields of the rule instead.
	compile func(value *yaml.Node, c *matchContext) (engine.Condition, diag.List)
}

// matchContext is what a match kind's compiler may use.
type matchContext struct {
	// what prefixes messages, e.g. `rule "agent": match.text`.
	what string
	// src maps positions inside a value to the file.
	src *source
	// file is the file being loaded, its top-level keys decoded (nil in
	// tests that compile one key alone).
	file *File
}

var messageOnly = []engine.Kind{engine.KindMessage}

// matchKinds is the table of `match` keys, in documentation order.
var matchKinds = []MatchKind{
	{
		Key:     "event",
		Doc:     "The event is of that kind: message, postback, pass_thread_control (the thread came back to us), take_thread_control, request_thread_control or returned (threadgate took the thread back after handover.return_after_idle). Default: postback when postback is given, else message.",
		Schema:  stringOrList(map[string]any{"type": "string", "enum": kindNames()}),
		Events:  engine.Kinds,
		Standby: true,
	},
	{
		Key:     "text",
		Doc:     "The message text equals the phrase once both are normalized: case folded, white space and punctuation trimmed at both ends, inner white space collapsed (\"  Chat with AGENT! \" equals \"chat with agent\").",
		Schema:  stringOrList(map[string]any{"type": "string", "minLength": 1}),
		Events:  messageOnly,
		Standby: true,
		compile: compileText,
	},
	{
		Key:     "contains",
		Doc:     "The normalized message text contains the normalized phrase as whole words (\"agent\" is in \"an agent please\", not in \"reagents\").",
		Schema:  stringOrList(map[string]any{"type": "string", "minLength": 1}),
		Events:  messageOnly,
		Standby: true,
		compile: compileContains,
	},
	{
		Key:     "regex",
		Doc:     "The message text, as written, matches the RE2 regular expression; named groups (?P<name>...) become .Groups.name in templates and groups.name in when.",
		Schema:  stringOrList(map[string]any{"type": "string", "minLength": 1, "format": "regex"}),
		Events:  messageOnly,
		Standby: true,
		compile: compileRegex,
	},
	{
		Key:     "postback",
		Doc:     "The postback payload (of a button the user tapped) equals the value exactly.",
		Schema:  stringOrList(map[string]any{"type": "string", "minLength": 1}),
		Events:  []engine.Kind{engine.KindPostback},
		Standby: false, // postbacks on the standby channel carry no payload
		compile: compilePostback,
	},
	{
		Key:     "quick_reply",
		Doc:     "The message carries the payload of a quick reply the user tapped, equal to the value exactly.",
		Schema:  stringOrList(map[string]any{"type": "string", "minLength": 1}),
		Events:  messageOnly,
		Standby: true,
		compile: compileQuickReply,
	},
	{
		Key:     "attachment",
		Doc:     "The message carries an attachment of that type: image, video, audio, file, location, fallback (a shared link) or sticker (stickers also arrive as image until Aug 30 2026, then only as sticker).",
		Schema:  stringOrList(map[string]any{"type": "string", "enum": attachmentTypes}),
		Events:  messageOnly,
		Standby: true,
		compile: compileAttachment,
	},
	pageMatchKind,
	{
		Key:     "standby",
		Doc:     "true: the event arrived on the standby channel, because another app (a human agent's inbox) owns the thread. Default false: standby events match no rule unless it says standby: true.",
		Schema:  map[string]any{"type": "boolean"},
		Events:  engine.Kinds,
		Standby: true,
	},
}

// MatchKinds returns the `match` keys in documentation order.
func MatchKinds() []MatchKind {
	return append([]MatchKind(nil), matchKinds...)
}

func lookupMatchKind(key string) (MatchKind, bool) {
	for _, k := range matchKinds {
		if k.Key == key {
			return k, true
		}
	}
	return MatchKind{}, false
}

// matchKeys are the keys a `match` mapping may hold, in table order.
var matchKeys = func() []string {
	out := make([]string, len(matchKinds))
	for i, k := range matchKinds {
		out[i] = k.Key
	}
	return out
}()

func kindNames() []string {
	out := make([]string, len(engine.Kinds))
	for i, k := range engine.Kinds {
		out[i] = string(k)
	}
	return out
}

// stringOrList is the schema of a value given as one item or a list of them.
func stringOrList(item map[string]any) map[string]any {
	return map[string]any{"oneOf": []any{
		item,
		map[string]any{"type": "array", "items": item, "minItems": 1},
	}}
}

// match compiles a rule's `match` mapping into r: its events, standby flag
// and conditions.
func (p *parser) match(n *yaml.Node, where string, r *engine.Rule, f *File) {
	what := where + ": match"
	fields, errs := diag.Fields(n, what, matchKeys)
	p.errs.Add(errs...)

	var eventNode, postbackKey *yaml.Node
	badEvents := false
	type keyed struct {
		key  *yaml.Node
		kind MatchKind
	}
	var conds []keyed
	for _, fl := range fields {
		key := fl.Key.Value
		switch key {
		case "event":
			eventNode = fl.Key
			before := len(p.errs)
			r.Events = p.events(fl.Value, what+".event")
			badEvents = len(p.errs) > before
		case "standby":
			b, err := diag.Bool(fl.Value, what+".standby")
			p.errs.Add(err)
			r.Standby = b
		default:
			kind, _ := lookupMatchKind(key)
			if key == "postback" {
				postbackKey = fl.Key
			}
			c, errs := kind.compile(fl.Value, &matchContext{what: what + "." + key, src: p.src, file: f})
			p.errs.Add(errs...)
			if c != nil {
				r.Conditions = append(r.Conditions, c)
			}
			conds = append(conds, keyed{fl.Key, kind})
		}
	}
	if eventNode == nil {
		if postbackKey != nil {
			r.Events = []engine.Kind{engine.KindPostback}
		} else {
			r.Events = []engine.Kind{engine.KindMessage}
		}
	}

	// A key that cannot hold for one of the rule's events makes the rule
	// dead for that event: almost always a mistake. When the events
	// themselves are wrong, checking against them would only add noise.
	if badEvents {
		return
	}
	for _, c := range conds {
		var bad []string
		for _, ev := range r.Events {
			if !hasKind(c.kind.Events, ev) {
				bad = append(bad, string(ev))
			}
		}
		switch {
		case len(bad) > 0 && eventNode != nil:
			p.errs.Add(diag.At(c.key, "%s.%s: cannot hold for %s events, %s holds only for %s events; remove %s or change event",
				what, c.kind.Key, strings.Join(bad, " or "), c.kind.Key, kindText(c.kind.Events), c.kind.Key))
		case len(bad) > 0:
			p.errs.Add(diag.At(c.key, "%s.%s: cannot hold together with postback, %s holds only for %s events and postback only for postback events; put them in two rules",
				what, c.kind.Key, c.kind.Key, kindText(c.kind.Events)))
		case r.Standby && !c.kind.Standby:
			p.errs.Add(diag.At(c.key, "%s.%s: cannot hold with standby: true, postbacks on the standby channel carry no payload; remove %s or standby",
				what, c.kind.Key, c.kind.Key))
		}
	}
}

// events decodes the `event` value.
func (p *parser) events(n *yaml.Node, what string) []engine.Kind {
	items, errs := diag.Strings(n, what)
	p.errs.Add(errs...)
	var out []engine.Kind
	for _, it := range items {
		k := engine.Kind(it.Value)
		if !hasKind(engine.Kinds, k) {
			p.errs.Add(diag.At(it.Node, "%s: unknown event %q, expected one of: %s", what, it.Value, strings.Join(kindNames(), ", ")))
			continue
		}
		if !hasKind(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		// Keep the rule's events non-empty; the mistake is already reported.
		out = []engine.Kind{engine.KindMessage}
	}
	return out
}

func hasKind(list []engine.Kind, k engine.Kind) bool {
	for _, x := range list {
		if x == k {
			return true
		}
	}
	return false
}

func kindText(ks []engine.Kind) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = string(k)
	}
	return strings.Join(parts, " or ")
}

// quoteList describes a list of values for explain output: `"a" or "b"`,
// cut short after a few.
func quoteList(values []string) string {
	return orList(values, func(v string) string { return fmt.Sprintf("%q", v) })
}

// orList joins values, each formatted by f, with "or", cut short after a
// few.
func orList(values []string, f func(string) string) string {
	const max = 5
	var b strings.Builder
	for i, v := range values {
		if i == max {
			fmt.Fprintf(&b, " or %d more", len(values)-max)
			break
		}
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(f(v))
	}
	return b.String()
}

// stringSet is a small set of strings: a slice for a few, a map for many.
type stringSet struct {
	list []string
	m    map[string]struct{}
}

func newStringSet(values []string) stringSet {
	var s stringSet
	if len(values) <= 8 {
		for _, v := range values {
			if !containsString(s.list, v) {
				s.list = append(s.list, v)
			}
		}
		return s
	}
	s.m = make(map[string]struct{}, len(values))
	for _, v := range values {
		if _, dup := s.m[v]; !dup {
			s.m[v] = struct{}{}
			s.list = append(s.list, v)
		}
	}
	return s
}

func (s stringSet) has(v string) bool {
	if s.m != nil {
		_, ok := s.m[v]
		return ok
	}
	for _, x := range s.list {
		if x == v {
			return true
		}
	}
	return false
}
