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
	return &textStep{kind: "echo", text: text}, nil
}

// textStep sends one text message; echo and the plain form of reply plan it.
type textStep struct {
	kind string
	text string
}

var _ Step = (*textStep)(nil)

func (s *textStep) Kind() string { return s.kind }

func (s *textStep) Fields() map[string]any { return map[string]any{"text": s.text} }

func (s *textStep) Execute(ctx context.Context, p Platform, to messenger.Recipient) error {
	if err := p.SendMessage(ctx, to, &messenger.Message{Text: s.text}); err != nil {
		return fmt.Errorf("%s: %w", s.kind, err)
	}
	return nil
}

func (s *textStep) Effect() Effect { return Effect{SendsMessage: true} }
