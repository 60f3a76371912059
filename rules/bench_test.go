package rules

import (
	"fmt"
	"strings"
	"testing"
)

// phraseFile returns a rules file of n phrase rules, each with two phrases
// and a reply, followed by a catch-all echo.
func phraseFile(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\napps:\n  zendesk: 200646160103180\nvars:\n  brand: Acme\nrules:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: rule-%d\n    match:\n      text: [\"phrase number %d\", \"other phrase %d\"]\n    do:\n      - reply: \"Answer %d from {{ .Vars.brand }}\"\n", i, i, i, i)
	}
	b.WriteString("  - name: echo\n    do:\n      - echo: \"[bot] \"\n")
	return []byte(b.String())
}

// BenchmarkParse10000Rules parses, validates and compiles a file of 10,000
// phrase rules (about 1 MB).
func BenchmarkParse10000Rules(b *testing.B) {
	data := phraseFile(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Parse("bench.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if f.RuleCount != 10001 {
			b.Fatalf("RuleCount = %d", f.RuleCount)
		}
	}
}
