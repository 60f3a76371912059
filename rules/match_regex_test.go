package rules

import (
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/engine"
)

func TestRegexMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value  string
		ev     *engine.Event
		want   bool
		groups map[string]string
	}{
		{`'(?i)order\s*#?(?P<order>\d{4,})'`, message("Where is ORDER #12345?"), true, map[string]string{"order": "12345"}},
		{`'(?i)order\s*#?(?P<order>\d{4,})'`, message("order 12"), false, nil},
		{`'order'`, message("ORDER"), false, nil}, // case-sensitive unless (?i)
		{`'^  hi'`, message("  hi"), true, nil},   // the raw text, not normalized
		{`'^hi$'`, message("  hi"), false, nil},
		{`['^(?P<a>x)$', '^(?P<b>y)(?P<c>z)?$']`, message("y"), true, map[string]string{"b": "y", "c": ""}},
		{`['(?P<n>\d+)', '(?P<n>[a-z]+)']`, message("abc 42"), true, map[string]string{"n": "42"}}, // the first regex that matches
		{`'.*'`, &engine.Event{Kind: engine.KindPostback, Payload: "x"}, false, nil},
		{`'é+'`, message("caféé"), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.value+" on "+tt.ev.Text, func(t *testing.T) {
			c := compileMatch(t, "regex", tt.value)
			s := subject(tt.ev)
			if got := c.Holds(s); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(s.Groups, tt.groups) {
				t.Errorf("Groups = %v, want %v", s.Groups, tt.groups)
			}
		})
	}
}

func TestRegexErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  string
	}{
		// Positions are inside the value: the YAML source is the value itself.
		{`'a(b'`, `1:2: match.regex: missing closing ) in ` + "`a(b`"},
		{`"x(?=y)"`, `1:3: match.regex: invalid or unsupported Perl syntax in ` + "`(?=`" + `, expected an RE2 regular expression (RE2 has no look-ahead`},
		{`'\q'`, `1:2: match.regex: invalid escape sequence in ` + "`\\q`" + `, expected an RE2 regular expression`},
		{`[ok, 'a**']`, `1:8: match.regex: invalid nested repetition operator in ` + "`**`"},
		{`"\\d \\k"`, `1:6: match.regex: invalid escape sequence in ` + "`\\k`"},
		{`12`, `match.regex: expected a string or a list of strings, got a number`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got := compileMatchErrors(t, "regex", tt.value)
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Errorf("errors = %q, want one containing %q", got, tt.want)
			}
			if strings.Contains(tt.value, `\q`) && strings.Contains(got[0], "look-ahead") {
				t.Errorf("an unknown escape is not a back-reference: %q", got[0])
			}
		})
	}
}
