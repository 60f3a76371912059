package main

import (
	"bytes"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	goldenfile "github.com/threadgate/threadgate/internal/golden"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// golden compares got with testdata/golden/NAME, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", "golden", name), got, *updateGolden)
}

// runCLI runs the command line and returns its exit code and output in
// the form the golden files hold.
func runCLI(args ...string) string {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if strings.ContainsAny(a, " #!?\"'") {
			shown[i] = "'" + a + "'"
		}
	}
	return fmt.Sprintf("$ threadgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(shown, " "), code, out.String(), errOut.String())
}

// TestCLIGolden runs test, explain and check on the files under testdata
// and compares their output with the golden files.
func TestCLIGolden(t *testing.T) {
	t.Parallel()
	const sunday = "2026-01-04T22:00:00+01:00"
	const monday = "2026-01-05T10:00:00+01:00"
	tests := []struct {
		golden string
		args   []string
	}{
		{"test-pass.golden", []string{"test", "testdata/bot.test.yaml"}},
		{"test-fail.golden", []string{"test", "testdata/failing.test.yaml", "testdata/bot.test.yaml"}},
		{"test-verbose.golden", []string{"test", "-v", "testdata/bot.test.yaml"}},
		{"test-rules-file.golden", []string{"test", "testdata/with-tests.yaml", "testdata/bot.yaml"}},
		{"test-broken.golden", []string{"test", "testdata/lint.yaml", "testdata/missing.test.yaml", "testdata/bot.yaml"}},
		{"explain-phrase.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", monday, "Chat with agent!"}},
		{"explain-phrase-closed.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", sunday, "chat with agent"}},
		{"explain-regex.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", monday, "Where is order #12345?"}},
		{"explain-postback.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", monday, "--postback", "TALK_TO_AGENT"}},
		{"explain-quick-reply.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", monday, "--quick-reply", "AGENT", "Yes please"}},
		{"explain-event.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", monday, "--event", "pass_thread_control"}},
		{"explain-standby.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", monday, "--standby", "back to bot now"}},
		{"explain-standby-none.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", monday, "--standby", "thanks"}},
		{"explain-json.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--at", monday, "--json", "chat with agent"}},
		{"explain-usage.golden", []string{"explain", "--rules", "testdata/bot.yaml", "--postback", "X", "hello"}},
		{"check-warnings.golden", []string{"check", "testdata/lint.yaml", "testdata/bot.yaml", "testdata/with-tests.yaml"}},
		{"check-strict.golden", []string{"check", "--strict", "testdata/lint.yaml"}},
		{"check-failing-tests.golden", []string{"check", "testdata/with-failing-tests.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			golden(t, tt.golden, runCLI(tt.args...))
		})
	}
}
