package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkReload10000Rules measures what a reload of a file of 10,000
// phrase rules (about 1 MB) costs the running gateway: Manager.Reload
// reads the file, parses, validates and compiles it, and swaps it in.
func BenchmarkReload10000Rules(b *testing.B) {
	path := filepath.Join(b.TempDir(), "rules.yaml")
	data := phraseFile(10000)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	m := NewManager(path, ManagerOptions{})
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
