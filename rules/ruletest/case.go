package ruletest

import (
	"fmt"
	"strings"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// Case is one rule test: an event and what must happen.
type Case struct {
	// Name names the case in reports; unique in its list.
	Name string
	// Line and Column locate the case in its file.
	Line, Column int
	// Input is the event and its conversation's state.
	Input Input
	// Expect is what must happen.
	Expect Expect
}

// Expect is what a case checks. At least one of Rules and Actions is set.
type Expect struct {
	// Rules, when not nil, names the rules that must fire. One name holds
	// when that rule fires (rules with continue: true may fire too); a list
	// holds when exactly those rules fire, in that order; an empty list
	// holds when no rule fires.
	Rules []string
	// Exact is true when Rules was given as a list.
	Exact bool
	// Actions, when HasActions is set, are the actions that must run, in
	// order, across every rule that fires; each lists only what it checks.
	Actions    []*actions.Expectation
	HasActions bool
}

// caseKeys are the keys of a case, in documentation order.
var caseKeys = append(append([]string{"name"}, inputKeys...), "expect")

// expectKeys are the keys of a case's expect mapping.
var expectKeys = []string{"rule", "actions"}

// DecodeCases decodes a list of cases, such as the value of `cases:` in a
// test file or of `tests:` in a rules file; what names the list in
// messages (e.g. "cases"). It reports every mistake with its position.
func DecodeCases(n *yaml.Node, what string) ([]*Case, diag.List) {
	var errs diag.List
	n = diag.Resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		errs.Add(diag.At(n, "%s: expected a list of cases (each starting with - name: ...), got %s", what, diag.KindName(n)))
		return nil, errs
	}
	if len(n.Content) == 0 {
		errs.Add(diag.At(n, "%s: the list is empty, expected at least one case", what))
		return nil, errs
	}
	var out []*Case
	line := map[string]int{}
	for i, item := range n.Content {
		c, nameNode, e := decodeCase(item, what, i+1)
		errs.Add(e...)
		if nameNode != nil {
			if prev, dup := line[c.Name]; dup {
				errs.Add(diag.At(nameNode, "%s: case %q: the name is already used by the case on line %d, expected a unique name", what, c.Name, prev))
			} else {
				line[c.Name] = nameNode.Line
			}
		}
		if len(e) == 0 {
			out = append(out, c)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// decodeCase decodes case number pos of the list named list; it returns the
// name's node when the name is valid, for the duplicate check.
func decodeCase(n *yaml.Node, list string, pos int) (*Case, *yaml.Node, diag.List) {
	var errs diag.List
	what := fmt.Sprintf("%s: case #%d", list, pos)
	n = diag.Resolve(n)
	if n.Kind != yaml.MappingNode {
		errs.Add(diag.At(n, "%s: expected a mapping with name, an event (such as message: hello) and expect, got %s", what, diag.KindName(n)))
		return nil, nil, errs
	}
	c := &Case{Line: n.Line, Column: n.Column}
	var nameNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "name" {
			if s, err := diag.Scalar(n.Content[i+1], ""); err == nil && strings.TrimSpace(s) != "" && !strings.ContainsAny(s, "\r\n") {
				what = fmt.Sprintf("%s: case %q", list, s)
				c.Name = s
				nameNode = diag.Resolve(n.Content[i+1])
			}
			break
		}
	}
	fields, e := diag.Fields(n, what, caseKeys)
	errs.Add(e...)
	var inputFields []diag.Field
	var expect *diag.Field
	hasName := false
	for i, f := range fields {
		switch f.Key.Value {
		case "name":
			hasName = true
			if nameNode == nil {
				errs.Add(diag.At(f.Value, "%s: name: expected one line of text such as \"phrase hands over\", got %s", what, diag.KindName(diag.Resolve(f.Value))))
			}
		case "expect":
			expect = &fields[i]
		default:
			inputFields = append(inputFields, f)
		}
	}
	if !hasName {
		errs.Add(diag.At(n, "%s: name: missing, expected a name such as name: phrase hands over", what))
	}
	in, e := decodeInput(inputFields, n, what)
	errs.Add(e...)
	c.Input = in
	if expect == nil {
		errs.Add(diag.At(n, "%s: expect: missing, expected what must happen, such as expect: {rule: agent-on-request}", what))
	} else {
		ex, e := decodeExpect(expect.Value, what+": expect")
		errs.Add(e...)
		c.Expect = ex
	}
	return c, nameNode, errs
}

// decodeExpect decodes a case's expect mapping.
func decodeExpect(n *yaml.Node, what string) (Expect, diag.List) {
	var ex Expect
	fields, errs := diag.Fields(n, what, expectKeys)
	if len(fields) == 0 && len(errs) == 0 {
		errs.Add(diag.At(n, "%s: expected rule, actions or both, such as {rule: agent-on-request}", what))
	}
	for _, f := range fields {
		switch f.Key.Value {
		case "rule":
			v := diag.Resolve(f.Value)
			if v.Kind == yaml.SequenceNode {
				ex.Exact = true
				ex.Rules = []string{}
				for _, it := range v.Content {
					s, err := diag.Scalar(it, what+".rule")
					if err != nil {
						errs.Add(err)
						continue
					}
					ex.Rules = append(ex.Rules, s)
				}
				continue
			}
			s, err := diag.Scalar(v, what+".rule")
			if err != nil {
				errs.Add(diag.At(v, "%s.rule: expected a rule's name, or a list of names ([] when no rule may fire), got %s", what, diag.KindName(v)))
				continue
			}
			ex.Rules = []string{s}
		case "actions":
			v := diag.Resolve(f.Value)
			if v.Kind != yaml.SequenceNode {
				errs.Add(diag.At(v, "%s.actions: expected a list of actions such as [reply: \"Hello\"] ([] when no action may run), got %s", what, diag.KindName(v)))
				continue
			}
			ex.HasActions = true
			ex.Actions = []*actions.Expectation{}
			for _, it := range v.Content {
				e, es := actions.DecodeExpectation(it)
				for _, x := range es {
					errs.Add(&diag.Error{Line: x.Line, Column: x.Column, Msg: what + ".actions: " + x.Msg})
				}
				if e != nil {
					ex.Actions = append(ex.Actions, e)
				}
			}
		}
	}
	return ex, errs
}

// CaseKeys returns the keys of a test case, in documentation order.
func CaseKeys() []string { return append([]string(nil), caseKeys...) }
