package reload

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/rules"
)

// versionFile is a rules file whose one rule answers every message with
// the version's text.
func versionFile(version string) string {
	return fmt.Sprintf("version: 1\nrules:\n  - name: answer\n    do:\n      - reply: %q\n", version)
}

// brokenFile has two mistakes, on lines 3 and 5.
const brokenFile = "version: 1\nrules:\n  - name: answer\n    match: {txet: hi}\n    do:\n      - replie: x\n"

// answer returns the reply the rules in force give to a message, or "".
func answer(m *Manager) string {
	set := m.Rules()
	if set == nil {
		return ""
	}
	d := set.Evaluate(engine.Input{Event: &engine.Event{Kind: engine.KindMessage, Text: "ping"}})
	if len(d.Fired) == 0 || len(d.Fired[0].Steps) == 0 {
		return ""
	}
	s, _ := d.Fired[0].Steps[0].Fields()["text"].(string)
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestManagerReloadKeepsLastGood(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	writeFile(t, path, versionFile("v1"))
	clock := fakeclock.New(fakeclock.Start)
	m := NewManager(path, Options{Now: clock.Now})
	if m.Current() != nil || m.Rules() != nil {
		t.Fatal("rules in force before the first load")
	}
	var loaded []string
	var failures int
	m.Subscribe(func(f *rules.File) { loaded = append(loaded, f.Hash) })
	m.Subscribe(func(*rules.File) { panic("a broken subscriber") })
	m.SubscribeFailures(func(error) { failures++ })

	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	first := m.Current()
	if answer(m) != "v1" || st.Hash != first.Hash || st.RuleCount != 1 || !st.LoadedAt.Equal(fakeclock.Start) || !st.LastAttemptOK || len(st.LastError) != 0 || st.Path != path {
		t.Fatalf("after the first load: answer %q, status %+v", answer(m), st)
	}

	failedAt := clock.Advance(time.Minute)
	writeFile(t, path, brokenFile)
	err := m.Reload()
	var errs *rules.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Reload of a broken file = %v, want *Errors", err)
	}
	st = m.Status()
	if m.Current() != first || answer(m) != "v1" {
		t.Fatal("a broken file replaced the rules in force")
	}
	// The messages list the known keys, which other tests check; here
	// the positions matter.
	want := []string{path + `:4:13: rule "answer": match: unknown key "txet"`, path + `:6:9: rule "answer": do: unknown action "replie"`}
	if len(st.LastError) != len(want) || !strings.HasPrefix(st.LastError[0], want[0]) || !strings.HasPrefix(st.LastError[1], want[1]) {
		t.Errorf("LastError:\n%s\nwant lines starting with:\n%s", strings.Join(st.LastError, "\n"), strings.Join(want, "\n"))
	}
	if st.LastAttemptOK || !st.LastAttempt.Equal(failedAt) || !st.LoadedAt.Equal(fakeclock.Start) || st.Hash != first.Hash {
		t.Errorf("status after a failure: %+v", st)
	}

	os.Remove(path)
	if err := m.Reload(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reload of a missing file = %v, want ErrNotExist", err)
	}
	if answer(m) != "v1" {
		t.Fatal("a missing file unloaded the rules")
	}

	writeFile(t, path, versionFile("v2"))
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); answer(m) != "v2" || !st.LastAttemptOK || len(st.LastError) != 0 {
		t.Fatalf("after a fix: answer %q, status %+v", answer(m), st)
	}
	if len(loaded) != 2 || failures != 2 {
		t.Errorf("subscribers saw %d loads and %d failures, want 2 and 2", len(loaded), failures)
	}
}

// TestManagerReportsOnce checks that triggers on unchanged content do not
// reload, so a broken file is reported once, while Reload always tries.
func TestManagerReportsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	writeFile(t, path, versionFile("v1"))
	m := NewManager(path, Options{})
	var loads, failures int
	m.Subscribe(func(*rules.File) { loads++ })
	m.SubscribeFailures(func(error) { failures++ })
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := m.reload(false); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, path, brokenFile)
	for range 3 {
		if err := m.reload(false); err == nil {
			t.Fatal("reload of a broken file succeeded")
		}
	}
	os.Remove(path)
	for range 3 {
		_ = m.reload(false)
	}
	if loads != 1 || failures != 2 {
		t.Errorf("%d loads and %d failures, want 1 load and 2 failures (broken, missing)", loads, failures)
	}
	if err := m.Reload(); err == nil || failures != 3 {
		t.Errorf("a forced Reload did not try again: %v, %d failures", err, failures)
	}
}

