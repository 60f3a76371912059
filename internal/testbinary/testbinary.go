// Package testbinary builds a main package for tests that run it as a
// child process, such as the load tool's smoke run and the check of the
// Docker build context.
//
// It builds with the settings the running test binary was built with
// (-race, -tags, -trimpath, -gcflags, CGO_ENABLED), so the build reuses
// every package that `go test` has just compiled and costs one compile of
// the main package and a link: `go test` starts the tests of a package
// only once the packages before it in import-path order are built, and
// cmd/threadgate, whose tests compile all of the binary's dependencies,
// comes before every package that runs the binary. A build with other
// settings would compile all of those dependencies again; on the 2-core
// CI machine, with an empty build cache, that is more than two minutes per
// package. Built with -race, the child process also runs under the race
// detector, which then checks the real binary too.
//
// Build once per test binary, in TestMain:
//
//	var threadgateBin string
//
//	func TestMain(m *testing.M) {
//		testbinary.Main(m, "../threadgate", &threadgateBin)
//	}
package testbinary

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// Flags returns the `go build` flags that reproduce the settings of the
// running binary which change how packages compile: -race, -tags,
// -trimpath and -gcflags, as recorded in its build information.
func Flags() []string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return flags(info.Settings)
}

// flags picks the build flags out of a binary's build settings.
func flags(settings []debug.BuildSetting) []string {
	var out []string
	for _, s := range settings {
		switch s.Key {
		case "-race", "-trimpath":
			if s.Value == "true" {
				out = append(out, s.Key)
			}
		case "-tags", "-gcflags":
			if s.Value != "" {
				out = append(out, s.Key+"="+s.Value)
			}
		}
	}
	return out
}

// env returns the environment for `go build`: this process's, with
// CGO_ENABLED as the running binary was built with (the race detector
// needs cgo, and a different CGO_ENABLED compiles packages again).
func env() []string {
	e := os.Environ()
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "CGO_ENABLED" {
				e = append(e, "CGO_ENABLED="+s.Value)
			}
		}
	}
	return e
}

// Build runs `go build` with Flags in dir ("" for the current directory)
// to build the main package pkg (an import path, or a directory such as
// "./cmd/threadgate") into the file out. The error carries the build's
// output.
func Build(dir, pkg, out string) error {
	args := append([]string{"build"}, Flags()...)
	args = append(args, "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env()
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, output)
	}
	return nil
}

// Main is a TestMain: it builds pkg (a path relative to the test's
// package directory, e.g. "../threadgate") into a temporary directory,
// stores the binary's path in *bin, runs the tests, removes the directory
// and exits with the tests' code. A build that fails is reported and exits
// with code 1 before any test runs. With -short, nothing is built and *bin
// stays "": tests that need the binary skip under -short.
func Main(m *testing.M, pkg string, bin *string) {
	os.Exit(run(m, pkg, bin))
}

func run(m *testing.M, pkg string, bin *string) int {
	flag.Parse() // for -short; m.Run would parse the flags later
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "testbinary")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testbinary:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, filepath.Base(filepath.Clean(pkg)))
		if err := Build("", pkg, out); err != nil {
			fmt.Fprintln(os.Stderr, "testbinary: building", pkg+":", err)
			return 1
		}
		*bin = out
	}
	return m.Run()
}
