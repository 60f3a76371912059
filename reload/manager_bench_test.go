package reload

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// phraseFile is a rules file of n phrase rules and a catch-all.
func phraseFile(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\napps:\n  zendesk: 200646160103180\nvars:\n  brand: Acme\nrules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: rule-%d\n    match:\n      text: [\"phrase number %d\", \"other phrase %d\"]\n    do:\n      - reply: \"Answer %d from {{ .Vars.brand }}\"\n", i, i, i, i)
	}
	b.WriteString("  - name: echo\n    do:\n      - echo: \"[bot] \"\n")
	return []byte(b.String())
}

// BenchmarkReload10000Rules measures what a reload of a file of 10,000
// phrase rules (about 1 MB) costs the running gateway: Manager.Reload
// reads the file, parses, validates and compiles it, and swaps it in.
func BenchmarkReload10000Rules(b *testing.B) {
	path := filepath.Join(b.TempDir(), "rules.yaml")
	data := phraseFile(10000)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	m := NewManager(path, Options{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Reload(); err != nil {
			b.Fatal(err)
		}
	}
	if m.Status().RuleCount != 10001 {
		b.Fatalf("RuleCount = %d", m.Status().RuleCount)
	}
}
