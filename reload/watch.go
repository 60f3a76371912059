package reload

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/threadgate/threadgate/rules"
)

// WatchMode is how a Manager notices that the rules file changed.
type WatchMode string

// Watch modes.
const (
	// WatchFS watches the file's directory with fsnotify (inotify on
	// Linux), plus a content-hash poll every DefaultSafetyPoll as a safety
	// net for what the watch misses (an overflow, NFS).
	WatchFS WatchMode = "fs"
	// WatchPoll only polls the content hash, every DefaultPoll: for file
	// systems that deliver no events, such as Docker Desktop's shares of
	// the host's files.
	WatchPoll WatchMode = "poll"
	// WatchOff does not look for changes: only SIGHUP and POST /-/reload
	// reload.
	WatchOff WatchMode = "off"
)

// ParseWatchMode reads a watch mode: fs, poll or off.
func ParseWatchMode(s string) (WatchMode, error) {
	switch m := WatchMode(s); m {
	case WatchFS, WatchPoll, WatchOff:
		return m, nil
	}
	return "", fmt.Errorf("unknown watch mode %q, expected fs, poll or off", s)
}

// Limits of the debounce and of the re-arming backoff.
const (
	maxDebounce = 2 * time.Second // a steady stream of events still reloads
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
)

// Run serves reload triggers until ctx is done: one goroutine reloads after
// each burst of triggers, and, by the Manager's WatchMode, a watcher of the
// file's directory and a poll send triggers. Call Reload once before Run
// to load the first rules.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { m.loop(ctx) })
	switch m.opts.Watch {
	case WatchFS:
		wg.Go(func() { m.watchDir(ctx) })
		wg.Go(func() { m.poll(ctx) })
	case WatchPoll:
		wg.Go(func() { m.poll(ctx) })
	}
	if m.opts.Watch == WatchOff {
		m.log.Info("not watching the rules file: SIGHUP and POST /-/reload reload it", "path", m.path)
	} else {
		m.log.Info("watching the rules file", "path", m.path, "watch", string(m.opts.Watch), "poll", m.opts.PollInterval.String())
	}
	wg.Wait()
}

// loop is the one goroutine that reloads on triggers.
func (m *Manager) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.trigger:
		}
		// Debounce: wait until the triggers have been quiet for a while,
		// so that an editor's write, rename and chmod make one reload.
		quiet := time.NewTimer(m.opts.Debounce)
		limit := time.NewTimer(maxDebounce)
	wait:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				limit.Stop()
				return
			case <-m.trigger:
				quiet.Reset(m.opts.Debounce)
			case <-quiet.C:
				break wait
			case <-limit.C:
				break wait
			}
		}
		quiet.Stop()
		limit.Stop()
		_ = m.reload(m.force.Swap(false)) // logged and recorded in Status
	}
}

// poll reads the files every poll interval and sends a trigger when their
// content differs from the last attempt's: an unchanged file costs a read
// and a hash, and does not hold back the debounce of other triggers.
func (m *Manager) poll(ctx context.Context) {
	t := time.NewTicker(m.opts.PollInterval)
	defer t.Stop()
	// sent is the content last signalled since the attempt named attempt; a
	// content is signalled once, so that ticks during the debounce do not
	// hold the reload back.
	var sent, attempt string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last := ""
		if p := m.attempted.Load(); p != nil {
			last = *p
		}
		if last != attempt {
			attempt, sent = last, ""
		}
		if k := m.contentKey(); k != last && k != sent {
			sent = k
			m.Changed()
		}
	}
}

// contentKey reads the files and returns the key reload would compute.
func (m *Manager) contentKey() string {
	return contentKey(Read(m.path, m.opts.ReadFile))
}

// watchDir watches the directory of the rules file, never the file: an
// editor that saves by renaming a new file over the old one, or
// Kubernetes' swap of the ..data symlink of a ConfigMap volume, replaces
// the file, and a watch on the file itself would be left on the old one.
// When the directory itself goes away or the watch fails, it is armed
// again with backoff.
func (m *Manager) watchDir(ctx context.Context) {
	dir := filepath.Dir(m.path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	names := map[string]bool{filepath.Base(m.path): true, filepath.Base(rules.TestFilePath(m.path)): true}
	backoff := minBackoff
	failing := false
	for ctx.Err() == nil {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			if err = w.Add(dir); err != nil {
				w.Close()
			}
		}
		if err != nil {
			if !failing {
				m.log.Warn("cannot watch the rules directory; trying again, and the poll still picks up changes", "dir", dir, "error", err.Error())
				failing = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if failing {
			m.log.Info("watching the rules directory again", "dir", dir)
			failing = false
		}
		backoff = minBackoff
		m.arms.Add(1)
		// Something may have changed while nothing watched; the hash
		// check makes this free when nothing did.
		m.Changed()
		m.consume(ctx, w, dir, names)
		w.Close()
	}
}

// consume turns the watcher's events into triggers until ctx is done or
// the watch is lost.
func (m *Manager) consume(ctx context.Context, w *fsnotify.Watcher, dir string, names map[string]bool) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == dir {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					m.log.Warn("the rules directory was removed or moved; watching for it to come back", "dir", dir)
					m.Changed()
					return
				}
				continue
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			// Do not interpret the op: the same change shows up as
			// different ops on different systems. Kubernetes' ConfigMap
			// volumes name their internals ..data, ..data_tmp, ..2026_…
			if base := filepath.Base(ev.Name); names[base] || strings.HasPrefix(base, "..") {
				m.Changed()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			m.Changed()
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				m.log.Warn("the rules directory watch overflowed; reloading to be sure", "dir", dir)
				continue
			}
			m.log.Warn("the rules directory watch failed; arming it again", "dir", dir, "error", err.Error())
			return
		}
	}
}
