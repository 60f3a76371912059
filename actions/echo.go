package actions

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// echo: PREFIX — sends the user's text back, prefixed.
var echoSpec = Spec{
	Name:        "echo",
	Doc:         "Sends the user's text back after a prefix (a template), and does nothing for a message without text.",
	ExpectField: "text",
	FieldNames:  []string{"text"},
	Schema:      templateSchema("The prefix (a template) put before the user's text.", MaxTextLen),
	Decode:      decodeEcho,
	DecodeStep:  func(data []byte) (Step, error) { return decodeTextStep("echo", data) },
}

type echoAction struct {
	prefix *Template
}

var _ Action = (*echoAction)(nil)

func decodeEcho(v *yaml.Node, c *Compiler) (Action, diag.List) {
	prefix, err := c.Template(v, "echo", MaxTextLen)
	if err != nil {
		return nil, diag.List{err}
	}
	return &echoAction{prefix: prefix}, nil
}

func (a *echoAction) Kind() string { return "echo" }

// Plan returns no step for an event without text.
func (a *echoAction) Plan(d *Data) (Step, error) {
	if d == nil || d.Text == "" {
		return nil, nil
	}
	prefix, err := a.prefix.Render(d)
	if err != nil {
		return nil, err
	}
	text := prefix + d.Text
	if n := utf8.RuneCountInString(text); n > MaxTextLen {
		return nil, fmt.Errorf("echo: the text to send is %d characters long, the limit is %d", n, MaxTextLen)
	}
	return newTextStep("echo", text), nil
}

// textStep sends one text message; echo and the plain form of reply plan it.
// The message is part of the step, so that sending it allocates nothing more
// (platforms never modify the messages they are given).
type textStep struct {
	kind string
	msg  messenger.Message // only Text is set
}

// newTextStep returns a step of the kind that sends text.
func newTextStep(kind, text string) *textStep {
	return &textStep{kind: kind, msg: messenger.Message{Text: text}}
}

var _ Step = (*textStep)(nil)

func (s *textStep) Kind() string { return s.kind }

func (s *textStep) Fields() map[string]any { return map[string]any{"text": s.msg.Text} }

func (s *textStep) Execute(ctx context.Context, p Platform, to messenger.Recipient) error {
	if err := p.SendMessage(ctx, to, &s.msg); err != nil {
		return fmt.Errorf("%s: %w", s.kind, err)
	}
	return nil
}

func (s *textStep) Effect() Effect { return Effect{SendsMessage: true} }
