// Package testbinary builds a main package for tests that run it as a
// child process, such as the load tool's smoke run, the durability tests
// and the replicas' kill test.
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
// Main builds in TestMain, once per run of the test command for all the
// packages that ask for the same binary (the build is kept under the
// temporary directory, keyed by the settings and the module's sources):
//
//	var threadgateBin string
//
//	func TestMain(m *testing.M) {
//		testbinary.Main(m, "../threadgate", &threadgateBin)
//	}
package testbinary

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
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
		out, err := shared(pkg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testbinary: building", pkg+":", err)
			return 1
		}
		*bin = out
	}
	return m.Run()
}

// shared returns the binary of pkg built with this test binary's settings,
// building it once for every test package of one run: the binary is kept
// under the temporary directory, named by a hash of the settings and of
// every source file of the module (any change to the code is a new build),
// and a lock keeps two packages that start at once from linking it twice.
// Other builds of the binary left there are removed once unused for a day
// (another checkout's tests may be running one).
// staleBuild is how long a build is kept unused.
const staleBuild = 24 * time.Hour

func shared(pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	key, err := sourceKey(root, pkg)
	if err != nil {
		return "", err
	}
	base := filepath.Join(os.TempDir(), "threadgate-testbinary")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(base, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	out := filepath.Join(base, key, filepath.Base(filepath.Clean(pkg)))
	if _, err := os.Stat(out); err == nil {
		_ = os.Chtimes(filepath.Dir(out), time.Now(), time.Now()) // in use
		return out, nil
	}
	if entries, err := os.ReadDir(base); err == nil {
		for _, e := range entries {
			// Another checkout's test run may be using a recent build: only
			// builds unused for a day are removed.
			if info, err := e.Info(); err == nil && e.IsDir() && e.Name() != key && time.Since(info.ModTime()) > staleBuild {
				os.RemoveAll(filepath.Join(base, e.Name()))
			}
		}
	}
	_ = os.Chtimes(filepath.Dir(out), time.Now(), time.Now()) // in use
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	if err := Build("", pkg, tmp); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// sourceKey hashes what a build of pkg depends on in this run: the build
// settings, the Go version, the package's path from the module root, and
// every file of the module but tests, test data and hidden directories.
func sourceKey(root, pkg string) (string, error) {
	h := sha256.New()
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, filepath.Join(wd, pkg))
	if err != nil {
		return "", err
	}
	fmt.Fprintln(h, runtime.Version(), runtime.GOOS, runtime.GOARCH, rel, strings.Join(Flags(), " "), strings.Join(env()[len(os.Environ()):], " "))
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, "_test.go") || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", strings.TrimPrefix(path, root), len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}
