package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/examples"
)

// TestServeWithoutValidRules starts serve without a rules file it can put
// in force: it exits 1 before it listens, says why on stderr, and never
// claims that rules in force stay, since there are none.
func TestServeWithoutValidRules(t *testing.T) {
	live := map[string]string{"PAGE_ACCESS_TOKEN": "token", "APP_SECRET": "secret"}
	tests := []struct {
		name  string
		files map[string]string // files written in the working directory
		args  []string
		env   map[string]string
		want  []string // on stderr
	}{
		{name: "no rules.yaml, live mode", env: live,
			want: []string{"threadgate: no rules file, not starting: read rules file: open rules.yaml: no such file or directory", "give the rules file with --rules PATH or THREADGATE_RULES"}},
		{name: "a missing file given", args: []string{"--rules", "bot.yaml"},
			want: []string{"threadgate: no rules file, not starting: read rules file: open bot.yaml: no such file or directory"}},
		{name: "an invalid file", files: map[string]string{"rules.yaml": "version: 1\nrules:\n  - name: a\n    do: [replie: hi]\n"},
			want: []string{"threadgate: the rules file is invalid, not starting:", `rules.yaml:4:10: rule "a": do: unknown action "replie"`}},
		{name: "a failing rule test", files: map[string]string{
			"rules.yaml":      "version: 1\nrules:\n  - name: a\n    do: [reply: hi]\n",
			"rules.test.yaml": "cases:\n  - name: greets\n    message: hello\n    expect: {actions: [reply: hello]}\n"},
			want: []string{"threadgate: the rules file is invalid, not starting:", `rules.test.yaml:2:5: rule test failed: case "greets"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			for name, content := range tt.files {
				if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := parseServe(append([]string{"--addr", "127.0.0.1:0"}, tt.args...), env(tt.env), io.Discard, false)
			if err != nil {
				t.Fatal(err)
			}
			var stderr, logs bytes.Buffer
			code := runServer(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), io.Discard, &stderr)
			if code != exitFailed {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			all := stderr.String() + logs.String()
			if strings.Contains(all, "in force stay") {
				t.Errorf("says that rules in force stay, but none are:\n%s", all)
			}
			if !strings.Contains(logs.String(), "no rules are in force yet") {
				t.Errorf("the log lacks \"no rules are in force yet\":\n%s", logs.String())
			}
		})
	}
}

// TestPickRules checks the one choice of the rules file that serve,
// check, test and explain make.
func TestPickRules(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		name              string
		path              string
		explicit, sandbox bool
		rulesYAML         bool // a rules.yaml exists in the working directory
		want              string
		embedded          bool
	}{
		{name: "sandbox, nothing here", sandbox: true, want: examples.DefaultRulesName, embedded: true},
		{name: "sandbox, rules.yaml here", sandbox: true, rulesYAML: true, want: "rules.yaml"},
		{name: "live, nothing here", want: "rules.yaml"},
		{name: "given, missing", path: "bot.yaml", explicit: true, sandbox: true, want: "bot.yaml"},
		{name: "given as rules.yaml, missing", path: "rules.yaml", explicit: true, sandbox: true, want: "rules.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "rules.yaml"))
			if tt.rulesYAML {
				if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("version: 1\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			src := pickRules(tt.path, tt.explicit, tt.sandbox)
			if src.Path != tt.want || src.Embedded != tt.embedded {
				t.Errorf("pickRules = %q (embedded %v), want %q (embedded %v)", src.Path, src.Embedded, tt.want, tt.embedded)
			}
			if tt.embedded {
				data, err := src.Read(src.Path)
				if err != nil || !bytes.Equal(data, examples.DefaultRules) {
					t.Errorf("the embedded rules read as %d bytes, %v", len(data), err)
				}
			}
		})
	}
}

// TestExplainWithoutRulesFile runs explain where there is no rules.yaml:
// like serve, it falls back to the embedded example in sandbox mode, and
// says so; with a page token configured it fails with a clear message.
func TestExplainWithoutRulesFile(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("THREADGATE_RULES", "")
	t.Setenv("PAGE_ACCESS_TOKEN", "")
	t.Setenv("THREADGATE_PAGES_FILE", "")
	var out, errOut bytes.Buffer
	if code := run([]string{"explain", "chat with agent"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "chat-with-agent") || !strings.Contains(errOut.String(), "explaining the embedded example rules") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}

	t.Setenv("PAGE_ACCESS_TOKEN", "token")
	out.Reset()
	errOut.Reset()
	if code := run([]string{"explain", "chat with agent"}, &out, &errOut); code != exitFailed {
		t.Fatalf("exit %d with a token and no rules.yaml, want %d", code, exitFailed)
	}
	if got := errOut.String(); got != "read rules file: open rules.yaml: no such file or directory\n" {
		t.Errorf("stderr = %q", got)
	}
}

// TestExamplesOutOfTheBox runs the README's commands on the examples as a
// new user would: `threadgate test examples/*.yaml` and `threadgate check
// examples/*.yaml` pass, each case runs once, and each rules file has tests.
func TestExamplesOutOfTheBox(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(append([]string{"test"}, paths...), &out, &errOut); code != exitOK {
		t.Fatalf("threadgate test examples/*.yaml: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	// Each case once: the sum of the cases of the test files.
	cases := 0
	for _, p := range paths {
		if strings.HasSuffix(p, ".test.yaml") {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			cases += strings.Count(string(data), "\n  - name: ")
		}
	}
	if want := fmt.Sprintf("%d passed, 0 failed\n", cases); cases == 0 || out.String() != want {
		t.Errorf("threadgate test examples/*.yaml printed %q, want %q", out.String(), want)
	}

	out.Reset()
	errOut.Reset()
	if code := run(append([]string{"check"}, paths...), &out, &errOut); code != exitOK {
		t.Fatalf("threadgate check examples/*.yaml: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if path, rest, ok := strings.Cut(l, ": ok, "); ok {
			lines[path] = rest
		}
	}
	rulesFiles := 0
	for _, p := range paths {
		if strings.HasSuffix(p, ".test.yaml") {
			continue
		}
		rulesFiles++
		if !strings.Contains(lines[p], "rule tests passed") {
			t.Errorf("check examples/*.yaml does not say %s is ok with its rule tests:\n%s", p, out.String())
		}
	}
	if len(lines) != rulesFiles {
		t.Errorf("check examples/*.yaml printed %d ok lines for %d rules files:\n%s", len(lines), rulesFiles, out.String())
	}
}

// TestReadmeTestFileShips checks that the test file the README shows is the
// one shipped beside the seed example, so that what the README says runs.
func TestReadmeTestFileShips(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```yaml\nrules: rules.yaml\n")
	block, _, ok2 := strings.Cut(block, "```\n")
	if !ok || !ok2 {
		t.Fatal("the README shows no test file (a ```yaml block starting with rules: rules.yaml)")
	}
	shipped, err := os.ReadFile(filepath.Join("..", "..", "examples", "rules.test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(shipped), "rules: rules.yaml\n")
	if body != block {
		t.Errorf("examples/rules.test.yaml differs from the README's test file:\n--- shipped\n%s--- README\n%s", body, block)
	}
	if !bytes.Equal(shipped, examples.DefaultTests) {
		t.Error("the embedded test file differs from examples/rules.test.yaml")
	}
}
