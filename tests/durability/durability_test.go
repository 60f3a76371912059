package durability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
)

// allDelivered waits until every acknowledged message's echo reached the
// Graph API at least once.
func allDelivered(t *testing.T, graph *fakegraph.Server, sent map[string][]string) {
	t.Helper()
	poll.UntilNil(t, "every acknowledged message's echo at the Graph API", func() error {
		missing := 0
		for user, texts := range sent {
			got := make(map[string]bool)
			for _, e := range graph.Texts(user) {
				got[e] = true
			}
			for _, s := range texts {
				if !got["[bot] "+s] {
					missing++
				}
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d not delivered", missing, countAll(sent))
		}
		return nil
	})
}

// TestKill9WithDataDirLosesNothing acknowledges 200 messages of 8 users,
// kills the gateway with SIGKILL, and starts it again on the same data dir
// with the Graph API healed: every acknowledged message is answered, each
// user's in order. Before the kill, the Graph API either hangs (nothing
// got through) or answers slowly (some events completed, others were in
// flight or waiting). It reports how many echoes the Graph API received
// twice: at-least-once allows the step in flight at the kill to run again.
func TestKill9WithDataDirLosesNothing(t *testing.T) {
	needBinary(t)
	t.Parallel()
	for _, tt := range []struct {
		name  string
		fault fakegraph.Answer
	}{
		{"graph hangs", fakegraph.Answer{Hang: true}},
		{"graph slow", fakegraph.Answer{Delay: 5 * time.Millisecond, Jitter: 10 * time.Millisecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{pageToken}})
			heal := graph.Fault(fakegraph.Match{}, tt.fault)
			rules := writeRules(t, echoRules)
			dataDir := filepath.Join(t.TempDir(), "data")

			first := startReady(t, graph.BaseURL(), rules, "--data-dir", dataDir)
			sent := first.sendMessages(t, "k9", 8, 25)
			if n := countAll(sent); n != 200 {
				t.Fatalf("%d of 200 messages acknowledged", n)
			}
			// Something is under way: a call reached the Graph API.
			graph.WaitCalls(t, fakegraph.PathMessages, 1)
			first.kill9(t)
			before := len(graph.CallsTo(fakegraph.PathMessages))
			heal()

			startReady(t, graph.BaseURL(), rules, "--data-dir", dataDir)
			allDelivered(t, graph, sent)
			twice := deliveries(t, sent, graph.Texts)
			t.Logf("kill -9 (%s): 200 acknowledged; the Graph API received %d echoes before the kill and %d after the restart; %d echoes twice (at-least-once)",
				tt.name, before, len(graph.CallsTo(fakegraph.PathMessages))-before, twice)
		})
	}
}

// TestSIGTERMLeavesTheRestInTheStore stops a gateway whose Graph API hangs:
// it exits 0 once --grace has passed, and what it did not finish runs
// after the next start.
func TestSIGTERMLeavesTheRestInTheStore(t *testing.T) {
	needBinary(t)
	t.Parallel()
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{pageToken}})
	heal := graph.Fault(fakegraph.Match{}, fakegraph.Answer{Hang: true})
	rules := writeRules(t, echoRules)
	dataDir := filepath.Join(t.TempDir(), "data")

	first := startReady(t, graph.BaseURL(), rules, "--data-dir", dataDir, "--grace", "1s")
	sent := first.sendMessages(t, "term", 4, 10)
	graph.WaitCalls(t, fakegraph.PathMessages, 1)
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := first.exited(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	heal()

	startReady(t, graph.BaseURL(), rules, "--data-dir", dataDir)
	allDelivered(t, graph, sent)
	twice := deliveries(t, sent, graph.Texts)
	t.Logf("SIGTERM: %d acknowledged, all delivered after the restart; %d echoes twice (the calls hanging at the stop)", countAll(sent), twice)
}

// TestDataDirThatCannotBeOpened starts the gateway on data dirs it must
// refuse: it exits 2 with a message that names the data file and says
// what is wrong, and never falls back to memory.
func TestDataDirThatCannotBeOpened(t *testing.T) {
	needBinary(t)
	t.Parallel()
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{pageToken}})
	rules := writeRules(t, echoRules)

	tests := []struct {
		name string
		// dir prepares and returns the data dir.
		dir  func(t *testing.T) string
		want string
	}{
		{"locked by another threadgate", func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "data")
			startReady(t, graph.BaseURL(), rules, "--data-dir", dir)
			return dir
		}, "locked by another process"},
		{"a file, not a directory", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "data")
			if err := os.WriteFile(path, []byte("not a directory\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, "not writable"},
		{"a corrupt database", func(t *testing.T) string {
			dir := t.TempDir()
			junk := []byte(strings.Repeat("this is not a bbolt file\n", 1000))
			if err := os.WriteFile(filepath.Join(dir, "threadgate.db"), junk, 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "damaged or not a threadgate database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tt.dir(t)
			g := start(t, graph.BaseURL(), rules, "--data-dir", dir)
			code := g.exited(t)
			log := g.stderr.String()
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(log, tt.want) || !strings.Contains(log, dir) {
				t.Errorf("the message does not name %s and say %q:\n%s", dir, tt.want, log)
			}
		})
	}
}
