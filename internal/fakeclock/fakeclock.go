// Package fakeclock is a clock for tests that moves only when the test
// moves it, so that a test can cross a 30-minute pause or a 24-hour
// expiry in no time and never depends on the wall clock.
//
// Pass Clock.Now wherever the code under test takes a func() time.Time:
//
//	clock := fakeclock.New(fakeclock.Start)
//	gw := gateway.New(gateway.Config{Now: clock.Now, …})
//	clock.Advance(30 * time.Minute)
//
// A Clock is safe for concurrent use: the code under test reads it on its
// own goroutines while the test moves it.
package fakeclock

import (
	"sync"
	"time"
)

// Start is a fixed instant for tests that need no particular time:
// Monday 2 March 2026, 10:00 UTC.
var Start = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// Clock is a clock that stands still until Advance or Set moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock that reads start.
func New(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (back for a negative d) and returns
// the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
