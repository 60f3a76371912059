package rules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// whenHelp lists what a `when` expression may use, for messages.
const whenHelp = "the variables text, payload, event, sender_id, page_id, metadata, groups, vars, standby, owner, paused " +
	"and the functions now(), hour(t, tz), weekday(t, tz), business_hours(spec, tz)"

// exprErrorPos extracts the position (line and column from 1, inside the
// expression) and the message of an expression compile error.
func exprErrorPos(err error) (line, col int, msg string) {
	var fe *file.Error
	if !errors.As(err, &fe) {
		msg = err.Error()
		if _, got, ok := strings.Cut(msg, "expected bool, but got "); ok {
			return 1, 1, "the expression gives " + got + ", expected true or false (a comparison such as hour(now(), \"UTC\") >= 9)"
		}
		return 1, 1, msg + ", expected a boolean expression"
	}
	line, col = fe.Line, fe.Column+1
	if line < 1 {
		line = 1
	}
	msg = fe.Message
	switch {
	case strings.HasPrefix(msg, "unknown name"):
		msg += ", expected one of " + whenHelp
	default:
		msg += `, expected a true-or-false expression such as hour(now(), "UTC") >= 9 && text != ""`
	}
	return line, col, msg
}

// checkWhenConstants checks the literal time zones and business-hours specs
// of a compiled expression, so that `hour(now(), "Europe/Pariss")` is a load
// error instead of a rule that silently never fires.
func (p *parser) checkWhenConstants(n *yaml.Node, where string, w *engine.When, vars map[string]any) diag.List {
	v := &constChecker{vars: vars}
	root := w.Program.Node()
	ast.Walk(&root, v)
	var errs diag.List
	for _, bad := range v.bad {
		line, col := offsetPosRunes(w.Source, bad.from)
		errs.Add(p.src.at(n, line, col, "%s: when: %s", where, bad.msg))
	}
	return errs
}

type badConst struct {
	from int
	msg  string
}

type constChecker struct {
	vars map[string]any
	bad  []badConst
}

func (v *constChecker) Visit(node *ast.Node) {
	if m, ok := (*node).(*ast.MemberNode); ok {
		v.member(m)
		return
	}
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	arg := func(i int) (*ast.StringNode, bool) {
		if i < 0 || i >= len(call.Arguments) {
			return nil, false
		}
		s, ok := call.Arguments[i].(*ast.StringNode)
		return s, ok
	}
	tz := -1
	switch id.Value {
	case "hour", "weekday":
		tz = 1
	case "business_hours":
		tz = 1
		if s, ok := arg(0); ok {
			if _, err := engine.ParseSchedule(s.Value); err != nil {
				msg := err.Error()
				if !strings.Contains(msg, "expected") {
					msg += ", expected days and hours such as \"Mon-Fri 09:00-18:00\""
				}
				v.bad = append(v.bad, badConst{s.Location().From, msg})
			}
		}
	}
	if s, ok := arg(tz); ok {
		if _, err := engine.Location(s.Value); err != nil {
			v.bad = append(v.bad, badConst{s.Location().From, err.Error() + ", expected an IANA time zone such as \"Europe/Paris\" or \"UTC\""})
		}
	}
}

// member checks vars.NAME (and vars["NAME"]) against the file's vars.
func (v *constChecker) member(m *ast.MemberNode) {
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "vars" || v.vars == nil {
		return
	}
	name, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	if _, ok := v.vars[name.Value]; !ok {
		known := "no vars are defined (add it under vars:)"
		if len(v.vars) > 0 {
			known = "expected one of: " + strings.Join(sortedKeys(v.vars), ", ")
		}
		v.bad = append(v.bad, badConst{name.Location().From, fmt.Sprintf("unknown var %q, %s", name.Value, known)})
	}
}

// offsetPosRunes converts a rune offset in s into a line and a character
// column, both counting from 1.
func offsetPosRunes(s string, off int) (line, col int) {
	line, col = 1, 1
	i := 0
	for _, r := range s {
		if i == off {
			break
		}
		i++
		if r == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return line, col
}
