package retry_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/retry"
)

// fixed is a Rand that always returns the same number.
type fixed float64

func (f fixed) Float64() float64 { return float64(f) }

func TestClassifyGraph(t *testing.T) {
	tests := []struct {
		status, code, subcode int
		want                  retry.Class
	}{
		{500, 0, 0, retry.Transient},
		{503, 0, 0, retry.Transient},
		{502, 1, 0, retry.Transient},
		{400, 2, 0, retry.Transient},
		{400, 1200, 0, retry.Transient},
		{400, 10, 2018321, retry.Transient},
		{400, 4, 0, retry.RateLimited},
		{400, 17, 0, retry.RateLimited},
		{400, 32, 0, retry.RateLimited},
		{400, 341, 0, retry.RateLimited},
		{400, 613, 0, retry.RateLimited},
		{400, 613, 1996, retry.RateLimited},
		{400, 80001, 0, retry.RateLimited},
		{400, 80006, 0, retry.RateLimited},
		{429, 0, 0, retry.RateLimited},
		{400, 613, 2018338, retry.Permanent},
		{400, 10, 2018300, retry.Permanent},
		{400, 100, 2018001, retry.Permanent},
		{400, 190, 463, retry.Permanent},
		{400, 368, 0, retry.Permanent},
		{400, 551, 1545041, retry.Permanent},
		{403, 200, 2018028, retry.Permanent},
		{500, 190, 0, retry.Permanent}, // the code says the request is wrong, whatever the status
		{400, 0, 0, retry.Permanent},
		{404, 0, 0, retry.Permanent},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d/%d", tt.status, tt.code, tt.subcode), func(t *testing.T) {
			if got := retry.ClassifyGraph(tt.status, tt.code, tt.subcode); got != tt.want {
				t.Errorf("ClassifyGraph = %v, want %v", got, tt.want)
			}
			// The Graph client decides what is retried; the classes must agree with it.
			ge := &messenger.GraphError{HTTPStatus: tt.status, Code: tt.code, Subcode: tt.subcode}
			if retried := tt.want != retry.Permanent; ge.Retryable() != retried {
				t.Errorf("messenger.GraphError.Retryable = %v, but the class is %v", ge.Retryable(), tt.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	p := retry.DefaultPolicy()
	tests := []struct {
		name      string
		policy    retry.Policy
		f         retry.Failure
		rnd       float64
		wantWait  time.Duration
		wantRetry bool
	}{
		{name: "permanent", f: retry.Failure{Attempt: 1, Class: retry.Permanent}, rnd: 0.5},
		{name: "transient first, top of the jitter", f: retry.Failure{Attempt: 1, Class: retry.Transient}, rnd: 0.999, wantWait: 999 * time.Millisecond, wantRetry: true},
		{name: "transient first, full jitter may wait nothing", f: retry.Failure{Attempt: 1, Class: retry.Transient}, rnd: 0, wantWait: 0, wantRetry: true},
		{name: "transient doubles", f: retry.Failure{Attempt: 4, Class: retry.Transient}, rnd: 0.5, wantWait: 4 * time.Second, wantRetry: true},
		{name: "transient capped", f: retry.Failure{Attempt: 30, Class: retry.Transient}, rnd: 0.5, wantWait: 30 * time.Second, wantRetry: true},
		{name: "attempt beyond any shift", f: retry.Failure{Attempt: 1000, Class: retry.Transient}, rnd: 0.5, wantWait: 30 * time.Second, wantRetry: true},
		{name: "rate limit longer, never below half", f: retry.Failure{Attempt: 1, Class: retry.RateLimited}, rnd: 0, wantWait: 15 * time.Second, wantRetry: true},
		{name: "rate limit top", f: retry.Failure{Attempt: 2, Class: retry.RateLimited}, rnd: 0.5, wantWait: 45 * time.Second, wantRetry: true},
		{name: "rate limit capped", f: retry.Failure{Attempt: 20, Class: retry.RateLimited}, rnd: 0.5, wantWait: 225 * time.Second, wantRetry: true},
		{name: "server hint is a floor", f: retry.Failure{Attempt: 1, Class: retry.RateLimited, After: 2 * time.Minute}, rnd: 0.5, wantWait: 2 * time.Minute, wantRetry: true},
		{name: "wait clipped to the budget", f: retry.Failure{Attempt: 10, Class: retry.RateLimited, Elapsed: 14 * time.Minute}, rnd: 0.5, wantWait: time.Minute, wantRetry: true},
		{name: "budget spent", f: retry.Failure{Attempt: 10, Class: retry.Transient, Elapsed: 15 * time.Minute}, rnd: 0.5},
		{name: "budget overspent", f: retry.Failure{Attempt: 10, Class: retry.RateLimited, Elapsed: time.Hour}, rnd: 0.5},
		{name: "a short budget", policy: withBudget(p, 5*time.Second), f: retry.Failure{Attempt: 1, Class: retry.RateLimited}, rnd: 0.5, wantWait: 5 * time.Second, wantRetry: true},
		{name: "decorrelated first", policy: withJitter(p, retry.DecorrelatedJitter), f: retry.Failure{Attempt: 1, Class: retry.Transient}, rnd: 0.5, wantWait: 2 * time.Second, wantRetry: true},
		{name: "decorrelated from the previous wait", policy: withJitter(p, retry.DecorrelatedJitter), f: retry.Failure{Attempt: 3, Class: retry.Transient, Prev: 10 * time.Second}, rnd: 0.5, wantWait: 15500 * time.Millisecond, wantRetry: true},
		{name: "decorrelated capped", policy: withJitter(p, retry.DecorrelatedJitter), f: retry.Failure{Attempt: 9, Class: retry.Transient, Prev: time.Minute}, rnd: 0.999, wantWait: 59941 * time.Millisecond, wantRetry: true},
		{name: "decorrelated rate limit floor", policy: withJitter(p, retry.DecorrelatedJitter), f: retry.Failure{Attempt: 1, Class: retry.RateLimited}, rnd: 0, wantWait: 45 * time.Second, wantRetry: true},
		{name: "a random source out of range counts as 0", f: retry.Failure{Attempt: 1, Class: retry.Transient}, rnd: 1.5, wantWait: 0, wantRetry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy := tt.policy
			if policy == (retry.Policy{}) {
				policy = p
			}
			wait, ok := policy.Next(tt.f, fixed(tt.rnd))
			if wait != tt.wantWait || ok != tt.wantRetry {
				t.Errorf("Next = %v, %v; want %v, %v", wait, ok, tt.wantWait, tt.wantRetry)
			}
		})
	}
}

func withBudget(p retry.Policy, d time.Duration) retry.Policy { p.Budget = d; return p }

func withJitter(p retry.Policy, j retry.Jitter) retry.Policy { p.Jitter = j; return p }

// TestScheduleSpendsTheBudget follows a whole retry schedule with a real
// random source: every wait is within its class's bounds, the attempts stop
// once the budget is spent, and rate limits make fewer attempts than
// transient failures.
func TestScheduleSpendsTheBudget(t *testing.T) {
	p := retry.DefaultPolicy()
	attempts := map[retry.Class]int{}
	for _, class := range []retry.Class{retry.Transient, retry.RateLimited} {
		r := rand.New(rand.NewPCG(1, 2))
		var elapsed time.Duration
		for attempt := 1; ; attempt++ {
			wait, ok := p.Next(retry.Failure{Attempt: attempt, Class: class, Elapsed: elapsed}, r)
			if !ok {
				attempts[class] = attempt
				break
			}
			b := p.Transient
			if class == retry.RateLimited {
				b = p.RateLimited
			}
			if wait < 0 || wait > b.Cap {
				t.Fatalf("%v attempt %d: wait %v outside [0, %v]", class, attempt, wait, b.Cap)
			}
			elapsed += wait
			if elapsed > p.Budget {
				t.Fatalf("%v: retried past the budget (%v)", class, elapsed)
			}
			if attempt > 10000 {
				t.Fatalf("%v: the schedule never ends", class)
			}
		}
	}
	if attempts[retry.RateLimited] >= attempts[retry.Transient] {
		t.Errorf("rate limits made %d attempts, transient failures %d: rate limits should back off longer", attempts[retry.RateLimited], attempts[retry.Transient])
	}
	t.Logf("attempts within %v: %v", p.Budget, attempts)
}
