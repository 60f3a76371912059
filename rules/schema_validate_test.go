package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// compiledSchema compiles SchemaJSON with a real JSON Schema validator, the
// way an editor's YAML extension reads rules/schema.json.
func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := SchemaJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// yamlToJSON converts a YAML document to the value a JSON Schema validator
// reads, as editors do.
func yamlToJSON(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatalf("bad YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAcceptsValidFiles validates every example and every good test
// file against the schema: what the loader accepts, the editor must not
// underline.
func TestSchemaAcceptsValidFiles(t *testing.T) {
	t.Parallel()
	s := compiledSchema(t)
	var files []string
	for _, dir := range []string{"../examples", "testdata/good", "testdata/lint", "../cmd/threadgate/testdata"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	n := 0
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(path, data); err != nil {
			continue // a test file, or a file meant to fail
		}
		n++
		t.Run(path, func(t *testing.T) {
			if err := s.Validate(yamlToJSON(t, data)); err != nil {
				t.Errorf("the schema refuses a file the loader accepts:\n%v", err)
			}
		})
	}
	if n < 5 {
		t.Fatalf("only %d valid files found", n)
	}
}

// TestSchemaRejectsBadFiles checks that the schema underlines the mistakes
// an editor can catch; each file is also refused by the loader.
func TestSchemaRejectsBadFiles(t *testing.T) {
	t.Parallel()
	s := compiledSchema(t)
	const rule = "  - name: a\n    do: [reply: hi]\n"
	tests := []struct {
		name string
		src  string
	}{
		{"missing version", "rules:\n" + rule},
		{"wrong version", "version: 2\nrules:\n" + rule},
		{"missing rules", "version: 1\n"},
		{"empty rules", "version: 1\nrules: []\n"},
		{"unknown top-level key", "version: 1\nrule:\n" + rule},
		{"app id not a number", "version: 1\napps: {zendesk: abc}\nrules:\n" + rule},
		{"var not a scalar", "version: 1\nvars: {brand: [a]}\nrules:\n" + rule},
		{"rule without name", "version: 1\nrules:\n  - do: [reply: hi]\n"},
		{"rule without do", "version: 1\nrules:\n  - name: a\n"},
		{"empty do", "version: 1\nrules:\n  - name: a\n    do: []\n"},
		{"unknown rule key", "version: 1\nrules:\n  - name: a\n    matches: {text: hi}\n    do: [reply: hi]\n"},
		{"unknown match key", "version: 1\nrules:\n  - name: a\n    match: {txt: hi}\n    do: [reply: hi]\n"},
		{"unknown event", "version: 1\nrules:\n  - name: a\n    match: {event: postbak}\n    do: [reply: hi]\n"},
		{"unknown attachment type", "version: 1\nrules:\n  - name: a\n    match: {attachment: gif}\n    do: [reply: hi]\n"},
		{"standby not a boolean", "version: 1\nrules:\n  - name: a\n    match: {standby: sometimes}\n    do: [reply: hi]\n"},
		{"empty phrase list", "version: 1\nrules:\n  - name: a\n    match: {text: []}\n    do: [reply: hi]\n"},
		{"continue not a boolean", "version: 1\nrules:\n  - name: a\n    continue: yes please\n    do: [reply: hi]\n"},
		{"unknown action", "version: 1\nrules:\n  - name: a\n    do: [replie: hi]\n"},
		{"two actions in one item", "version: 1\nrules:\n  - name: a\n    do: [{reply: hi, echo: x}]\n"},
		{"unknown sender action", "version: 1\nrules:\n  - name: a\n    do: [sender_action: typing]\n"},
		{"test case without expect", "version: 1\nrules:\n" + rule + "tests:\n  - name: t\n    message: hi\n"},
		{"test case with an unknown key", "version: 1\nrules:\n" + rule + "tests:\n  - name: t\n    mesage: hi\n    expect: {rule: a}\n"},
		{"empty expect", "version: 1\nrules:\n" + rule + "tests:\n  - name: t\n    message: hi\n    expect: {}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("bad.yaml", []byte(tt.src)); err == nil {
				t.Fatalf("the loader accepts the file; the case is wrong")
			}
			if err := s.Validate(yamlToJSON(t, []byte(tt.src))); err == nil {
				t.Errorf("the schema accepts:\n%s", tt.src)
			}
		})
	}
}
