package testbinary

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		name     string
		settings []debug.BuildSetting
		want     []string
	}{
		{"none", nil, nil},
		{"race", []debug.BuildSetting{{Key: "-buildmode", Value: "exe"}, {Key: "-race", Value: "true"}, {Key: "CGO_ENABLED", Value: "1"}}, []string{"-race"}},
		{"race off", []debug.BuildSetting{{Key: "-race", Value: "false"}}, nil},
		{"tags, trimpath and gcflags", []debug.BuildSetting{
			{Key: "-tags", Value: "netgo,osusergo"}, {Key: "-trimpath", Value: "true"}, {Key: "-gcflags", Value: "all=-N -l"},
			{Key: "-ldflags", Value: "-s -w"}, {Key: "vcs.revision", Value: "abc"},
		}, []string{"-tags=netgo,osusergo", "-trimpath", "-gcflags=all=-N -l"}},
	}
	for _, tt := range tests {
		if got := flags(tt.settings); !slices.Equal(got, tt.want) {
			t.Errorf("%s: flags = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFlagsOfThisBinary(t *testing.T) {
	if got := slices.Contains(Flags(), "-race"); got != raceEnabled {
		t.Errorf("Flags() = %q: -race is there %v, the test runs under the race detector %v", Flags(), got, raceEnabled)
	}
}

// TestBuild builds a small command with the settings of this test binary
// and runs it: it was built with the race detector exactly when this test
// runs with it.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "hello")
	if err := Build("", "./testdata/hello", bin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("running the binary: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("hello, race detector %v\n", raceEnabled); string(out) != want {
		t.Errorf("the binary said %q, want %q", out, want)
	}
}

func TestBuildFailureCarriesTheOutput(t *testing.T) {
	err := Build(t.TempDir(), "./no/such/package", filepath.Join(t.TempDir(), "x"))
	if err == nil || !strings.Contains(err.Error(), "no/such/package") || !strings.Contains(err.Error(), "go build ") {
		t.Errorf("err = %v, want the go command and its output naming the package", err)
	}
}