func TestManagerRunsRuleTests(t *testing.T) {
	t.Parallel()
	const rulesWithTests = `version: 1
rules:
  - name: hello
    match: {text: hi}
    do: [reply: "Hello!"]
  - name: answer
    do: [reply: "v1"]
tests:
  - name: greets
    message: Hi!
    expect: {rule: hello, actions: [reply: "Hello!"]}
`
	const passing = "cases:\n  - name: answers\n    message: ping\n    expect: {actions: [reply: v1]}\n"
	const failing = "rules: rules.yaml\ncases:\n  - name: answers v2\n    message: ping\n    expect: {actions: [reply: v2]}\n"
	tests := []struct {
		name     string
		rules    string
		testFile string // "" for none
		want     []string
		tests    int
	}{
		{name: "tests key passes", rules: rulesWithTests, tests: 1},
		{name: "tests key fails", rules: strings.Replace(rulesWithTests, `"Hello!"]`, `"Hi!"]`, 1), want: []string{
			`RULES:9:5: rule test failed: case "greets": action 1: reply: text: got "Hi!", want "Hello!"`,
		}},
		{name: "test file passes", rules: rulesWithTests, testFile: passing, tests: 2},
		{name: "test file fails", rules: rulesWithTests, testFile: failing, want: []string{
			`TESTS:3:5: rule test failed: case "answers v2": action 1: reply: text: got "v1", want "v2"`,
		}},
		{name: "test file broken", rules: rulesWithTests, testFile: "cases:\n  - name: x\n    mesage: ping\n", want: []string{
			`TESTS:2:5: cases: case "x": expect: missing, expected what must happen, such as expect: {rule: agent-on-request}`,
			`TESTS:2:5: cases: case "x": no event: give message, postback, quick_reply, attachment or event`,
			`TESTS:3:5: cases: case "x": unknown key "mesage", expected one of: name, message, postback, quick_reply, attachment, event, standby, metadata, at, owner, paused, sender, page, expect`,
		}},
		{name: "test file names another rules file", rules: rulesWithTests, testFile: "rules: other.yaml\n" + passing, want: []string{
			`TESTS:1:1: rules: names DIR/other.yaml, but this file sits beside RULES and tests it; remove rules: or name rules.yaml`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "rules.yaml")
			writeFile(t, path, tt.rules)
			if tt.testFile != "" {
				writeFile(t, filepath.Join(dir, "rules.test.yaml"), tt.testFile)
			}
			m := NewManager(path, Options{})
			err := m.Reload()
			r := strings.NewReplacer(filepath.Join(dir, "rules.test.yaml"), "TESTS", path, "RULES", dir, "DIR")
			var got []string
			for _, l := range rules.ErrorLines(err) {
				got = append(got, r.Replace(l))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if err == nil && m.Status().Tests != tt.tests {
				t.Errorf("Tests = %d, want %d", m.Status().Tests, tt.tests)
			}
			if err != nil && m.Current() != nil {
				t.Errorf("rules in force after failed tests")
			}
		})
	}
}

// TestManagerConcurrentReaders reloads while readers evaluate, checking
// under -race that a reader sees one complete version.
func TestManagerConcurrentReaders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	writeFile(t, path, versionFile("v0"))
	var version atomic.Int64
	m := NewManager(path, Options{ReadFile: func(p string) ([]byte, error) {
		if p != path {
			return nil, fs.ErrNotExist
		}
		n := version.Load()
		return []byte(versionFile(fmt.Sprintf("v%d", n)) + fmt.Sprintf("  - name: answer-%d\n    do: [reply: x]\n", n)), nil
	}})
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			f := m.Current()
			want := strings.TrimPrefix(f.Set.Rules()[1].Name, "answer-")
			if got := answerOf(f.Set); got != "v"+want {
				errc <- fmt.Errorf("a reader saw the answer %q in the file of version %s", got, want)
				return
			}
		}
	}()
	for i := 1; i <= 200; i++ {
		version.Store(int64(i))
		if err := m.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func answerOf(set *engine.Set) string {
	d := set.Evaluate(engine.Input{Event: &engine.Event{Kind: engine.KindMessage, Text: "ping"}})
	s, _ := d.Fired[0].Steps[0].Fields()["text"].(string)
	return s
}

func TestParseWatchMode(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"fs", "poll", "off"} {
		if m, err := ParseWatchMode(s); err != nil || string(m) != s {
			t.Errorf("ParseWatchMode(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseWatchMode("inotify"); err == nil {
		t.Error("ParseWatchMode accepted inotify")
	}
}

// TestManagerSaysWhetherRulesStay checks the words of a rejected file: a
// rejection before any rules are in force says so, and only one after a
// successful load says that the rules in force stay.
func TestManagerSaysWhetherRulesStay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	var logs strings.Builder
	m := NewManager(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	steps := []struct {
		name    string
		content string // "" removes the file
		wantErr string // "" for a successful load
		wantLog string
	}{
		{name: "missing at start", wantErr: "read rules file: open " + path + ": no such file or directory", wantLog: "no rules are in force yet"},
		{name: "invalid at start", content: brokenFile, wantErr: path + ":4:13: ", wantLog: "no rules are in force yet"},
		{name: "valid", content: versionFile("v1"), wantLog: "rules loaded"},
		{name: "invalid later", content: brokenFile, wantErr: path + ":4:13: ", wantLog: "the rules in force stay"},
		{name: "missing later", wantErr: "no such file or directory; the rules in force stay until it is back", wantLog: "the rules in force stay"},
	}
	for _, st := range steps {
		logs.Reset()
		if st.content == "" {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		} else {
			writeFile(t, path, st.content)
		}
		err := m.Reload()
		switch {
		case st.wantErr == "" && err != nil:
			t.Errorf("%s: %v", st.name, err)
		case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
			t.Errorf("%s: err = %v, want one with %q", st.name, err, st.wantErr)
		case st.wantErr != "" && m.Current() == nil && strings.Contains(err.Error()+logs.String(), "in force stay"):
			t.Errorf("%s: says the rules in force stay, but none are: %v\n%s", st.name, err, logs.String())
		}
		if !strings.Contains(logs.String(), st.wantLog) {
			t.Errorf("%s: the log lacks %q:\n%s", st.name, st.wantLog, logs.String())
		}
	}
}
