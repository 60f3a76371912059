package kubernetes_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDockerBuildContextBuildsTheBinary stands in for `docker build`, which
// needs a Docker engine this machine does not have: it lays out the build
// context exactly as .dockerignore leaves it (with Docker's own pattern
// matcher), runs the Dockerfile's build command in it, and checks that the
// binary runs and accepts the rules file the image ships.
func TestDockerBuildContextBuildsTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the threadgate binary; skipped with -short")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	copied := 0
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
		copied++
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{".git", "docs", "Dockerfile", "examples/kubernetes"} {
		if _, err := os.Stat(filepath.Join(ctxDir, gone)); err == nil {
			t.Errorf("%s is in the build context; .dockerignore should leave it out", gone)
		}
	}

	// The Dockerfile's build step, as written there.
	bin := filepath.Join(t.TempDir(), "threadgate")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, "./cmd/threadgate")
	build.Dir = ctxDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the build context (%d files) does not build: %v\n%s", copied, err, out)
	}
	out, err := exec.Command(bin, "check", filepath.Join(ctxDir, "examples", "rules.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("threadgate check on the image's rules: %v\n%s", err, out)
	}
}
