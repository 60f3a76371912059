package actions

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// Expectation is one expected action of a rule test, such as
// `- reply: "Connecting you…"` or `- pass_thread_control: {target: zendesk}`.
// It lists only what it checks.
type Expectation struct {
	// Kind is the expected action's kind.
	Kind string
	// Want maps each checked Fields key to its expected value: a string, or
	// a []any or map[string]any of those. Lists are compared whole. An
	// empty Want checks only the kind.
	Want map[string]any
	// Line and Column locate the expectation in its file.
	Line, Column int
}

// DecodeExpectation decodes one item of a rule test's `actions` list: a
// mapping with one key, the action kind. Its value is a scalar (compared
// with the kind's ExpectField), a mapping of the Fields keys to check, or
// nothing (only the kind is checked). It reports every mistake.
func DecodeExpectation(n *yaml.Node) (*Expectation, diag.List) {
	n = diag.Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		got := diag.KindName(n)
		if n != nil && n.Kind == yaml.MappingNode {
			got = fmt.Sprintf("a mapping with %d keys", len(n.Content)/2)
		}
		return nil, diag.List{diag.At(n, "expected action: expected a mapping with one key, the action (e.g. reply: TEXT), got %s", got)}
	}
	k, v := n.Content[0], diag.Resolve(n.Content[1])
	kind, err := diag.String(k, "expected action")
	if err != nil {
		return nil, diag.List{err}
	}
	spec, ok := Lookup(kind)
	if !ok {
		return nil, diag.List{diag.At(k, "expected action: unknown action %q, expected one of: %s", kind, strings.Join(Names(), ", "))}
	}
	e := &Expectation{Kind: kind, Want: map[string]any{}, Line: k.Line, Column: k.Column}
	switch {
	case v == nil || (v.Kind == yaml.ScalarNode && v.Tag == "!!null"):
		return e, nil
	case v.Kind == yaml.ScalarNode:
		if spec.ExpectField == "" {
			return nil, diag.List{diag.At(v, "%s: takes no value to compare, write %s: {}", kind, kind)}
		}
		e.Want[spec.ExpectField] = v.Value
		return e, nil
	case v.Kind != yaml.MappingNode:
		return nil, diag.List{diag.At(v, "%s: expected a value or a mapping of the fields to check, got %s", kind, diag.KindName(v))}
	}
	fields, errs := diag.Fields(v, kind, spec.FieldNames)
	for _, f := range fields {
		val, e2 := generic(f.Value, kind+"."+f.Key.Value)
		errs = append(errs, e2...)
		e.Want[f.Key.Value] = val
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

// generic turns a YAML value into the shapes of Step.Fields: scalars become
// their text (null the empty text), lists []any, mappings map[string]any.
func generic(n *yaml.Node, what string) (any, diag.List) {
	n = diag.Resolve(n)
	switch {
	case n == nil:
		return "", nil
	case n.Kind == yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	case n.Kind == yaml.SequenceNode:
		var errs diag.List
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, e := generic(c, what+"["+strconv.Itoa(i)+"]")
			errs = append(errs, e...)
			out[i] = v
		}
		return out, errs
	case n.Kind == yaml.MappingNode:
		fields, errs := diag.Fields(n, what, nil)
		out := make(map[string]any, len(fields))
		for _, f := range fields {
			v, e := generic(f.Value, what+"."+f.Key.Value)
			errs = append(errs, e...)
			out[f.Key.Value] = v
		}
		return out, errs
	}
	return nil, diag.List{diag.At(n, "%s: expected a value, a list or a mapping, got %s", what, diag.KindName(n))}
}

// Match reports whether step s is the expected action; when it is not,
// diff says every difference, e.g. `reply: text: got "Hi", want "Hello"`.
func (e *Expectation) Match(s Step) (ok bool, diff string) {
	if s == nil {
		return false, fmt.Sprintf("got no action, want %s", e.Kind)
	}
	if s.Kind() != e.Kind {
		return false, fmt.Sprintf("got %s %s, want %s", s.Kind(), Format(s.Fields()), e.Kind)
	}
	got := s.Fields()
	keys := make([]string, 0, len(e.Want))
	for k := range e.Want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var diffs []string
	for _, k := range keys {
		want := e.Want[k]
		g, present := got[k]
		if !present {
			diffs = append(diffs, fmt.Sprintf("%s: not set, want %s", k, Format(want)))
			continue
		}
		if g = normalize(g); !reflect.DeepEqual(g, want) {
			diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", k, Format(g), Format(want)))
		}
	}
	if len(diffs) > 0 {
		return false, e.Kind + ": " + strings.Join(diffs, "; ")
	}
	return true, ""
}

// MatchSteps compares the steps a rule test produced with the expected
// actions, in order, and returns one line per difference (none when they
// match), e.g. `action 2: missing pass_thread_control`.
func MatchSteps(got []Step, want []*Expectation) []string {
	var out []string
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(want):
			out = append(out, fmt.Sprintf("action %d: unexpected %s %s", i+1, got[i].Kind(), Format(got[i].Fields())))
		case i >= len(got):
			out = append(out, fmt.Sprintf("action %d: missing %s", i+1, want[i].Kind))
		default:
			if ok, diff := want[i].Match(got[i]); !ok {
				out = append(out, fmt.Sprintf("action %d: %s", i+1, diff))
			}
		}
	}
	return out
}

// normalize turns a Fields value into the shapes generic produces.
func normalize(v any) any {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalize(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = normalize(x)
		}
		return out
	case nil:
		return ""
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	}
	return fmt.Sprint(v)
}

// Format prints a Fields value compactly and deterministically, in YAML
// flow style with quoted strings: {payload: "AGENT", title: "Yes"}.
func Format(v any) string {
	var b strings.Builder
	format(&b, normalize(v))
	return b.String()
}

func format(b *strings.Builder, v any) {
	switch v := v.(type) {
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			format(b, x)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			format(b, v[k])
		}
		b.WriteByte('}')
	default:
		b.WriteString(strconv.Quote(fmt.Sprint(v)))
	}
}
