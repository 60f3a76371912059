package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/rules"
)

// watched starts a Manager of dir/rules.yaml with Run in the given mode
// and returns it with a counter of successful loads and one of attempts
// (successful or not). The safety-net poll is set far away so that only the
// mode under test can pick up changes.
func watched(t *testing.T, path string, mode WatchMode, pollInterval time.Duration) (m *Manager, loads, attempts *atomic.Int64) {
	t.Helper()
	m = NewManager(path, Options{Watch: mode, Debounce: 20 * time.Millisecond, PollInterval: pollInterval})
	loads, attempts = new(atomic.Int64), new(atomic.Int64)
	m.Subscribe(func(*rules.File) { loads.Add(1); attempts.Add(1) })
	m.SubscribeFailures(func(error) { attempts.Add(1) })
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if mode == WatchFS {
		poll.Until(t, "the watch to be armed", func() bool { return m.arms.Load() > 0 })
	}
	return m, loads, attempts
}

// replaceFile writes content to a temporary file in the same directory and
// renames it over path, as vim and sed -i save.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".rules.yaml.swp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// configMap lays out a directory the way the kubelet's AtomicWriter does:
// the files in a timestamped directory, a ..data symlink to it, and each
// file as a symlink through ..data.
type configMap struct {
	t       *testing.T
	dir     string
	current string
	n       int
}

func newConfigMap(t *testing.T, dir, content string) *configMap {
	c := &configMap{t: t, dir: dir}
	c.update(content)
	if err := os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(dir, "rules.yaml")); err != nil {
		t.Fatal(err)
	}
	return c
}

// update writes a new timestamped directory, points ..data at it with an
// atomic rename of a new symlink, and removes the old directory.
func (c *configMap) update(content string) {
	c.n++
	ts := fmt.Sprintf("..2026_01_05_10_00_%02d.%d", c.n, 1000+c.n)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		c.t.Fatal(err)
	}
	writeFile(c.t, filepath.Join(c.dir, ts, "rules.yaml"), content)
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if c.current != "" {
		if err := os.RemoveAll(filepath.Join(c.dir, c.current)); err != nil {
			c.t.Fatal(err)
		}
	}
	c.current = ts
}

// TestWatch changes the rules file in every way that editors, Docker and
// Kubernetes do, and checks each time that the new rules answer, and that
// a broken version keeps the last good one.
func TestWatch(t *testing.T) {
	t.Parallel()
	type step func(t *testing.T, dir, path, content string)
	inPlace := func(t *testing.T, _, path, content string) { writeFile(t, path, content) }
	rename := func(t *testing.T, _, path, content string) { replaceFile(t, path, content) }
	deleteCreate := func(t *testing.T, _, path, content string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, content)
	}
	// burst writes 50 drafts, then the content. The drafts are broken, so
	// that the last good version is known whichever of them a reload
	// happens to read.
	burst := func(t *testing.T, _, path, content string) {
		for i := range 50 {
			writeFile(t, path, fmt.Sprintf("version: 1\nrules: [draft %d\n", i))
		}
		replaceFile(t, path, content)
	}
	tests := []struct {
		name   string
		mode   WatchMode
		poll   time.Duration
		change step
		k8s    bool
	}{
		{name: "in-place write", mode: WatchFS, change: inPlace},
		{name: "rename over", mode: WatchFS, change: rename},
		{name: "delete and create", mode: WatchFS, change: deleteCreate},
		{name: "burst", mode: WatchFS, change: burst},
		{name: "configmap symlink swap", mode: WatchFS, k8s: true},
		{name: "poll only", mode: WatchPoll, poll: 10 * time.Millisecond, change: inPlace},
		{name: "poll only, rename", mode: WatchPoll, poll: 10 * time.Millisecond, change: rename},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "rules.yaml")
			var cm *configMap
			change := tt.change
			if tt.k8s {
				cm = newConfigMap(t, dir, versionFile("v1"))
				change = func(_ *testing.T, _, _, content string) { cm.update(content) }
			} else {
				writeFile(t, path, versionFile("v1"))
			}
			pollInterval := tt.poll
			if pollInterval == 0 {
				pollInterval = time.Hour
			}
			m, _, attempts := watched(t, path, tt.mode, pollInterval)

			for _, v := range []string{"v2", "v3"} {
				change(t, dir, path, versionFile(v))
				poll.Until(t, "the rules answer "+v, func() bool { return answer(m) == v })

				// A broken version is refused and the last good one stays.
				before := m.Status().LastAttempt
				change(t, dir, path, brokenFile)
				poll.Until(t, "the broken file to be refused", func() bool {
					st := m.Status()
					return !st.LastAttemptOK && st.LastAttempt.After(before) && len(st.LastError) == 2
				})
				if got := answer(m); got != v {
					t.Fatalf("after a broken version the rules answer %q, want %q", got, v)
				}
			}
			if tt.name == "burst" && attempts.Load() > 40 {
				// Drafts may be seen, but not one reload per write.
				t.Errorf("%d reloads for four bursts of 51 writes: the debounce does not work", attempts.Load())
			}
		})
	}
}

// TestWatchDirectoryReplaced removes the rules directory and creates it
// again: the old rules stay meanwhile and the watch is armed again.
func TestWatchDirectoryReplaced(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "threadgate")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rules.yaml")
	writeFile(t, path, versionFile("v1"))
	m, _, _ := watched(t, path, WatchFS, time.Hour)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the missing file to be noticed", func() bool { return !m.Status().LastAttemptOK })
	if answer(m) != "v1" {
		t.Fatal("the rules were unloaded when the directory went away")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, versionFile("v2"))
	poll.Until(t, "the rules in the new directory", func() bool { return answer(m) == "v2" })
	poll.Until(t, "the watch to be armed again", func() bool { return m.arms.Load() > 1 })
	// The new directory is watched: a later change is seen too.
	replaceFile(t, path, versionFile("v3"))
	poll.Until(t, "a change in the new directory", func() bool { return answer(m) == "v3" })
}

// TestWatchTestFile checks that a change to the test file beside the
// rules file triggers a reload that runs it.
func TestWatchTestFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	writeFile(t, path, versionFile("v1"))
	m, _, _ := watched(t, path, WatchFS, time.Hour)
	// Arming the watch triggers a reload of its own; once a change of the
	// rules file has loaded, that trigger is used up, and only the watch
	// of the test file can bring the next reload.
	replaceFile(t, path, versionFile("v2"))
	poll.Until(t, "the rules answer v2", func() bool { return answer(m) == "v2" })
	replaceFile(t, filepath.Join(dir, "rules.test.yaml"), "cases:\n  - name: answers v3\n    message: ping\n    expect: {actions: [reply: v3]}\n")
	poll.Until(t, "the failing test to be reported", func() bool {
		st := m.Status()
		return !st.LastAttemptOK && len(st.LastError) == 1
	})
	writeFile(t, path, versionFile("v3"))
	poll.Until(t, "v3 with its test passing", func() bool { return answer(m) == "v3" && m.Status().Tests == 1 })
}

// TestRequestWithWatchOff checks that with no watch, only explicit
// requests (SIGHUP) reload, even when the content did not change.
func TestRequestWithWatchOff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	writeFile(t, path, versionFile("v1"))
	m, loads, _ := watched(t, path, WatchOff, time.Hour)
	writeFile(t, path, versionFile("v2"))
	m.Request()
	poll.Until(t, "the requested reload", func() bool { return answer(m) == "v2" })
	m.Request()
	poll.Until(t, "a reload of the same content", func() bool { return loads.Load() == 3 })
}
