package rules

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// regexCondition holds when the raw message text matches one of its
// regular expressions. The named groups of the first that matches are
// recorded in the subject.
type regexCondition struct {
	res []*regexp.Regexp
}

var _ engine.Condition = (*regexCondition)(nil)

// compileRegex compiles `regex: RE` or `regex: [RE, ...]` (RE2 syntax).
func compileRegex(value *yaml.Node, c *matchContext) (engine.Condition, diag.List) {
	items, errs := diag.Strings(value, c.what)
	var res []*regexp.Regexp
	for _, it := range items {
		re, err := regexp.Compile(it.Value)
		if err != nil {
			errs.Add(regexError(it, err, c))
			continue
		}
		res = append(res, re)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &regexCondition{res: res}, nil
}

var backref = regexp.MustCompile(`^\\[1-9]`)

// regexError positions a regexp error at the offending fragment when it can
// be found in the expression.
func regexError(it diag.Item, err error, c *matchContext) *diag.Error {
	var se *syntax.Error
	if !errors.As(err, &se) {
		return diag.At(it.Node, "%s: %v, expected an RE2 regular expression", c.what, err)
	}
	msg := fmt.Sprintf("%s: %s in `%s`, expected an RE2 regular expression", c.what, se.Code, se.Expr)
	if se.Code == syntax.ErrInvalidPerlOp || (se.Code == syntax.ErrInvalidEscape && backref.MatchString(se.Expr)) {
		msg += " (RE2 has no look-ahead, look-behind or back-references)"
	}
	line, col := 1, 1
	if i := strings.Index(it.Value, se.Expr); se.Expr != "" && i >= 0 {
		line, col = offsetPos(it.Value, i)
	}
	return c.src.at(it.Node, line, col, "%s", msg)
}

func (r *regexCondition) Key() string { return "regex" }

func (r *regexCondition) Holds(s *engine.Subject) bool {
	if s.Event.Kind != engine.KindMessage {
		return false
	}
	for _, re := range r.res {
		m := re.FindStringSubmatchIndex(s.Event.Text)
		if m == nil {
			continue
		}
		names := re.SubexpNames()
		for i, name := range names {
			if name == "" {
				continue
			}
			if s.Groups == nil {
				s.Groups = map[string]string{}
			}
			if m[2*i] >= 0 {
				s.Groups[name] = s.Event.Text[m[2*i]:m[2*i+1]]
			} else {
				s.Groups[name] = ""
			}
		}
		return true
	}
	return false
}

func (r *regexCondition) Describe() string {
	srcs := make([]string, len(r.res))
	for i, re := range r.res {
		srcs[i] = re.String()
	}
	return "wants the text to match " + orList(srcs, func(s string) string { return "`" + s + "`" })
}
