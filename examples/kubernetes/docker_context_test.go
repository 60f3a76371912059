package kubernetes_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// dockerignore returns Docker's own matcher for the repository's
// .dockerignore.
func dockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	return pm
}

func TestDockerignore(t *testing.T) {
	t.Parallel()
	pm := dockerignore(t)
	tests := []struct {
		path    string
		ignored bool
	}{
		// What the build needs.
		{"go.mod", false},
		{"go.sum", false},
		{"cmd/threadgate/main.go", false},
		{"examples/rules.yaml", false},
		{"examples/embed.go", false},
		{"gateway/gateway.go", false},
		// What it does not, and what must never reach the daemon.
		{".git/config", true},
		{".env", true},
		{"metrics/e2e_test.go", true},
		{"messenger/testdata/batch.json", true},
		{"examples/kubernetes/deployment.yaml", true},
		{"docs/operate.md", true},
	}
	for _, tt := range tests {
		got, err := pm.MatchesOrParentMatches(tt.path)
		if err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		if got != tt.ignored {
			what := "lets %s into the build context"
			if !tt.ignored {
				what = "excludes %s, which the build needs"
			}
			t.Errorf(".dockerignore "+what, tt.path)
		}
	}
}

// buildContext copies the repository into a new directory as `docker
// build` sends it to the daemon: without what .dockerignore excludes.
func buildContext(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	pm := dockerignore(t)
	ctxDir := t.TempDir()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		ignored, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if ignored {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(ctxDir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ctxDir
}

// buildInputs lists, with `go list`, the files of this module that the
// Dockerfile's build of ./cmd/threadgate (CGO_ENABLED=0, linux) compiles
// or embeds, run in dir (which names where): one "IMPORT/PATH/FILE" per
// file.
func buildInputs(t *testing.T, where, dir string) []string {
	t.Helper()
	const format = `{{if and .Module .Module.Main}}{{$p := .ImportPath}}` +
		`{{range .GoFiles}}{{$p}} {{.}}{{"\n"}}{{end}}{{range .SFiles}}{{$p}} {{.}}{{"\n"}}{{end}}` +
		`{{range .SysoFiles}}{{$p}} {{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$p}} {{.}}{{"\n"}}{{end}}{{end}}`
	cmd := exec.Command("go", "list", "-deps", "-f", format, "./cmd/threadgate")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", where, err, stderr.String())
	}
	return strings.Fields(strings.ReplaceAll(string(out), " ", "/"))
}

// TestDockerBuildContextHoldsTheBuild stands in for `docker build`, which
// needs a Docker engine this machine does not have. It lays out the build
// context as .dockerignore leaves it (with Docker's own pattern matcher)
// and checks with `go list` that the context holds every file the
// Dockerfile's build compiles or embeds (CGO_ENABLED=0, linux: the file
// set that build sees). TestDockerfile checks the Dockerfile's own flags.
//
// It does not compile the context: a build in another directory shares
// nothing with what `go test` compiled (the paths differ), which cost 15 s
// of the test command for what the file check already proves, since the
// same files build in the repository.
func TestDockerBuildContextHoldsTheBuild(t *testing.T) {
	t.Parallel()
	ctxDir := buildContext(t)
	for _, gone := range []string{".git", "docs", "Dockerfile", "examples/kubernetes"} {
		if _, err := os.Stat(filepath.Join(ctxDir, gone)); err == nil {
			t.Errorf("%s is in the build context; .dockerignore should leave it out", gone)
		}
	}
	inputs := buildInputs(t, "the repository", repoRoot)
	if len(inputs) == 0 {
		t.Fatal("go list names no file of ./cmd/threadgate")
	}
	inContext := buildInputs(t, "the build context", ctxDir)
	for _, f := range inputs {
		if !slices.Contains(inContext, f) {
			t.Errorf("the build context lacks %s, which the Docker build reads", f)
		}
	}
}
