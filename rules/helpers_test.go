package rules

import (
	"testing"

	"github.com/threadgate/threadgate/engine"
	"gopkg.in/yaml.v3"
)

// valueNode parses a YAML value, e.g. `[a, b]`.
func valueNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml %q: %v", src, err)
	}
	return doc.Content[0]
}

// compileMatch compiles the value of a match key with the kind's compiler.
func compileMatch(t *testing.T, key, src string) engine.Condition {
	t.Helper()
	k, ok := lookupMatchKind(key)
	if !ok || k.compile == nil {
		t.Fatalf("no match kind %q", key)
	}
	c, errs := k.compile(valueNode(t, src), &matchContext{what: "match." + key, src: newSource([]byte(src))})
	if len(errs) > 0 {
		t.Fatalf("compile %s: %s: %v", key, src, errs[0])
	}
	if c.Key() != key {
		t.Errorf("Key() = %q, want %q", c.Key(), key)
	}
	if c.Describe() == "" {
		t.Errorf("Describe() is empty")
	}
	return c
}

// compileMatchErrors compiles a value that must be refused and returns the
// messages.
func compileMatchErrors(t *testing.T, key, src string) []string {
	t.Helper()
	k, _ := lookupMatchKind(key)
	c, errs := k.compile(valueNode(t, src), &matchContext{what: "match." + key, src: newSource([]byte(src))})
	if len(errs) == 0 {
		t.Fatalf("compile %s: %s succeeded, want errors", key, src)
	}
	if c != nil {
		t.Errorf("compile returned a condition along with errors")
	}
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// subject is the subject the engine builds for an event.
func subject(ev *engine.Event) *engine.Subject {
	s := &engine.Subject{Event: ev}
	if ev.Kind == engine.KindMessage {
		s.Normalized = engine.Normalize(ev.Text)
	}
	return s
}

func message(text string) *engine.Event {
	return &engine.Event{Kind: engine.KindMessage, Text: text}
}
