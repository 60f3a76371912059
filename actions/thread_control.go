package actions

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// controlKind describes a handover call on the thread itself (take,
// request, release): its value is {metadata: TEMPLATE}, {} or nothing.
type controlKind struct {
	name string
	doc  string
	// metadata is true when the call carries metadata.
	metadata bool
	// control is the change the call makes.
	control Control
	call    func(ctx context.Context, p Platform, to messenger.Recipient, metadata string) error
}

// spec builds the kind's Spec.
func (k controlKind) spec() Spec {
	s := Spec{Name: k.name, Doc: k.doc, FieldNames: []string{}, Decode: k.decode, DecodeStep: k.decodeStep}
	empty := map[string]any{"type": "object", "additionalProperties": false, "maxProperties": 0}
	if k.metadata {
		s.ExpectField = "metadata"
		s.FieldNames = []string{"metadata"}
		s.Schema = map[string]any{
			"description": "Empty, or a mapping with metadata (a template).",
			"oneOf": []any{
				map[string]any{"type": "null"},
				map[string]any{
					"type":                 "object",
					"additionalProperties": false,
					"properties": map[string]any{
						"metadata": templateSchema("Metadata for the other apps (a template).", MaxMetadataLen),
					},
				},
			},
		}
	} else {
		s.Schema = map[string]any{
			"description": "Empty: write {}.",
			"oneOf":       []any{map[string]any{"type": "null"}, empty},
		}
	}
	return s
}

func (k controlKind) decode(v *yaml.Node, c *Compiler) (Action, diag.List) {
	a := &controlAction{kind: k}
	v = diag.Resolve(v)
	if v != nil && v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return a, nil
	}
	allowed := []string{"metadata"}
	if !k.metadata {
		if v != nil && v.Kind == yaml.MappingNode && len(v.Content) > 0 {
			return nil, diag.List{diag.At(v.Content[0], "%s: takes no keys, write %s: {}", k.name, k.name)}
		}
		allowed = []string{}
	}
	fields, errs := diag.Fields(v, k.name, allowed)
	if errs != nil && v != nil && v.Kind != yaml.MappingNode {
		form := "{}"
		if k.metadata {
			form = "{} or {metadata: TEXT}"
		}
		return nil, diag.List{diag.At(v, "%s: expected %s, got %s", k.name, form, diag.KindName(v))}
	}
	for _, f := range fields {
		t, err := c.Template(f.Value, k.name+".metadata", MaxMetadataLen)
		errs.Add(err)
		a.metadata = t
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return a, nil
}

type controlAction struct {
	kind     controlKind
	metadata *Template // nil when not given
}

var _ Action = (*controlAction)(nil)

func (a *controlAction) Kind() string { return a.kind.name }

func (a *controlAction) Plan(d *Data) (Step, error) {
	m, err := a.metadata.Render(d)
	if err != nil {
		return nil, err
	}
	return &controlStep{kind: a.kind, metadata: m}, nil
}

type controlStep struct {
	kind     controlKind
	metadata string
}

var _ Step = (*controlStep)(nil)

func (s *controlStep) Kind() string { return s.kind.name }

func (s *controlStep) Fields() map[string]any {
	if !s.kind.metadata {
		return map[string]any{}
	}
	return map[string]any{"metadata": s.metadata}
}

func (s *controlStep) Execute(ctx context.Context, p Platform, to messenger.Recipient) error {
	if err := s.kind.call(ctx, p, to, s.metadata); err != nil {
		return fmt.Errorf("%s: %w", s.kind.name, err)
	}
	return nil
}

func (s *controlStep) Effect() Effect {
	return Effect{Control: s.kind.control, Metadata: s.metadata}
}

// controlStepData is the encoding of a take, request or release step.
type controlStepData struct {
	Metadata string `json:"metadata,omitempty"`
}

func (s *controlStep) encodeStep() ([]byte, error) {
	return json.Marshal(controlStepData{Metadata: s.metadata})
}

// decodeStep reads a step of the kind.
func (k controlKind) decodeStep(data []byte) (Step, error) {
	var d controlStepData
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	if !k.metadata && d.Metadata != "" {
		return nil, fmt.Errorf("%s takes no metadata", k.name)
	}
	return &controlStep{kind: k, metadata: d.Metadata}, nil
}
