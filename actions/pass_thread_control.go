package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// pass_thread_control: NAME, or pass_thread_control: {target: NAME, metadata: TEMPLATE}.
var passThreadControlSpec = Spec{
	Name:        "pass_thread_control",
	Doc:         "Hands the thread over to an app named under apps, with optional metadata (a template) for it.",
	ExpectField: "target",
	FieldNames:  []string{"target", "app_id", "metadata"},
	Schema: map[string]any{
		"description": "The name of the app (under apps) to hand the thread to, or a mapping with target and metadata.",
		"oneOf": []any{
			targetSchema,
			map[string]any{
				"type":                 "object",
				"additionalProperties": false,
				"required":             []any{"target"},
				"properties": map[string]any{
					"target":   targetSchema,
					"metadata": templateSchema("Metadata for the app that receives the thread (a template).", MaxMetadataLen),
				},
			},
		},
	},
	Decode:     decodePassThreadControl,
	DecodeStep: decodePassStep,
}

var targetSchema = map[string]any{
	"description": "The name of an app under apps.",
	"type":        "string",
	"minLength":   1,
}

type passAction struct {
	target   string
	appID    string
	metadata *Template // nil when not given
}

var _ Action = (*passAction)(nil)

func decodePassThreadControl(v *yaml.Node, c *Compiler) (Action, diag.List) {
	const what = "pass_thread_control"
	v = diag.Resolve(v)
	a := &passAction{}
	var errs diag.List
	switch {
	case v != nil && v.Kind == yaml.ScalarNode:
		errs.Add(a.setTarget(v, what, c))
	case v != nil && v.Kind == yaml.MappingNode:
		fields, e := diag.Fields(v, what, []string{"target", "metadata"})
		errs = append(errs, e...)
		for _, f := range fields {
			switch f.Key.Value {
			case "target":
				errs.Add(a.setTarget(f.Value, what+".target", c))
			case "metadata":
				t, err := c.Template(f.Value, what+".metadata", MaxMetadataLen)
				errs.Add(err)
				a.metadata = t
			}
		}
		if !hasKey(fields, "target") {
			errs.Add(diag.At(v, "%s: target is required (the name of an app under apps)", what))
		}
	default:
		errs.Add(diag.At(v, "%s: expected the name of an app, or a mapping with target and metadata, got %s", what, diag.KindName(v)))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return a, nil
}

// setTarget resolves an app name against the file's apps.
func (a *passAction) setTarget(n *yaml.Node, what string, c *Compiler) *diag.Error {
	n = diag.Resolve(n)
	if n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		return diag.At(n, "%s: expected the name of an app under apps, got a number (rules name apps, they never hold raw app IDs)", what)
	}
	name, err := diag.String(n, what)
	if err != nil {
		return err
	}
	var apps map[string]string
	if c != nil {
		apps = c.Apps
	}
	id, ok := apps[name]
	if !ok {
		if len(apps) == 0 {
			return diag.At(n, "%s: unknown app %q, no apps are defined (add it under apps: with its app ID)", what, name)
		}
		names := make([]string, 0, len(apps))
		for k := range apps {
			names = append(names, k)
		}
		sort.Strings(names)
		return diag.At(n, "%s: unknown app %q, expected one of: %s", what, name, strings.Join(names, ", "))
	}
	a.target, a.appID = name, id
	return nil
}

func (a *passAction) Kind() string { return "pass_thread_control" }

func (a *passAction) Plan(d *Data) (Step, error) {
	m, err := a.metadata.Render(d)
	if err != nil {
		return nil, err
	}
	return &passStep{target: a.target, appID: a.appID, metadata: m}, nil
}

// PassThreadControl returns a step that passes the thread to the app
// appID, named target (its name in the rules file, or its ID), with
// metadata: the step a rule's pass_thread_control plans, for the passes
// threadgate makes by itself (handover.on_request: grant).
func PassThreadControl(target, appID, metadata string) Step {
	return &passStep{target: target, appID: appID, metadata: metadata}
}

type passStep struct {
	target, appID, metadata string
}

var _ Step = (*passStep)(nil)

func (s *passStep) Kind() string { return "pass_thread_control" }

func (s *passStep) Fields() map[string]any {
	return map[string]any{"target": s.target, "app_id": s.appID, "metadata": s.metadata}
}

func (s *passStep) Execute(ctx context.Context, p Platform, to messenger.Recipient) error {
	if err := p.PassThreadControl(ctx, to, s.appID, s.metadata); err != nil {
		return fmt.Errorf("pass_thread_control to %s: %w", s.target, err)
	}
	return nil
}

func (s *passStep) Effect() Effect {
	return Effect{Control: ControlPass, Target: s.target, AppID: s.appID, Metadata: s.metadata}
}

// passStepData is the encoding of a passStep.
type passStepData struct {
	Target   string `json:"target"`
	AppID    string `json:"app_id"`
	Metadata string `json:"metadata,omitempty"`
}

func (s *passStep) encodeStep() ([]byte, error) {
	return json.Marshal(passStepData{Target: s.target, AppID: s.appID, Metadata: s.metadata})
}

func decodePassStep(data []byte) (Step, error) {
	var d passStepData
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	return &passStep{target: d.Target, appID: d.AppID, metadata: d.Metadata}, nil
}
