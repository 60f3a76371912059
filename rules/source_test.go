package rules

import (
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestSourcePositions maps a position inside a scalar's value to the file:
// the value of key x is "abc XYZ..." and the position is that of X.
func TestSourcePositions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		src       string
		line, col int // of X inside the value
		want      string
	}{
		{"plain", "x: abc XYZ\n", 1, 5, "1:8"},
		{"single quoted", "x: 'abc XYZ'\n", 1, 5, "1:9"},
		{"single quoted with an escaped quote", "x: 'it''s XYZ'\n", 1, 6, "1:11"},
		{"double quoted", "x: \"abc XYZ\"\n", 1, 5, "1:9"},
		{"double quoted with escapes", "x: \"\\\"a\\u00e9 XYZ\"\n", 1, 5, "1:15"},
		{"double quoted with a tab escape", "x: \"\\tab XYZ\"\n", 1, 5, "1:10"},
		{"multi-byte characters count once", "x: été XYZ\n", 1, 5, "1:8"},
		{"flow mapping", "{a: 1, x: abc XYZ}\n", 1, 5, "1:15"},
		{"literal block, first line", "x: |\n  abc XYZ\n", 1, 5, "2:7"},
		{"literal block, second line", "x: |\n    abc\n    de XYZ\n", 2, 4, "3:8"},
		{"literal block after a blank line", "x: |-\n\n  abc\n  XYZ\n", 3, 1, "4:3"},
		{"folded block: the node", "x: >\n  abc\n  XYZ\n", 2, 1, "1:4"},
		{"plain over two lines, first line", "x: abc XYZ\n  def\n", 1, 5, "1:8"},
		{"plain over two lines, past the first: the node", "x: abc\n  def XYZ\n", 1, 9, "1:4"},
		{"windows line ends", "y: 1\r\nx: 'abc XYZ'\r\n", 1, 5, "2:9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
				t.Fatal(err)
			}
			m := doc.Content[0]
			var n *yaml.Node
			for i := 0; i < len(m.Content); i += 2 {
				if m.Content[i].Value == "x" {
					n = m.Content[i+1]
				}
			}
			e := newSource([]byte(tt.src)).at(n, tt.line, tt.col, "msg")
			if got := fmt.Sprintf("%d:%d", e.Line, e.Column); got != tt.want {
				t.Errorf("at = %s, want %s (value %q)", got, tt.want, n.Value)
			}
		})
	}
}

func TestOffsetPos(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s         string
		off       int
		line, col int
	}{
		{"abc", 0, 1, 1},
		{"abc", 2, 1, 3},
		{"ab\ncd", 4, 2, 2},
		{"été x", 5, 1, 4}, // "été" is 5 bytes, 3 characters
		{"abc", 99, 1, 4},
	} {
		if l, c := offsetPos(tt.s, tt.off); l != tt.line || c != tt.col {
			t.Errorf("offsetPos(%q, %d) = %d:%d, want %d:%d", tt.s, tt.off, l, c, tt.line, tt.col)
		}
	}
}
