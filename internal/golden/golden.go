// Package golden compares a test's output with a golden file under
// testdata/, or rewrites the file when the test runs with -update: the
// golden files show in review what a change does to the output.
//
//	var update = flag.Bool("update", false, "rewrite the golden files under testdata/")
//	…
//	golden.Check(t, filepath.Join("testdata", "x.golden"), got, *update)
package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// Check compares got with the file at path and fails the test with both
// when they differ; with update it writes got to path (creating its
// directory) instead.
func Check(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run the test with -update and review the diff)\n--- got\n%s--- want\n%s", path, got, want)
	}
}
