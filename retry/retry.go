// Package retry decides how long to wait before trying a failed Graph API
// call again, and when to give up: exponential backoff with jitter, a cap on
// each wait, and a total budget (--retry-for), with rate limits backing off
// longer than transient failures.
//
// Everything here is a pure function of its arguments and a random source:
// the caller keeps the attempt count and the time of the first failure
// (store.Progress does), sleeps, and asks again.
package retry

import "time"

// Class says whether and how a failure may be retried.
type Class int

const (
	// Permanent failures are not retried: the request itself is wrong
	// (bad parameter, expired token, not the thread owner, outside the
	// messaging window).
	Permanent Class = iota
	// Transient failures may succeed soon: network errors, timeouts,
	// HTTP 5xx, Graph codes 1, 2, 1200 and subcode 2018321.
	Transient
	// RateLimited failures succeed only once a limit resets: Graph codes
	// 4, 17, 32, 341, 613, 80001, 80006 and HTTP 429. Retrying early
	// extends the block, so they back off longer.
	RateLimited
)

// String names the class for logs.
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case RateLimited:
		return "rate-limited"
	}
	return "permanent"
}

// ClassifyGraph classifies a Graph API answer by its HTTP status and Graph
// error code and subcode (0 when absent), following the error table of
// messenger-platform.md. It agrees with messenger.GraphError.Retryable on
// what is retried and adds which retries are rate limits. A network error or
// a timeout, which has no answer, is Transient.
func ClassifyGraph(httpStatus, code, subcode int) Class {
	if code == 613 && subcode == 2018338 {
		return Permanent // tag misuse warning: stop, don't hammer
	}
	if code == 2018321 || subcode == 2018321 {
		return Transient // an automated flow holds the chat for now
	}
	switch code {
	case 4, 17, 32, 341, 613, 80001, 80006:
		return RateLimited
	case 1, 2, 1200:
		return Transient
	case 10, 100, 190, 368, 551:
		return Permanent
	}
	if code >= 200 && code <= 299 {
		return Permanent
	}
	switch {
	case httpStatus == 429:
		return RateLimited
	case httpStatus >= 500:
		return Transient
	}
	return Permanent
}

// Jitter chooses how a wait is spread around its exponential value.
type Jitter int

const (
	// FullJitter waits a uniformly random time up to the exponential
	// value: base·2^(attempt-1), capped. It spreads retries best and
	// needs only the attempt number.
	FullJitter Jitter = iota
	// DecorrelatedJitter waits a uniformly random time between the base
	// and three times the previous wait, capped (the AWS Architecture
	// Blog's "decorrelated jitter"); it needs the previous wait.
	DecorrelatedJitter
)

// Backoff is the exponential backoff of one class of failures.
type Backoff struct {
	// Base is the first wait (before jitter).
	Base time.Duration
	// Cap is the longest single wait.
	Cap time.Duration
	// Floor is the share of each wait that is not random, from 0 (full
	// jitter: a wait may be almost 0) to 1 (no jitter). Rate limits use
	// one half, so they never retry at once.
	Floor float64
}

// Policy is the retry policy of Graph API calls.
type Policy struct {
	// Transient is the backoff of transient failures.
	Transient Backoff
	// RateLimited is the backoff of rate limits.
	RateLimited Backoff
	// Budget is the total time one event's failing step is retried, from
	// its first failure (--retry-for).
	Budget time.Duration
	// Jitter is the jitter of both backoffs.
	Jitter Jitter
}

// DefaultBudget is the default of --retry-for.
const DefaultBudget = 15 * time.Minute

// DefaultPolicy returns the gateway's policy: transient failures from 1 s
// doubling to at most 1 min, rate limits from 30 s doubling to at most
// 5 min and never less than half the exponential value, full jitter, and a
// budget of 15 minutes.
func DefaultPolicy() Policy {
	return Policy{
		Transient:   Backoff{Base: time.Second, Cap: time.Minute},
		RateLimited: Backoff{Base: 30 * time.Second, Cap: 5 * time.Minute, Floor: 0.5},
		Budget:      DefaultBudget,
		Jitter:      FullJitter,
	}
}

// Rand is a source of uniform random numbers in [0, 1), such as a
// *math/rand/v2.Rand.
type Rand interface {
	Float64() float64
}

// Failure describes the failed attempt Next decides on.
type Failure struct {
	// Attempt is how many attempts failed so far, 1 after the first.
	Attempt int
	// Class classifies the last failure.
	Class Class
	// Elapsed is the time since the first failure of the step.
	Elapsed time.Duration
	// Prev is the previous wait, for DecorrelatedJitter; 0 at first.
	Prev time.Duration
	// After is how long the server asked to wait (Retry-After, or
	// X-Business-Use-Case-Usage's estimated_time_to_regain_access); 0
	// when it did not say. A wait is never shorter.
	After time.Duration
}

// Next returns how long to wait before the next attempt, and false when
// there is to be none: the failure is permanent, or the budget is spent.
// The wait never goes past the end of the budget, so the last attempt is
// made when the budget runs out.
func (p Policy) Next(f Failure, r Rand) (time.Duration, bool) {
	var b Backoff
	switch f.Class {
	case Transient:
		b = p.Transient
	case RateLimited:
		b = p.RateLimited
	default:
		return 0, false
	}
	left := p.Budget - f.Elapsed
	if left <= 0 {
		return 0, false
	}
	wait := max(p.wait(b, f, r), f.After)
	if wait > left {
		wait = left
	}
	return wait, true
}

// wait is the jittered backoff of f's attempt.
func (p Policy) wait(b Backoff, f Failure, r Rand) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	cap := b.Cap
	if cap < b.Base {
		cap = b.Base
	}
	var lo, hi time.Duration
	switch p.Jitter {
	case DecorrelatedJitter:
		lo, hi = b.Base, min(cap, 3*max(f.Prev, b.Base))
	default:
		hi = exponential(b.Base, cap, f.Attempt)
	}
	floor := min(max(b.Floor, 0), 1)
	lo = max(lo, time.Duration(floor*float64(hi)))
	x := r.Float64()
	if x < 0 || x >= 1 {
		x = 0
	}
	return lo + time.Duration(x*float64(hi-lo))
}

// exponential is base·2^(attempt-1), at most cap, without overflow.
func exponential(base, cap time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt; i++ {
		if d > cap/2 {
			return cap
		}
		d *= 2
	}
	return min(d, cap)
}
