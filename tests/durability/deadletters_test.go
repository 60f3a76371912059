package durability

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
)

// deadLetterList is the answer of `threadgate deadletters list --json`.
type deadLetterList struct {
	DeadLetters []struct {
		ID       uint64 `json:"id"`
		User     string `json:"user"`
		Kind     string `json:"kind"`
		MID      string `json:"mid"`
		Rule     string `json:"rule"`
		StepKind string `json:"step_kind"`
		Attempts int    `json:"attempts"`
		Error    string `json:"error"`
		Graph    *struct {
			Code      int    `json:"code"`
			Subcode   int    `json:"subcode"`
			FBTraceID string `json:"fbtrace_id"`
		} `json:"graph"`
	} `json:"dead_letters"`
	Count int `json:"count"`
}

// cli runs `threadgate deadletters ARGS --addr` against the gateway and
// returns its standard output; it fails the test on a non-zero exit.
func (g *gateway) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(threadgateBin, append(append([]string{"deadletters"}, args...), "--addr", g.addr)...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("threadgate deadletters %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func (g *gateway) listDeadLetters(t *testing.T) deadLetterList {
	t.Helper()
	var l deadLetterList
	if err := json.Unmarshal([]byte(g.cli(t, "list", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDeadLettersCommandsAgainstTheGateway makes a reply fail for good
// (Graph error 100, a bad parameter), then uses `threadgate deadletters`
// against the running gateway: list shows the dead letter with its rule,
// step and Graph error, and keeps it across a restart (data dir); replay
// sends the reply once the Graph API accepts it; drop forgets another.
func TestDeadLettersCommandsAgainstTheGateway(t *testing.T) {
	needBinary(t)
	t.Parallel()
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{pageToken}})
	rules := writeRules(t, echoRules)
	dataDir := filepath.Join(t.TempDir(), "data")
	refuse := graph.Fault(fakegraph.Match{User: "dl-u0"}, fakegraph.GraphError{Status: 400, Code: 100, Subcode: 2018001, FBTraceID: "TRACE100"}.Answer())

	g := startReady(t, graph.BaseURL(), rules, "--data-dir", dataDir)
	if out := g.cli(t, "list"); !strings.Contains(out, "no dead letters") {
		t.Errorf("list before any failure:\n%s", out)
	}
	g.sendMessages(t, "dl", 1, 2)
	var list deadLetterList
	poll.UntilNil(t, "two dead letters", func() error {
		list = g.listDeadLetters(t)
		if list.Count != 2 || len(list.DeadLetters) != 2 {
			return fmt.Errorf("%d dead letters", list.Count)
		}
		return nil
	})
	d := list.DeadLetters[0]
	if d.Rule != "echo" || d.Kind != "message" || d.Graph == nil || d.Graph.Code != 100 || d.Graph.Subcode != 2018001 || d.Graph.FBTraceID != "TRACE100" {
		t.Errorf("dead letter = %+v, want rule echo, kind message, Graph error 100/2018001 TRACE100", d)
	}
	if d.User == "dl-u0" || strings.Contains(g.cli(t, "list"), "dl-u0 #") {
		t.Errorf("the list shows the raw sender ID or the user's text: %+v", d)
	}
	table := g.cli(t, "list")
	for _, want := range []string{"echo", "code 100/2018001", "TRACE100", "2 dead letters"} {
		if !strings.Contains(table, want) {
			t.Errorf("list lacks %q:\n%s", want, table)
		}
	}

	// The dead letters outlive the process.
	g.kill9(t)
	g = startReady(t, graph.BaseURL(), rules, "--data-dir", dataDir)
	if l := g.listDeadLetters(t); l.Count != 2 {
		t.Fatalf("after a restart: %d dead letters, want 2", l.Count)
	}

	refuse()
	out := g.cli(t, "replay", fmt.Sprint(list.DeadLetters[0].ID))
	if !strings.Contains(out, fmt.Sprintf("replayed %d as event", list.DeadLetters[0].ID)) {
		t.Errorf("replay: %s", out)
	}
	graph.WaitTexts(t, "dl-u0", 3) // two refused, the replayed one accepted
	if out := g.cli(t, "drop", "--all"); !strings.Contains(out, "1 dropped") {
		t.Errorf("drop --all: %s", out)
	}
	if l := g.listDeadLetters(t); l.Count != 0 {
		t.Errorf("after replay and drop: %d dead letters", l.Count)
	}
	texts := graph.Texts("dl-u0")
	if got := texts[len(texts)-1]; got != "[bot] dl-u0 #000" {
		t.Errorf("the replayed echo is %q, want the first message's", got)
	}
}
