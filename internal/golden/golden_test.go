package golden

import (
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Fatal(...any)          { r.failed = true }

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	missing := &recorder{TB: t}
	Check(missing, path, "hello\n", false)
	if !missing.failed {
		t.Error("a missing golden file passed")
	}
	Check(t, path, "hello\n", true) // -update writes it, directory too
	Check(t, path, "hello\n", false)
	differs := &recorder{TB: t}
	Check(differs, path, "bye\n", false)
	if !differs.failed {
		t.Error("a different output passed")
	}
}
