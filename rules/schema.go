package rules

import (
	"encoding/json"
	"fmt"

	"github.com/threadgate/threadgate/actions"
)

// SchemaID is the $id of the rules file's JSON Schema.
const SchemaID = "https://github.com/threadgate/threadgate/rules/schema.json"

// Schema returns the JSON Schema (draft-07) of a version 1 rules file,
// built from the same tables as the loader: the match kinds, the action
// kinds and the top-level keys. Editors use it for completion and
// inline errors; the loader stays the authority (it also checks what a
// schema cannot, such as regexes, templates and app names).
func Schema() map[string]any {
	match := map[string]any{}
	for _, k := range matchKinds {
		match[k.Key] = withDoc(k.Schema, k.Doc)
	}
	acts := map[string]any{}
	for _, spec := range actions.Specs() {
		acts[spec.Name] = withDoc(spec.Schema, spec.Doc)
	}
	props := map[string]any{}
	var required []any
	for _, k := range topKeys {
		props[k.Name] = withDoc(k.Schema(), k.Doc)
		if k.Missing != "" {
			required = append(required, k.Name)
		}
	}
	return map[string]any{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"$id":                  SchemaID,
		"title":                "threadgate rules file, version 1",
		"type":                 "object",
		"required":             required,
		"additionalProperties": false,
		"properties":           props,
		"definitions": map[string]any{
			"rule": map[string]any{
				"type":                 "object",
				"required":             []any{"name", "do"},
				"additionalProperties": false,
				"properties": map[string]any{
					"name": map[string]any{
						"description": "A unique name, logged and counted when the rule fires.",
						"type":        "string",
						"minLength":   1,
					},
					"match": map[string]any{
						"description":          "Conditions on the event; all keys given must hold. A list value holds when any item holds. Omitted: any message.",
						"type":                 "object",
						"additionalProperties": false,
						"properties":           match,
					},
					"when": map[string]any{
						"description": "An expression that must be true, e.g. business_hours(\"Mon-Fri 09:00-18:00\", \"Europe/Paris\").",
						"type":        "string",
						"minLength":   1,
					},
					"paused": pausedSchema,
					"do": map[string]any{
						"description": "The actions, run in order.",
						"type":        "array",
						"minItems":    1,
						"items":       map[string]any{"$ref": "#/definitions/action"},
					},
					"continue": map[string]any{
						"description": "true: after this rule fires, go on trying the rules below it.",
						"type":        "boolean",
					},
				},
			},
			"action": map[string]any{
				"description":          "One action: a mapping with one key, the action's name.",
				"type":                 "object",
				"minProperties":        1,
				"maxProperties":        1,
				"additionalProperties": false,
				"properties":           acts,
			},
		},
	}
}

// appsSchema is the schema of `apps`.
func appsSchema() map[string]any {
	return map[string]any{
		"type": []any{"object", "null"},
		"additionalProperties": map[string]any{"oneOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": "^[0-9]+$"},
		}},
	}
}

// varsSchema is the schema of `vars`.
func varsSchema() map[string]any {
	return map[string]any{
		"type":                 []any{"object", "null"},
		"propertyNames":        map[string]any{"pattern": identifier.String()},
		"additionalProperties": map[string]any{"type": []any{"string", "number", "boolean"}},
	}
}

// rulesSchema is the schema of `rules`.
func rulesSchema() map[string]any {
	return map[string]any{
		"type":     "array",
		"minItems": 1,
		"items":    map[string]any{"$ref": "#/definitions/rule"},
	}
}

// SchemaJSON returns Schema as indented JSON with a final newline; this is
// the content of rules/schema.json.
func SchemaJSON() ([]byte, error) {
	b, err := json.MarshalIndent(Schema(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rules: encode schema: %w", err)
	}
	return append(b, '\n'), nil
}

// withDoc returns a copy of a schema fragment with a description, unless it
// has one.
func withDoc(schema map[string]any, doc string) map[string]any {
	out := make(map[string]any, len(schema)+1)
	for k, v := range schema {
		out[k] = v
	}
	if _, ok := out["description"]; !ok && doc != "" {
		out["description"] = doc
	}
	return out
}
