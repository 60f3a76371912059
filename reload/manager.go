// Package reload keeps the rules in force: it reads a rules file with the
// rule-test file beside it (Read), accepts it only when it is valid and
// every rule test passes (Check), swaps it in whole (Manager), notices
// changes (Run: fsnotify, a poll, explicit requests), and serves the admin
// endpoints GET /-/rules, POST /-/reload and POST /-/explain (MountAdmin).
//
// The rules package parses, validates, lints and compiles a file; this
// package decides which file is in force. A file that fails to load never
// changes what is live: the last good rules stay.
package reload

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules"
)

// Manager is the one owner of the rules in force. It loads the rules file
// and the test file beside it, runs the rule tests, and swaps the complete
// new *rules.File in with one atomic store; a file that fails to load or whose
// tests fail changes nothing live. Readers call Current once per event and
// use that *rules.File to the end, so an event never sees a mix of two versions.
//
// Reloads happen on Reload (synchronous, e.g. POST /-/reload) and, while
// Run runs, on the triggers Changed and Request (fsnotify, the poll, SIGHUP),
// which one goroutine serves after a short debounce.
type Manager struct {
	path string
	opts Options
	log  *slog.Logger

	cur     atomic.Pointer[rules.File]
	trigger chan struct{} // capacity 1: a pending reload
	force   atomic.Bool   // the pending reload was asked for explicitly

	reloadMu    sync.Mutex             // serializes reloads
	lastAttempt string                 // content key of the last attempt (under reloadMu)
	lastErr     error                  // its error (under reloadMu)
	attempted   atomic.Pointer[string] // lastAttempt, for the poll to read
	arms        atomic.Int64           // times the directory watch was armed

	mu       sync.Mutex // guards what follows
	status   Status
	subs     []func(*rules.File)
	failSubs []func(error)
}

// Options configures a Manager. Zero values take the defaults.
type Options struct {
	// Logger receives reload logs; a discarding logger when nil.
	Logger *slog.Logger
	// Now is the clock of reload times and of rule tests without `at`;
	// time.Now when nil.
	Now func() time.Time
	// ReadFile reads the rules and test files; os.ReadFile when nil.
	ReadFile ReadFunc
	// Watch is how Run notices changes: WatchFS (the default), WatchPoll
	// or WatchOff.
	Watch WatchMode
	// Debounce is how long a burst of changes must be quiet before the
	// reload; DefaultDebounce when zero.
	Debounce time.Duration
	// PollInterval is the interval of the content-hash poll: the safety
	// net of WatchFS (DefaultSafetyPoll when zero) and the only trigger of
	// WatchPoll (DefaultPoll when zero).
	PollInterval time.Duration
}

// Defaults of Options.
const (
	DefaultDebounce   = 150 * time.Millisecond
	DefaultSafetyPoll = 30 * time.Second
	DefaultPoll       = 5 * time.Second
)

// Status describes the rules in force and the last reload attempt; it is
// the JSON of GET /-/rules.
type Status struct {
	// Path is the rules file's path.
	Path string `json:"path"`
	// Hash is the hex SHA-256 of the rules in force.
	Hash string `json:"hash"`
	// LoadedAt is when the rules in force were loaded.
	LoadedAt time.Time `json:"loaded_at"`
	// RuleCount is the number of rules in force.
	RuleCount int `json:"rule_count"`
	// Tests is the number of rule tests that passed when they were loaded.
	Tests int `json:"tests"`
	// LastAttempt is when a reload was last attempted.
	LastAttempt time.Time `json:"last_attempt"`
	// LastAttemptOK is true when that attempt succeeded.
	LastAttemptOK bool `json:"last_attempt_ok"`
	// LastError holds the last attempt's errors, one `PATH:LINE:COL:
	// message` per item; empty after a success.
	LastError []string `json:"last_error"`
	// Watch is how changes are noticed: fs, poll or off.
	Watch WatchMode `json:"watch"`
}

// NewManager returns a Manager of the rules file at path. Nothing is loaded
// until Reload.
func NewManager(path string, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Watch == "" {
		opts.Watch = WatchFS
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultSafetyPoll
		if opts.Watch == WatchPoll {
			opts.PollInterval = DefaultPoll
		}
	}
	m := &Manager{
		path:    path,
		opts:    opts,
		log:     opts.Logger,
		trigger: make(chan struct{}, 1),
	}
	m.status = Status{Path: path, LastError: []string{}, Watch: opts.Watch}
	return m
}

// Path returns the rules file's path.
func (m *Manager) Path() string { return m.path }

// Current returns the rules in force, nil before the first successful
// load. Call it once per event and use the result to the end.
func (m *Manager) Current() *rules.File { return m.cur.Load() }

