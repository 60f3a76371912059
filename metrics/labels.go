package metrics

import (
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/messenger"
)

// Other is the label value that stands for every value outside a label's
// fixed set, or beyond its cap.
const Other = "other"

// Label values of threadgate's own making.
const (
	channelMessaging = "messaging"
	channelStandby   = "standby"
	outcomeOK        = "ok"
	outcomeError     = "error"
	resultSuccess    = "success"
	resultFailure    = "failure"
)

// maxLabelLen bounds the length of a label value taken from the rules file.
const maxLabelLen = 128

// fixedSet is a closed set of label values; anything else is Other.
type fixedSet struct {
	list []string
	has  map[string]bool
}

func newFixedSet(values ...string) fixedSet {
	s := fixedSet{list: values, has: make(map[string]bool, len(values))}
	for _, v := range values {
		s.has[v] = true
	}
	return s
}

// value returns v if it is in the set, else Other.
func (s fixedSet) value(v string) string {
	if s.has[v] {
		return v
	}
	return Other
}

var (
	webhookOutcomes = newFixedSet(
		gateway.OutcomeAccepted, gateway.OutcomeBadSignature, gateway.OutcomeTooLarge,
		gateway.OutcomeMalformed, gateway.OutcomeWrongObject, gateway.OutcomeQueueFull,
		gateway.OutcomeStoreFailed,
	)
	deadLetterReasons = newFixedSet(
		gateway.ReasonPermanent, gateway.ReasonExhausted, gateway.ReasonPanic, gateway.ReasonCorrupt,
	)
	eventKinds = newFixedSet(kindStrings(
		messenger.KindMessage, messenger.KindEcho, messenger.KindPostback, messenger.KindDelivery,
		messenger.KindRead, messenger.KindReaction, messenger.KindReferral, messenger.KindOptin,
		messenger.KindPassThreadControl, messenger.KindTakeThreadControl, messenger.KindRequestThreadControl,
		messenger.KindAppRoles, messenger.KindUnknown,
	)...)
	// actionKinds is every action the rules file can name, read from the
	// actions registry so that a new action kind is counted by name.
	actionKinds    = newFixedSet(actions.Names()...)
	actionOutcomes = newFixedSet(outcomeOK, outcomeError)
	// handoverDirections are the directions gateway.Observer documents
	// (conversation.Direction…).
	handoverDirections = newFixedSet("pass", "take", "request", "release", "returned", "taken", "requested", "passed_elsewhere")
	graphEndpoints     = newFixedSet(
		"me/messages", "me/pass_thread_control", "me/take_thread_control",
		"me/request_thread_control", "me/release_thread_control", "me/thread_owner",
	)
	graphOutcomes = newFixedSet(messenger.OutcomeOK, messenger.OutcomeRetry, messenger.OutcomeError)
)

func kindStrings(kinds ...messenger.EventKind) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}

// boundedSet admits the first max distinct values of a label taken from the
// rules file and maps every later one to Other, counting it in overflow.
type boundedSet struct {
	label    string
	max      int
	overflow *prometheus.CounterVec

	mu   sync.RWMutex
	seen map[string]struct{}
}

func newBoundedSet(label string, max int, overflow *prometheus.CounterVec) *boundedSet {
	return &boundedSet{label: label, max: max, overflow: overflow, seen: map[string]struct{}{}}
}

// value returns v if it is admitted, else Other. A value that is empty, too
// long or not valid UTF-8 (which Prometheus would refuse) is Other too. With
// count set, a value turned away because the cap was reached is counted in
// the overflow counter.
func (b *boundedSet) value(v string, count bool) string {
	if v == "" || len(v) > maxLabelLen || !utf8.ValidString(v) {
		return Other
	}
	b.mu.RLock()
	_, ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		if count {
			b.overflow.WithLabelValues(b.label).Inc()
		}
		return Other
	}
	b.seen[v] = struct{}{}
	return v
}
