package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/testbinary"
)

// threadgateBin is the threadgate binary TestMain builds, or "" with
// -short.
var threadgateBin string

func TestMain(m *testing.M) {
	testbinary.Main(m, "../threadgate", &threadgateBin)
}

// TestLoadToolRuns runs a short load against the real threadgate binary
// and the two references: the tool must report every target, and every
// accepted webhook's Graph call must reach the sink.
func TestLoadToolRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the threadgate binary; skipped with -short")
	}
	var out bytes.Buffer
	err := run(options{bin: threadgateBin, conns: 4, duration: 300 * time.Millisecond, users: 20, settle: 20 * time.Second}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	for _, want := range []string{"reference net/http", "bare forwarder", "threadgate", "gateway peak RSS", "gateway exit after SIGTERM: 0"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	m := regexp.MustCompile(`graph calls: expected (\d+) .*, received (\d+)`).FindStringSubmatch(report)
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Errorf("expected and received Graph calls differ or are zero:\n%s", report)
	}
}
