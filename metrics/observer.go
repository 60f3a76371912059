package metrics

import (
	"github.com/threadgate/threadgate/gateway"
)

var _ gateway.Observer = (*Metrics)(nil)

// WebhookRequest counts one POST /webhook by outcome (gateway.Outcome...).
func (m *Metrics) WebhookRequest(outcome string) {
	m.webhookChild.get(webhookOutcomes.value(outcome)).Inc()
}

// Event counts one event of an accepted webhook by kind and channel.
func (m *Metrics) Event(kind string, standby bool) {
	ch := channelMessaging
	if standby {
		ch = channelStandby
	}
	m.eventChild.get([2]string{eventKinds.value(kind), ch}).Inc()
}

// DedupHit counts one redelivered event that was skipped.
func (m *Metrics) DedupHit() { m.dedupHits.Inc() }

// RuleFired counts one firing of the named rule.
func (m *Metrics) RuleFired(rule string) {
	m.ruleChild.get(m.ruleNames.value(rule, true)).Inc()
}

// Action counts one action run, by kind and outcome ("ok" or "error").
func (m *Metrics) Action(kind, outcome string) {
	m.actionChild.get([2]string{actionKinds.value(kind), actionOutcomes.value(outcome)}).Inc()
}

// Handover counts one move of thread control, by target and direction.
func (m *Metrics) Handover(target, direction string) {
	m.handovers.WithLabelValues(m.targets.value(target, true), handoverDirections.value(direction)).Inc()
}

// DeadLettered implements gateway.Observer.
func (m *Metrics) DeadLettered(reason string) {
	m.deadLettered.WithLabelValues(deadLetterReasons.value(reason)).Inc()
}

// Recovered implements gateway.Observer.
func (m *Metrics) Recovered() { m.panics.Inc() }