// Rules returns the rule set in force, nil before the first successful
// load; it suits gateway.Config.Rules.
func (m *Manager) Rules() *engine.Set {
	if f := m.cur.Load(); f != nil {
		return f.Set
	}
	return nil
}

// Status returns the rules in force and the outcome of the last attempt.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.LastError = append([]string{}, s.LastError...)
	return s
}

// Subscribe registers fn to be called with each new *rules.File after it is
// swapped in, in order, on the reloading goroutine. fn must not call
// Reload. Subscribe does not call fn for the rules already in force.
func (m *Manager) Subscribe(fn func(*rules.File)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs = append(m.subs, fn)
}

// SubscribeFailures registers fn to be called with the error of each
// rejected reload; the rules in force stay. fn must not call Reload.
func (m *Manager) SubscribeFailures(fn func(error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failSubs = append(m.failSubs, fn)
}

// Changed tells the manager that the rules file may have changed (a watch
// event, a poll tick). It never blocks. While Run runs, a reload follows
// after the debounce, and only if the content differs from the last
// attempt's, so that a broken file is reported once.
func (m *Manager) Changed() { m.send() }

// Request asks for a reload even if the content looks unchanged (SIGHUP).
// It never blocks; the reload follows after the debounce while Run runs.
func (m *Manager) Request() {
	m.force.Store(true)
	m.send()
}

func (m *Manager) send() {
	select {
	case m.trigger <- struct{}{}:
	default: // a reload is already pending; it will read the latest file
	}
}

// Reload loads the rules file now, even when its content looks unchanged,
// and returns why it was rejected, or nil once the new rules are in force.
// A rejected file leaves the rules in force as they were.
func (m *Manager) Reload() error { return m.reload(true) }

// reload loads the file; without force it does nothing when the content is
// the same as at the last attempt, and returns that attempt's error.
func (m *Manager) reload(force bool) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	now := m.opts.Now()

	files, err := Read(m.path, m.opts.ReadFile)
	key := contentKey(files, err)
	if !force && key == m.lastAttempt {
		return m.lastErr
	}
	m.setAttempt(key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && m.cur.Load() != nil {
			err = fmt.Errorf("%w; the rules in force stay until it is back", err)
		}
		return m.failed(now, err)
	}
	c, err := Check(files, now)
	if err != nil {
		return m.failed(now, err)
	}
	m.lastErr = nil
	f := c.File
	m.cur.Store(f)

	m.mu.Lock()
	m.status.Hash = f.Hash
	m.status.LoadedAt = now
	m.status.RuleCount = f.RuleCount
	m.status.Tests = c.Tests
	m.status.LastAttempt = now
	m.status.LastAttemptOK = true
	m.status.LastError = []string{}
	subs := append([]func(*rules.File){}, m.subs...)
	m.mu.Unlock()

	m.log.Info("rules loaded", "path", m.path, "hash", f.Hash, "rule_count", f.RuleCount, "tests", c.Tests)
	for _, fn := range subs {
		m.call(func() { fn(f) })
	}
	return nil
}

// setAttempt records the content key of an attempt.
func (m *Manager) setAttempt(key string) {
	m.lastAttempt = key
	m.attempted.Store(&key)
}

// failed records a rejected attempt, logs every error, tells the failure
// subscribers and returns err.
func (m *Manager) failed(now time.Time, err error) error {
	m.lastErr = err
	lines := rules.ErrorLines(err)
	m.mu.Lock()
	m.status.LastAttempt = now
	m.status.LastAttemptOK = false
	m.status.LastError = lines
	inForce := m.status.Hash
	subs := append([]func(error){}, m.failSubs...)
	m.mu.Unlock()

	if inForce != "" {
		m.log.Error("rules file rejected; the rules in force stay", "path", m.path, "errors", len(lines), "hash_in_force", inForce)
	} else {
		m.log.Error("rules file rejected; no rules are in force yet", "path", m.path, "errors", len(lines))
	}
	for _, l := range lines {
		m.log.Error("rules error", "error", l)
	}
	for _, fn := range subs {
		m.call(func() { fn(err) })
	}
	return err
}

// call runs a subscriber, so that its panic cannot take the reloading
// goroutine, and the gateway, down.
func (m *Manager) call(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("a rules subscriber panicked", "panic", fmt.Sprint(r))
		}
	}()
	fn()
}

// contentKey identifies what Read found: the content of both files, or
// the read error, so that an unchanged broken or missing file is reported
// once.
func contentKey(files *Files, err error) string {
	if err != nil {
		return "read error: " + err.Error()
	}
	return files.Key()
}
