package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLint lints every file under testdata/lint and compares the warnings
// with the file's .warnings golden file.
func TestLint(t *testing.T) {
	for _, path := range yamlFiles(t, "testdata/lint") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, warnings, err := Lint(path, data)
			if err != nil || f == nil {
				t.Fatalf("Lint: %v", err)
			}
			var b strings.Builder
			for _, w := range warnings {
				b.WriteString(w.String() + "\n")
			}
			golden(t, strings.TrimSuffix(path, ".yaml")+".warnings", b.String())
		})
	}
}

// TestLintExamples records the warnings of the examples, so that a change
// to them or to lint that adds one is seen.
func TestLintExamples(t *testing.T) {
	var b strings.Builder
	for _, path := range yamlFiles(t, "../examples") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, warnings, err := Lint(path, data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, w := range warnings {
			b.WriteString(w.String() + "\n")
		}
	}
	golden(t, "testdata/lint/examples.golden", b.String())
}

func TestLintInvalidFile(t *testing.T) {
	f, warnings, err := Lint("bad.yaml", []byte("version: 1\nrules: []\n"))
	if err == nil || f != nil || warnings != nil {
		t.Fatalf("Lint of an invalid file = %v, %v, %v; want only the error", f, warnings, err)
	}
}
