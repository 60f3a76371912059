package rules

import (
	"strings"
	"unicode/utf8"

	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// source is the text of a rules file. It turns a position inside a scalar's
// value (a column reported by the expression compiler, the place of a bad
// regex fragment) into a position in the file, taking quotes, escapes and
// block scalars into account.
type source struct {
	lines []string
}

func newSource(data []byte) *source {
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return &source{lines: lines}
}

// line returns line number i (1-based) of the file, or false.
func (s *source) line(i int) (string, bool) {
	if s == nil || i < 1 || i > len(s.lines) {
		return "", false
	}
	return s.lines[i-1], true
}

// at returns an error at a position inside the value of scalar n: line and
// col count from 1, col in characters. When the position cannot be mapped
// (folded or multi-line flow scalars), the error points at the node.
func (s *source) at(n *yaml.Node, line, col int, format string, args ...any) *diag.Error {
	e := diag.At(n, format, args...)
	if n == nil || n.Kind != yaml.ScalarNode || n.Line < 1 || line < 1 || col < 1 {
		return e
	}
	if n.Style&yaml.LiteralStyle != 0 {
		// The content starts on the line after the "|" indicator, indented.
		indent := -1
		for i := n.Line + 1; ; i++ {
			l, ok := s.line(i)
			if !ok {
				return e
			}
			if strings.TrimSpace(l) != "" {
				indent = len(l) - len(strings.TrimLeft(l, " "))
				break
			}
		}
		if _, ok := s.line(n.Line + line); !ok {
			return e
		}
		e.Line = n.Line + line
		e.Column = indent + col
		return e
	}
	if line != 1 || strings.Contains(n.Value, "\n") || n.Style&yaml.FoldedStyle != 0 {
		return e
	}
	src, ok := s.line(n.Line)
	if !ok {
		return e
	}
	// Skip to the node's first character (columns count characters).
	rest := src
	for c := 1; c < n.Column && rest != ""; c++ {
		_, size := utf8.DecodeRuneInString(rest)
		rest = rest[size:]
	}
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	column := n.Column
	if quoted {
		if rest == "" {
			return e
		}
		rest = rest[1:]
		column++
	}
	// Walk col-1 characters of the value through the source text.
	for c := 1; c < col; c++ {
		if rest == "" {
			return e
		}
		// width is the number of source characters that write this
		// character of the value: 2 for '' and \n, 4 to 10 for \x, \u, \U.
		r, _ := utf8.DecodeRuneInString(rest)
		width := 1
		switch {
		case n.Style&yaml.SingleQuotedStyle != 0 && r == '\'':
			width = 2
		case n.Style&yaml.DoubleQuotedStyle != 0 && r == '\\' && len(rest) > 1:
			switch rest[1] {
			case 'x':
				width = 4
			case 'u':
				width = 6
			case 'U':
				width = 10
			default:
				width = 2
			}
		}
		for w := 0; w < width && rest != ""; w++ {
			_, size := utf8.DecodeRuneInString(rest)
			rest = rest[size:]
		}
		column += width
	}
	e.Line = n.Line
	e.Column = column
	return e
}

// offsetPos converts a byte offset in s into a line and a character column,
// both counting from 1.
func offsetPos(s string, off int) (line, col int) {
	if off > len(s) {
		off = len(s)
	}
	line, col = 1, 1
	for _, r := range s[:off] {
		if r == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return line, col
}
