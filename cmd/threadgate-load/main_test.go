package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLoadToolRuns builds the real threadgate binary and runs a short load
// against it and the reference handler: the tool must report both targets,
// and every accepted webhook's Graph call must reach the sink.
func TestLoadToolRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the threadgate binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "threadgate")
	build := exec.Command("go", "build", "-o", bin, "../threadgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	err := run(options{bin: bin, conns: 4, duration: 300 * time.Millisecond, users: 20, settle: 20 * time.Second}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	for _, want := range []string{"reference net/http", "threadgate", "gateway peak RSS", "gateway exit after SIGTERM: 0"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	m := regexp.MustCompile(`graph calls: expected (\d+) .*, received (\d+)`).FindStringSubmatch(report)
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Errorf("expected and received Graph calls differ or are zero:\n%s", report)
	}
}
