package fakeclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/fakeclock"
)

func TestClock(t *testing.T) {
	c := fakeclock.New(fakeclock.Start)
	steps := []struct {
		name string
		move func() time.Time // moves the clock and returns what it says it moved to
		want time.Time
	}{
		{"stands still", c.Now, fakeclock.Start},
		{"advance", func() time.Time { return c.Advance(90 * time.Minute) }, fakeclock.Start.Add(90 * time.Minute)},
		{"advance across a day", func() time.Time { return c.Advance(24 * time.Hour) }, fakeclock.Start.Add(25*time.Hour + 30*time.Minute)},
		{"back", func() time.Time { return c.Advance(-time.Hour) }, fakeclock.Start.Add(24*time.Hour + 30*time.Minute)},
		{"set", func() time.Time {
			c.Set(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
			return c.Now()
		}, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, s := range steps {
		if got := s.move(); !got.Equal(s.want) {
			t.Errorf("%s: moved to %s, want %s", s.name, got, s.want)
		}
		if got := c.Now(); !got.Equal(s.want) {
			t.Errorf("%s: Now() = %s, want %s", s.name, got, s.want)
		}
	}
}

// TestClockConcurrentUse moves the clock while other goroutines read it;
// under -race it shows the clock is safe to share, and no advance is lost.
func TestClockConcurrentUse(t *testing.T) {
	c := fakeclock.New(fakeclock.Start)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				if c.Now().Before(fakeclock.Start) {
					t.Error("the clock went back")
				}
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), fakeclock.Start.Add(400*time.Second); !got.Equal(want) {
		t.Errorf("after 400 advances of 1s: %s, want %s", got, want)
	}
}
