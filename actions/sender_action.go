package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// senderActions are the indicators sender_action can show.
var senderActions = []string{messenger.TypingOn, messenger.TypingOff, messenger.MarkSeen}

// sender_action: typing_on | typing_off | mark_seen.
var senderActionSpec = Spec{
	Name:        "sender_action",
	Doc:         "Shows or hides the typing indicator, or marks the user's last message as seen.",
	ExpectField: "action",
	FieldNames:  []string{"action"},
	Schema: map[string]any{
		"description": "The indicator to send.",
		"type":        "string",
		"enum":        []any{messenger.TypingOn, messenger.TypingOff, messenger.MarkSeen},
	},
	Decode:     decodeSenderAction,
	DecodeStep: decodeSenderActionStep,
}

func decodeSenderAction(v *yaml.Node, _ *Compiler) (Action, diag.List) {
	s, err := diag.String(v, "sender_action")
	if err != nil {
		return nil, diag.List{err}
	}
	for _, a := range senderActions {
		if s == a {
			return senderAction(s), nil
		}
	}
	return nil, diag.List{diag.At(v, "sender_action: unknown indicator %q, expected one of: %s", s, strings.Join(senderActions, ", "))}
}

// senderAction is both the action and its step: it reads nothing of the event.
type senderAction string

var (
	_ Action = senderAction("")
	_ Step   = senderAction("")
)

func (a senderAction) Kind() string { return "sender_action" }

func (a senderAction) Plan(*Data) (Step, error) { return a, nil }

func (a senderAction) Fields() map[string]any { return map[string]any{"action": string(a)} }

func (a senderAction) Execute(ctx context.Context, p Platform, to messenger.Recipient) error {
	if err := p.SenderAction(ctx, to, string(a)); err != nil {
		return fmt.Errorf("sender_action %s: %w", string(a), err)
	}
	return nil
}

func (a senderAction) Effect() Effect { return Effect{} }

// senderActionData is the encoding of a sender_action step.
type senderActionData struct {
	Action string `json:"action"`
}

func (a senderAction) encodeStep() ([]byte, error) {
	return json.Marshal(senderActionData{Action: string(a)})
}

func decodeSenderActionStep(data []byte) (Step, error) {
	var d senderActionData
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	for _, a := range senderActions {
		if d.Action == a {
			return senderAction(a), nil
		}
	}
	return nil, fmt.Errorf("unknown indicator %q", d.Action)
}
