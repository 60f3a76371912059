package gateway

// Webhook request outcomes, as told to Observer.WebhookRequest.
const (
	OutcomeAccepted     = "accepted"
	OutcomeBadSignature = "bad_signature"
	OutcomeTooLarge     = "too_large"
	OutcomeMalformed    = "malformed"
	OutcomeWrongObject  = "wrong_object"
	OutcomeQueueFull    = "queue_full"
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
	// Handover is called when thread control moves: direction is "pass",
	// "take", "request", "release" (our calls) or "returned", "taken",
	// "requested" (webhooks from the platform); target is an app name or
	// "self", "idle" or "other".
	Handover(target, direction string)
}

type nopObserver struct{}

func (nopObserver) WebhookRequest(string)   {}
func (nopObserver) Event(string, bool)      {}
func (nopObserver) DedupHit()               {}
func (nopObserver) RuleFired(string)        {}
func (nopObserver) Action(string, string)   {}
func (nopObserver) Handover(string, string) {}
