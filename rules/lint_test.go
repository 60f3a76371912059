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
	t.Parallel()
	for _, path := range yamlFiles(t, "testdata/lint") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(path, data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			warnings := Lint(f)
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
	t.Parallel()
	var b strings.Builder
	for _, path := range yamlFiles(t, "../examples") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(path, data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		warnings := Lint(f)
		for _, w := range warnings {
			b.WriteString(w.String() + "\n")
		}
	}
	golden(t, "testdata/lint/examples.golden", b.String())
}

// TestLintWithoutParse checks that a File that Parse did not return has
// no warnings instead of a panic.
func TestLintWithoutParse(t *testing.T) {
	t.Parallel()
	if w := Lint(&File{Path: "x.yaml"}); w != nil {
		t.Fatalf("Lint of an empty File = %v, want none", w)
	}
}
