package rules

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// ruleKeys are the keys of one rule, in documentation order.
var ruleKeys = []string{"name", "match", "when", "paused", "do", "continue"}

// rule compiles one item of the rules list; pos is its 1-based position. It
// returns the rule (nil when it has mistakes) and its name node for the
// duplicate check (nil when the name is missing or invalid).
func (p *parser) rule(n *yaml.Node, pos int, f *File) (*engine.Rule, *yaml.Node) {
	start := len(p.errs)
	n = diag.Resolve(n)
	where := fmt.Sprintf("rule #%d", pos)
	if n.Kind != yaml.MappingNode {
		p.errs.Add(diag.At(n, "%s: expected a mapping with name, match and do, got %s", where, diag.KindName(n)))
		return nil, nil
	}
	// The name comes first so that every message can say which rule it is about.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "name" {
			if s, err := diag.String(n.Content[i+1], ""); err == nil && validName(s) {
				where = fmt.Sprintf("rule %q", s)
			}
			break
		}
	}
	fields, errs := diag.Fields(n, where, ruleKeys)
	p.errs.Add(errs...)
	byKey := map[string]diag.Field{}
	for _, fl := range fields {
		byKey[fl.Key.Value] = fl
	}

	var nameNode *yaml.Node
	r := &engine.Rule{Line: n.Line}
	if fl, ok := byKey["name"]; ok {
		name, err := diag.String(fl.Value, where+": name")
		switch {
		case err != nil:
			p.errs.Add(err)
		case strings.TrimSpace(name) == "":
			p.errs.Add(diag.At(fl.Value, "%s: name: the name is empty, expected a short unique name such as agent-on-request", where))
		case !validName(name):
			p.errs.Add(diag.At(fl.Value, "%s: name: the name holds a line break or control character, expected one line such as agent-on-request", where))
		default:
			r.Name = name
			nameNode = diag.Resolve(fl.Value)
		}
	} else {
		p.errs.Add(diag.At(n, "%s: name: missing, expected a unique name such as name: agent-on-request", where))
	}

	if fl, ok := byKey["match"]; ok {
		p.match(fl.Value, where, r, f)
	} else {
		r.Events = []engine.Kind{engine.KindMessage}
	}
	if fl, ok := byKey["when"]; ok {
		r.When = p.when(fl.Value, where, f.Vars)
	}
	if fl, ok := byKey["paused"]; ok {
		r.EvenWhenPaused = p.pausedKey(fl.Value, where)
	}
	if fl, ok := byKey["do"]; ok {
		r.Actions = p.do(fl.Value, where, f)
		r.ReadsOwner = readsOwner(r.When, fl.Value)
	} else {
		p.errs.Add(diag.At(n, "%s: do: missing, expected a list of actions such as do: [reply: \"Hello\"]", where))
	}
	if fl, ok := byKey["continue"]; ok {
		b, err := diag.Bool(fl.Value, where+": continue")
		p.errs.Add(err)
		r.Continue = b
	}
	if len(p.errs) > start {
		return nil, nameNode
	}
	return r, nameNode
}

// validName reports whether a rule name can be used in logs and metrics:
// not blank, one line, no control characters.
func validName(s string) bool {
	return strings.TrimSpace(s) != "" && strings.IndexFunc(s, unicode.IsControl) < 0
}

// when compiles a `when` expression, mapping the compiler's position into
// the file.
func (p *parser) when(n *yaml.Node, where string, vars map[string]any) *engine.When {
	src, err := diag.String(n, where+": when")
	if err != nil {
		p.errs.Add(err)
		return nil
	}
	n = diag.Resolve(n)
	if strings.TrimSpace(src) == "" {
		p.errs.Add(diag.At(n, "%s: when: the expression is empty, expected a condition such as hour(now(), \"Europe/Paris\") >= 9", where))
		return nil
	}
	w, cerr := engine.CompileWhen(src)
	if cerr != nil {
		line, col, msg := exprErrorPos(cerr)
		p.errs.Add(p.src.at(n, line, col, "%s: when: %s", where, msg))
		return nil
	}
	p.errs.Add(p.checkWhenConstants(n, where, w, vars)...)
	return w
}

// do compiles a rule's actions.
func (p *parser) do(n *yaml.Node, where string, f *File) []actions.Action {
	n = diag.Resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.errs.Add(diag.At(n, "%s: do: expected a list of actions such as do: [reply: \"Hello\"], got %s", where, diag.KindName(n)))
		return nil
	}
	if len(n.Content) == 0 {
		p.errs.Add(diag.At(n, "%s: do: the list is empty, expected at least one action", where))
		return nil
	}
	var out []actions.Action
	c := &actions.Compiler{Apps: f.Apps, Vars: f.Vars, At: p.src.at}
	for _, item := range n.Content {
		item = diag.Resolve(item)
		if item.Kind != yaml.MappingNode {
			p.errs.Add(diag.At(item, "%s: do: expected an action such as - reply: \"Hello\", got %s", where, diag.KindName(item)))
			continue
		}
		if len(item.Content) != 2 {
			var names []string
			for i := 0; i < len(item.Content); i += 2 {
				names = append(names, item.Content[i].Value)
			}
			if len(names) == 0 {
				p.errs.Add(diag.At(item, "%s: do: the action is empty, expected one of: %s", where, strings.Join(actions.Names(), ", ")))
			} else {
				p.errs.Add(diag.At(item, "%s: do: one list item holds %d actions (%s), expected one action per item, each starting with -", where, len(names), strings.Join(names, ", ")))
			}
			continue
		}
		key, value := item.Content[0], item.Content[1]
		if key.Kind != yaml.ScalarNode {
			p.errs.Add(diag.At(key, "%s: do: an action's name must be a word, got %s; expected one of: %s", where, diag.KindName(key), strings.Join(actions.Names(), ", ")))
			continue
		}
		spec, ok := actions.Lookup(key.Value)
		if !ok {
			p.errs.Add(diag.At(key, "%s: do: unknown action %q, expected one of: %s", where, key.Value, strings.Join(actions.Names(), ", ")))
			continue
		}
		a, errs := spec.Decode(value, c)
		for _, e := range errs {
			if e == nil {
				continue
			}
			msg := e.Msg
			if !strings.HasPrefix(msg, spec.Name) {
				msg = spec.Name + ": " + msg
			}
			p.errs.Add(&diag.Error{Line: e.Line, Column: e.Column, Msg: where + ": " + msg})
		}
		if len(errs) == 0 && a != nil {
			out = append(out, a)
		}
	}
	return out
}
