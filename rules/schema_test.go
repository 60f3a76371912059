package rules

import (
	"encoding/json"
	"testing"

	"github.com/threadgate/threadgate/actions"
)

// TestSchemaFile keeps rules/schema.json, which the examples point editors
// at, equal to the schema built from the loader's tables.
func TestSchemaFile(t *testing.T) {
	t.Parallel()
	b, err := SchemaJSON()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "schema.json", string(b))
}

func TestSchemaCoversTables(t *testing.T) {
	t.Parallel()
	var s struct {
		Schema      string                     `json:"$schema"`
		Properties  map[string]json.RawMessage `json:"properties"`
		Definitions struct {
			Rule struct {
				Properties map[string]struct {
					Properties map[string]json.RawMessage `json:"properties"`
				} `json:"properties"`
			} `json:"rule"`
			Action struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"action"`
		} `json:"definitions"`
	}
	b, err := SchemaJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Schema != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %q, want draft-07", s.Schema)
	}
	for _, k := range topLevelKeys() {
		if _, ok := s.Properties[k]; !ok {
			t.Errorf("top-level key %q is not in the schema", k)
		}
	}
	for _, k := range ruleKeys {
		if _, ok := s.Definitions.Rule.Properties[k]; !ok {
			t.Errorf("rule key %q is not in the schema", k)
		}
	}
	match := s.Definitions.Rule.Properties["match"].Properties
	for _, k := range MatchKinds() {
		var frag map[string]any
		if err := json.Unmarshal(match[k.Key], &frag); err != nil || frag["description"] != k.Doc {
			t.Errorf("match key %q: schema %s, want its doc as description", k.Key, match[k.Key])
		}
	}
	if len(match) != len(MatchKinds()) {
		t.Errorf("schema has %d match keys, the table %d", len(match), len(MatchKinds()))
	}
	for _, name := range actions.Names() {
		if _, ok := s.Definitions.Action.Properties[name]; !ok {
			t.Errorf("action %q is not in the schema", name)
		}
	}
}
