package poll

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records a Fatalf and stops the goroutine,
// as the testing package does.
type recorder struct {
	testing.TB
	failed  bool
	message string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.message = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own, as Fatalf ends
// the goroutine, and returns the recorder when f is done.
func run(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestUntilReturnsWhenTheConditionHolds(t *testing.T) {
	var calls atomic.Int64
	r := run(func(tb testing.TB) {
		Until(tb, "the third call", func() bool { return calls.Add(1) == 3 })
	})
	if r.failed || calls.Load() != 3 {
		t.Fatalf("failed %v (%q) after %d calls, want success on the 3rd", r.failed, r.message, calls.Load())
	}
}

func TestUntilSeesAnotherGoroutine(t *testing.T) {
	var done atomic.Bool
	go func() {
		time.Sleep(30 * time.Millisecond)
		done.Store(true)
	}()
	Until(t, "the other goroutine", done.Load)
	if !done.Load() {
		t.Fatal("Until returned before the condition held")
	}
}

func TestUntilFailsWithWhatItAwaited(t *testing.T) {
	var calls atomic.Int64
	r := run(func(tb testing.TB) {
		until(tb, 30*time.Millisecond, "the impossible", func() bool { calls.Add(1); return false })
		tb.Fatalf("until returned") // not reached: until fails the test
	})
	if want := "timed out after 30ms waiting for the impossible"; !r.failed || r.message != want {
		t.Errorf("failed %v with %q, want %q", r.failed, r.message, want)
	}
	if calls.Load() < 2 {
		t.Errorf("the condition was checked %d times, want it checked again before giving up", calls.Load())
	}
}

func TestUntilNil(t *testing.T) {
	tests := []struct {
		name    string
		results []error // the check's results in turn; the last repeats
		want    string  // the failure message, "" for success
	}{
		{"nil at once", []error{nil}, ""},
		{"nil on the third call", []error{errors.New("a"), errors.New("b"), nil}, ""},
		{"never nil: the last error is shown", []error{errors.New("HTTP 502"), errors.New("HTTP 503")},
			"timed out after 30ms waiting for the server: HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			r := run(func(tb testing.TB) {
				untilNil(tb, 30*time.Millisecond, "the server", func() error {
					err := tt.results[min(calls, len(tt.results)-1)]
					calls++
					return err
				})
			})
			if r.message != tt.want {
				t.Errorf("failure %q, want %q", r.message, tt.want)
			}
		})
	}
}
