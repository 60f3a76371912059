package gateway

// Webhook request outcomes, as told to Observer.WebhookRequest.
const (
	OutcomeAccepted     = "accepted"
	OutcomeBadSignature = "bad_signature"
	OutcomeTooLarge     = "too_large"
	OutcomeMalformed    = "malformed"
	OutcomeWrongObject  = "wrong_object"
	OutcomeQueueFull    = "queue_full"
	// OutcomeStoreFailed: the store could not keep the events.
	OutcomeStoreFailed = "store_failed"
)

// Observer is told what the gateway does, so that metrics can count it.
// Every argument comes from a bounded set: outcomes, event kinds, rule names
// from the rules file, action kinds, app names; never a user ID or a text.
type Observer interface {
	// WebhookRequest is called once per POST /webhook with its outcome.
	WebhookRequest(outcome string)
	// Event is called for every event of an accepted webhook.
	Event(kind string, standby bool)
	// DedupHit is called when a redelivered event is skipped.
	DedupHit()
	// RuleFired is called when a rule fires.
	RuleFired(rule string)
	// Action is called when an action has run, with "ok" or "error".
	Action(kind, outcome string)
	// Handover is called when thread control moves (the
	// conversation.Direction constants). After a successful call of
	// threadgate's own (a rule's step, handover.on_request: grant,
	// handover.return_after_idle), direction is:
	//   - "pass": threadgate passed the thread; target is the app's name
	//     in the rules file (its ID when it has none);
	//   - "take": threadgate took the thread; target "self";
	//   - "request": threadgate asked the owner for the thread; target
	//     "self" (the thread has not moved yet);
	//   - "release": threadgate made the thread idle; target "idle".
	// On a handover webhook from the platform, direction is:
	//   - "returned": an app passed the thread to threadgate; target "self";
	//   - "taken": an app took the thread; target "other";
	//   - "passed_elsewhere": an app passed the thread to another app
	//     (not threadgate); target "other".
	//   - "requested": an app asked for the thread (request_thread_control);
	//     target "other". The thread does not move.
	Handover(target, direction string)
	// DeadLettered is called when an event becomes a dead letter, with the
	// reason: ReasonPermanent, ReasonExhausted, ReasonPanic or
	// ReasonCorrupt.
	DeadLettered(reason string)
	// Recovered is called when the handling of an event panicked and was
	// recovered.
	Recovered()
}

type nopObserver struct{}

func (nopObserver) WebhookRequest(string)   {}
func (nopObserver) Event(string, bool)      {}
func (nopObserver) DedupHit()               {}
func (nopObserver) RuleFired(string)        {}
func (nopObserver) Action(string, string)   {}
func (nopObserver) Handover(string, string) {}
func (nopObserver) DeadLettered(string)     {}
func (nopObserver) Recovered()              {}
