// Package diag reports mistakes in YAML documents with their line and column,
// and decodes the small node shapes (scalars, string lists, mappings with a
// fixed set of keys) that the rules format is made of.
//
// Every function here collects errors instead of stopping at the first one, so
// that a person who edits a rules file sees all of their mistakes at once.
package diag

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one mistake at a position in a YAML document.
type Error struct {
	Line   int
	Column int
	Msg    string
}

// Error formats the mistake as "LINE:COL: message".
func (e *Error) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
}

// At returns an Error positioned at node n. A nil node gives line 1, column 1.
func At(n *yaml.Node, format string, args ...any) *Error {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	return &Error{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// Offset returns an Error at node n moved by a position inside the node's
// text (for example a column reported by an expression compiler). Line and
// column of the inner position count from 1.
func Offset(n *yaml.Node, innerLine, innerCol int, format string, args ...any) *Error {
	e := At(n, format, args...)
	if innerLine > 1 {
		e.Line += innerLine - 1
		e.Column = innerCol
		return e
	}
	if innerCol > 1 {
		shift := innerCol - 1
		// Quoted scalars start one character before their content.
		if n != nil && (n.Style&yaml.SingleQuotedStyle != 0 || n.Style&yaml.DoubleQuotedStyle != 0) {
			shift++
		}
		e.Column += shift
	}
	return e
}

// List is a collection of positioned errors.
type List []*Error

// Add appends errors to the list, skipping nils.
func (l *List) Add(errs ...*Error) {
	for _, e := range errs {
		if e != nil {
			*l = append(*l, e)
		}
	}
}

// Sort orders the list by line, then column, then message.
func (l List) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Msg < b.Msg
	})
}

// KindName names a node's shape the way a rules author thinks of it.
func KindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!int":
			return "a number"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a string"
	}
	return "an unknown node"
}

// Resolve follows alias nodes to the node they name.
func Resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// Field is one key of a mapping with its value node.
type Field struct {
	Key   *yaml.Node
	Value *yaml.Node
}

// Fields returns the key/value pairs of a mapping node in document order. It
// reports duplicate keys, keys not in allowed (when allowed is non-nil), and a
// node that is not a mapping; what is the value at "where".
func Fields(n *yaml.Node, what string, allowed []string) ([]Field, List) {
	var errs List
	n = Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		errs.Add(At(n, "%s: expected a mapping, got %s", what, KindName(n)))
		return nil, errs
	}
	seen := map[string]bool{}
	var out []Field
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			errs.Add(At(k, "%s: keys must be plain words, got %s", what, KindName(k)))
			continue
		}
		if seen[k.Value] {
			errs.Add(At(k, "%s: key %q is given twice", what, k.Value))
			continue
		}
		seen[k.Value] = true
		if allowed != nil && !contains(allowed, k.Value) {
			errs.Add(At(k, "%s: unknown key %q, expected one of: %s", what, k.Value, strings.Join(allowed, ", ")))
			continue
		}
		out = append(out, Field{Key: k, Value: v})
	}
	return out, errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// String decodes a scalar string value. Numbers and booleans are refused so
// that `payload: 12` is not silently read; use Scalar for those.
func String(n *yaml.Node, what string) (string, *Error) {
	n = Resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", At(n, "%s: expected a string, got %s", what, KindName(n))
	}
	if n.Tag != "!!str" && n.Style == 0 {
		return "", At(n, "%s: expected a string, got %s (put it in quotes)", what, KindName(n))
	}
	return n.Value, nil
}

// Scalar decodes any scalar (string, number, boolean) as its text.
func Scalar(n *yaml.Node, what string) (string, *Error) {
	n = Resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", At(n, "%s: expected a single value, got %s", what, KindName(n))
	}
	return n.Value, nil
}

// Bool decodes a boolean scalar.
func Bool(n *yaml.Node, what string) (bool, *Error) {
	n = Resolve(n)
	var b bool
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		return false, At(n, "%s: expected true or false, got %s", what, KindName(n))
	}
	return b, nil
}

// Item is one string of a string-or-list value, with its node.
type Item struct {
	Value string
	Node  *yaml.Node
}

// Strings decodes a value that is either one string or a list of strings.
// An empty list is an error.
func Strings(n *yaml.Node, what string) ([]Item, List) {
	var errs List
	n = Resolve(n)
	if n != nil && n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			errs.Add(At(n, "%s: the list is empty, expected at least one value", what))
			return nil, errs
		}
		var out []Item
		for _, c := range n.Content {
			s, err := String(c, what)
			if err != nil {
				errs.Add(err)
				continue
			}
			out = append(out, Item{Value: s, Node: c})
		}
		return out, errs
	}
	s, err := String(n, what)
	if err != nil {
		errs.Add(At(n, "%s: expected a string or a list of strings, got %s", what, KindName(n)))
		return nil, errs
	}
	return []Item{{Value: s, Node: n}}, nil
}
