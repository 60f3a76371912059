// Package poll waits in tests for something that happens on another
// goroutine or in another process: a message sent, a file reloaded, a
// server ready.
//
// It checks a condition often at first and less often later, and gives up
// after Timeout, which is generous on purpose: a loaded CI machine running
// the race detector is many times slower than a laptop, and a wait that
// passes there only by luck is a flaky test. A condition that never holds
// fails the test with a message that says what was awaited.
//
//	poll.Until(t, "the echo", func() bool { return len(graph.Texts("u1")) == 1 })
//
// Call it from the test's own goroutine, as t.Fatal requires.
package poll

import (
	"testing"
	"time"
)

// Timeout is how long Until and UntilNil wait before they fail the test.
const Timeout = 30 * time.Second

// The interval between checks starts at firstInterval and doubles up to
// maxInterval, so a quick condition is seen quickly and a slow one costs
// little CPU.
const (
	firstInterval = time.Millisecond
	maxInterval   = 20 * time.Millisecond
)

// Until checks cond until it returns true and fails the test with
// "timed out after 30s waiting for WHAT" if it still returns false after
// Timeout. what names the awaited thing, e.g. "the echo to u1".
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	until(t, Timeout, what, cond)
}

// UntilNil calls check until it returns nil and fails the test if it still
// returns an error after Timeout; the failure message gives what and the
// last error, which should say what is still missing (the last HTTP status,
// the state seen).
func UntilNil(t testing.TB, what string, check func() error) {
	t.Helper()
	untilNil(t, Timeout, what, check)
}

// until is Until with a time limit of its own.
func until(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if wait(limit, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}) != nil {
		t.Fatalf("timed out after %s waiting for %s", limit, what)
	}
}

// untilNil is UntilNil with a time limit of its own.
func untilNil(t testing.TB, limit time.Duration, what string, check func() error) {
	t.Helper()
	if err := wait(limit, check); err != nil {
		t.Fatalf("timed out after %s waiting for %s: %v", limit, what, err)
	}
}

// errNotYet is the error of a condition that is still false.
var errNotYet = notYet{}

type notYet struct{}

func (notYet) Error() string { return "the condition is still false" }

// wait calls check until it returns nil or limit has passed, and returns
// the last error.
func wait(limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	interval := firstInterval
	for {
		err := check()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(min(interval, time.Until(deadline)+time.Millisecond))
		interval = min(2*interval, maxInterval)
	}
}
