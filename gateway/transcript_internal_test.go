package gateway

import (
	"slices"
	"testing"
)

func TestAppendBoundedKeepsTheLastNAndNeverWritesIntoItsArgument(t *testing.T) {
	tests := []struct {
		list []string
		s    string
		n    int
		want []string
	}{
		{nil, "a", 3, []string{"a"}},
		{[]string{"a", "b"}, "c", 3, []string{"a", "b", "c"}},
		{[]string{"a", "b", "c"}, "d", 3, []string{"b", "c", "d"}},
		{[]string{"a", "b", "c", "d"}, "e", 2, []string{"d", "e"}},
		{[]string{"a"}, "b", 1, []string{"b"}},
	}
	for _, tt := range tests {
		arg := make([]string, len(tt.list), len(tt.list)+5) // spare capacity an in-place append would use
		copy(arg, tt.list)
		got := appendBounded(arg, tt.s, tt.n)
		if !slices.Equal(got, tt.want) {
			t.Errorf("appendBounded(%q, %q, %d) = %q, want %q", tt.list, tt.s, tt.n, got, tt.want)
		}
		if spare := arg[:cap(arg)][len(arg)]; spare != "" {
			t.Errorf("appendBounded wrote %q into its argument's array", spare)
		}
	}
}
