package actions

import (
	"encoding/json"
	"errors"
	"fmt"
)

// A step rendered for one event can be encoded and decoded again, so that
// the gateway can record the plan of an event (store.Progress.Plan) and run
// its remaining steps after a retry or a restart, exactly as they were
// rendered, whatever the rules in force by then. Each kind's file gives its
// step an encoding (an encodeStep method) and its Spec a DecodeStep.

// EncodedStep is a step in its recorded form: the kind names the Spec whose
// DecodeStep reads Data.
type EncodedStep struct {
	// Kind is the action kind, e.g. "reply".
	Kind string `json:"kind"`
	// Data is the kind's encoding of the step (JSON).
	Data json.RawMessage `json:"data"`
}

// ErrNotEncodable is returned by EncodeStep for a step that has no
// encoding (a step of a kind outside this package).
var ErrNotEncodable = errors.New("actions: the step has no encoding")

// stepEncoder is implemented by the steps of this package.
type stepEncoder interface {
	encodeStep() ([]byte, error)
}

// EncodeStep returns the recorded form of a step.
func EncodeStep(s Step) (EncodedStep, error) {
	e, ok := s.(stepEncoder)
	if !ok {
		return EncodedStep{}, fmt.Errorf("%w: %T", ErrNotEncodable, s)
	}
	data, err := e.encodeStep()
	if err != nil {
		return EncodedStep{}, fmt.Errorf("actions: encoding a %s step: %w", s.Kind(), err)
	}
	return EncodedStep{Kind: s.Kind(), Data: data}, nil
}

// DecodeStep returns the step that EncodeStep recorded.
func DecodeStep(e EncodedStep) (Step, error) {
	spec, ok := Lookup(e.Kind)
	if !ok || spec.DecodeStep == nil {
		return nil, fmt.Errorf("actions: decoding a step: unknown kind %q", e.Kind)
	}
	s, err := spec.DecodeStep(e.Data)
	if err != nil {
		return nil, fmt.Errorf("actions: decoding a %s step: %w", e.Kind, err)
	}
	return s, nil
}

// textStepData is the encoding of a textStep.
type textStepData struct {
	Text string `json:"text"`
}

func (s *textStep) encodeStep() ([]byte, error) { return json.Marshal(textStepData{Text: s.msg.Text}) }

// decodeTextStep decodes a textStep of a kind.
func decodeTextStep(kind string, data []byte) (Step, error) {
	var d textStepData
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	if d.Text == "" {
		return nil, errors.New("the text is empty")
	}
	return newTextStep(kind, d.Text), nil
}
