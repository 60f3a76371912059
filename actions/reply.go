package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// reply: TEMPLATE, or reply: {text, quick_replies, buttons}.
//
// Quick replies and buttons may be given together: the Send API takes
// quick_replies beside an attachment, so the message is a button template
// with quick replies under it.
var replySpec = Spec{
	Name:        "reply",
	Doc:         "Sends a message: a text (a template), optionally with quick replies and up to three buttons; or an image, video, audio or file by URL; or cards (a generic template carousel).",
	ExpectField: "text",
	FieldNames:  []string{"text", "quick_replies", "buttons", "image", "video", "audio", "file", "cards"},
	Schema: map[string]any{
		"description": "The text to send (a template), or a message: a text with quick replies and buttons, a media file by URL, or cards.",
		"oneOf": append([]any{
			templateSchema("The text to send (a template).", MaxTextLen),
			map[string]any{
				"type":                 "object",
				"additionalProperties": false,
				"required":             []any{"text"},
				// With buttons, the text is a button template's: shorter.
				"if": map[string]any{"required": []any{"buttons"}},
				"then": map[string]any{"properties": map[string]any{
					"text": templateSchema("The text of a button template (a template).", MaxButtonTextLen),
				}},
				"properties": map[string]any{
					"text":          templateSchema("The text to send (a template); at most 640 characters with buttons.", MaxTextLen),
					"quick_replies": quickRepliesSchema,
					"buttons": map[string]any{
						"description": "Buttons of a button template: a postback button (payload) or a link (url).",
						"type":        "array",
						"minItems":    1,
						"maxItems":    MaxButtons,
						"items": map[string]any{
							"oneOf": []any{
								map[string]any{
									"type":                 "object",
									"additionalProperties": false,
									"required":             []any{"title", "payload"},
									"properties":           map[string]any{"title": titleSchema, "payload": payloadSchema},
								},
								map[string]any{
									"type":                 "object",
									"additionalProperties": false,
									"required":             []any{"title", "url"},
									"properties": map[string]any{
										"title": titleSchema,
										"url": map[string]any{
											"description": "An http or https address opened by the button.",
											"type":        "string",
											"pattern":     "^[hH][tT][tT][pP][sS]?://",
										},
									},
								},
							},
						},
					},
				},
			},
		}, richReplySchemas()...),
	},
	Decode:     decodeReply,
	DecodeStep: decodeReplyStep,
}

var (
	quickRepliesSchema = map[string]any{
		"description": "Chips offered under the message; tapping one sends its payload as a quick_reply.",
		"type":        "array",
		"minItems":    1,
		"maxItems":    MaxQuickReplies,
		"items": map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"required":             []any{"title", "payload"},
			"properties": map[string]any{
				"title":   titleSchema,
				"payload": payloadSchema,
			},
		},
	}
	titleSchema = map[string]any{
		"description": "The label shown to the user (literal text).",
		"type":        "string",
		"minLength":   1,
		"maxLength":   MaxTitleLen,
	}
	payloadSchema = map[string]any{
		"description": "The payload sent back when the user taps it (literal).",
		"type":        []any{"string", "number"},
		"minLength":   1,
		"maxLength":   MaxPayloadLen,
	}
)

// templateSchema is the schema of a template whose literal form is limited
// to max characters; a value with "{{" is checked when rendered.
func templateSchema(desc string, max int) map[string]any {
	return map[string]any{
		"description": desc,
		"type":        "string",
		"anyOf":       []any{map[string]any{"maxLength": max}, map[string]any{"pattern": `\{\{`}},
	}
}

type replyAction struct {
	text         *Template // nil for a media or cards
	quickReplies []messenger.QuickReply
	buttons      []messenger.Button
	media        *media // reply_rich.go
	cards        []card // reply_rich.go
}

// replyKeys are the keys of reply's mapping form.
var replyKeys = []string{"text", "quick_replies", "buttons", "image", "video", "audio", "file", "cards"}

var _ Action = (*replyAction)(nil)

func decodeReply(v *yaml.Node, c *Compiler) (Action, diag.List) {
	v = diag.Resolve(v)
	if v != nil && v.Kind == yaml.ScalarNode {
		t, err := c.Template(v, "reply", MaxTextLen)
		if err != nil {
			return nil, diag.List{err}
		}
		if t.Source() == "" {
			return nil, diag.List{diag.At(v, "reply: the text is empty")}
		}
		return &replyAction{text: t}, nil
	}
	if v == nil || v.Kind != yaml.MappingNode {
		return nil, diag.List{diag.At(v, "reply: expected a text, or a mapping with text (or image, video, audio, file, cards), quick_replies and buttons, got %s", diag.KindName(v))}
	}
	fields, errs := diag.Fields(v, "reply", replyKeys)
	a := &replyAction{}
	var textNode *yaml.Node
	var bodies []*yaml.Node // the keys that give the message's body
	for _, f := range fields {
		switch f.Key.Value {
		case "text":
			textNode = f.Value
			bodies = append(bodies, f.Key)
		case "quick_replies":
			qr, e := decodeQuickReplies(f.Value)
			errs = append(errs, e...)
			a.quickReplies = qr
		case "buttons":
			b, e := decodeButtons(f.Value, "reply.buttons")
			errs = append(errs, e...)
			a.buttons = b
		case "image", "video", "audio", "file":
			bodies = append(bodies, f.Key)
			u, err := linkURL(f.Value, "reply."+f.Key.Value)
			errs.Add(err)
			a.media = &media{kind: f.Key.Value, url: u}
		case "cards":
			bodies = append(bodies, f.Key)
			cards, e := decodeCards(f.Value, c)
			errs = append(errs, e...)
			a.cards = cards
		}
	}
	switch {
	case len(bodies) == 0:
		errs.Add(diag.At(v, "reply: text is required (or image, video, audio, file or cards)"))
		return nil, errs
	case len(bodies) > 1:
		errs.Add(diag.At(bodies[1], "reply: %s and %s cannot be sent in one message, expected one of text, image, video, audio, file or cards (use two replies)", bodies[0].Value, bodies[1].Value))
	}
	if hasKey(fields, "buttons") && textNode == nil {
		errs.Add(diag.At(v, "reply: buttons go with a text (a button template); a card has buttons of its own"))
	}
	if textNode == nil {
		if len(errs) > 0 {
			return nil, errs
		}
		return a, nil
	}
	limit := MaxTextLen
	if hasKey(fields, "buttons") {
		limit = MaxButtonTextLen
	}
	t, err := c.Template(textNode, "reply.text", limit)
	switch {
	case err != nil:
		errs.Add(err)
	case t.Source() == "":
		errs.Add(diag.At(textNode, "reply.text: the text is empty"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	a.text = t
	return a, nil
}

func hasKey(fields []diag.Field, key string) bool {
	for _, f := range fields {
		if f.Key.Value == key {
			return true
		}
	}
	return false
}

// items checks that n is a non-empty list of at most max items.
func items(n *yaml.Node, what, noun string, max int) ([]*yaml.Node, *diag.Error) {
	n = diag.Resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil, diag.At(n, "%s: expected a list of %s, got %s", what, noun, diag.KindName(n))
	}
	if len(n.Content) == 0 {
		return nil, diag.At(n, "%s: the list is empty, give at least one or remove the key", what)
	}
	if len(n.Content) > max {
		return nil, diag.At(n, "%s: %d %s, at most %d are allowed", what, len(n.Content), noun, max)
	}
	return n.Content, nil
}

func decodeQuickReplies(n *yaml.Node) ([]messenger.QuickReply, diag.List) {
	list, err := items(n, "reply.quick_replies", "quick replies", MaxQuickReplies)
	if err != nil {
		return nil, diag.List{err}
	}
	var errs diag.List
	out := make([]messenger.QuickReply, 0, len(list))
	for i, item := range list {
		what := "reply.quick_replies[" + strconv.Itoa(i) + "]"
		fields, e := diag.Fields(item, what, []string{"title", "payload"})
		errs = append(errs, e...)
		if e != nil && fields == nil {
			continue
		}
		qr := messenger.QuickReply{ContentType: "text"}
		var title, payload *yaml.Node
		for _, f := range fields {
			switch f.Key.Value {
			case "title":
				title = f.Value
				qr.Title, err = literal(f.Value, what+".title", MaxTitleLen, false)
			case "payload":
				payload = f.Value
				qr.Payload, err = literal(f.Value, what+".payload", MaxPayloadLen, true)
			}
			errs.Add(err)
		}
		if title == nil {
			errs.Add(diag.At(item, "%s: title is required", what))
		}
		if payload == nil {
			errs.Add(diag.At(item, "%s: payload is required", what))
		}
		out = append(out, qr)
	}
	return out, errs
}

func decodeButtons(n *yaml.Node, where string) ([]messenger.Button, diag.List) {
	list, err := items(n, where, "buttons", MaxButtons)
	if err != nil {
		return nil, diag.List{err}
	}
	var errs diag.List
	out := make([]messenger.Button, 0, len(list))
	for i, item := range list {
		what := where + "[" + strconv.Itoa(i) + "]"
		fields, e := diag.Fields(item, what, []string{"title", "payload", "url"})
		errs = append(errs, e...)
		if e != nil && fields == nil {
			continue
		}
		var b messenger.Button
		var title, target *yaml.Node
		for _, f := range fields {
			switch f.Key.Value {
			case "title":
				title = f.Value
				b.Title, err = literal(f.Value, what+".title", MaxTitleLen, false)
				errs.Add(err)
				continue
			case "payload":
				b.Type = "postback"
				b.Payload, err = literal(f.Value, what+".payload", MaxPayloadLen, true)
			case "url":
				b.Type = "web_url"
				b.URL, err = linkURL(f.Value, what+".url")
			}
			errs.Add(err)
			if target != nil {
				errs.Add(diag.At(f.Key, "%s: give either payload (a postback button) or url (a link), not both", what))
			}
			target = f.Key
		}
		if title == nil {
			errs.Add(diag.At(item, "%s: title is required", what))
		}
		if target == nil {
			errs.Add(diag.At(item, "%s: give payload (a postback button) or url (a link)", what))
		}
		out = append(out, b)
	}
	return out, errs
}

// literal decodes a non-empty literal string of at most max characters;
// with number, a number is accepted too (a payload may be one).
func literal(n *yaml.Node, what string, max int, number bool) (string, *diag.Error) {
	var s string
	var err *diag.Error
	if number {
		s, err = diag.Scalar(n, what)
	} else {
		s, err = diag.String(n, what)
	}
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", diag.At(n, "%s: is empty", what)
	}
	if c := utf8.RuneCountInString(s); c > max {
		return "", diag.At(n, "%s: %d characters long, the limit is %d", what, c, max)
	}
	return s, nil
}

func linkURL(n *yaml.Node, what string) (string, *diag.Error) {
	s, err := diag.String(n, what)
	if err != nil {
		return "", err
	}
	u, perr := url.Parse(s)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", diag.At(n, "%s: expected an http:// or https:// address, got %q", what, s)
	}
	return s, nil
}

func (a *replyAction) Kind() string { return "reply" }

func (a *replyAction) Plan(d *Data) (Step, error) {
	if a.text == nil {
		return a.planRich(d)
	}
	text, err := a.text.Render(d)
	if err != nil {
		return nil, err
	}
	if text == "" {
		return nil, fmt.Errorf("reply: the text rendered empty")
	}
	if len(a.buttons) == 0 && len(a.quickReplies) == 0 {
		return newTextStep("reply", text), nil
	}
	msg := &messenger.Message{QuickReplies: a.quickReplies}
	if len(a.buttons) > 0 {
		// The text's template was parsed with MaxButtonTextLen as its limit.
		msg.Attachment = &messenger.Attachment{
			Type: "template",
			Payload: messenger.TemplatePayload{
				TemplateType: "button",
				Text:         text,
				Buttons:      a.buttons,
			},
		}
	} else {
		msg.Text = text
	}
	return &replyStep{msg: msg}, nil
}

// replyStep sends a message with quick replies or buttons.
type replyStep struct {
	msg *messenger.Message
}

var _ Step = (*replyStep)(nil)

func (s *replyStep) Kind() string { return "reply" }

func (s *replyStep) Fields() map[string]any {
	f := map[string]any{"text": s.msg.Text}
	var buttons []messenger.Button
	if at := s.msg.Attachment; at != nil {
		switch {
		case at.Type != "template":
			delete(f, "text")
			f[at.Type] = at.Payload.URL
		case at.Payload.TemplateType == "generic":
			delete(f, "text")
			f["cards"] = cardFields(at.Payload.Elements)
		default:
			f["text"] = at.Payload.Text
			buttons = at.Payload.Buttons
		}
	}
	if len(s.msg.QuickReplies) > 0 {
		qr := make([]any, len(s.msg.QuickReplies))
		for i, q := range s.msg.QuickReplies {
			qr[i] = map[string]any{"title": q.Title, "payload": q.Payload}
		}
		f["quick_replies"] = qr
	}
	if len(buttons) > 0 {
		f["buttons"] = buttonFields(buttons)
	}
	return f
}

// buttonFields describes buttons for Step.Fields.
func buttonFields(buttons []messenger.Button) []any {
	bs := make([]any, len(buttons))
	for i, b := range buttons {
		m := map[string]any{"title": b.Title}
		if b.URL != "" {
			m["url"] = b.URL
		} else {
			m["payload"] = b.Payload
		}
		bs[i] = m
	}
	return bs
}

func (s *replyStep) Execute(ctx context.Context, p Platform, to messenger.Recipient) error {
	if err := p.SendMessage(ctx, to, s.msg); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	return nil
}

func (s *replyStep) Effect() Effect { return Effect{SendsMessage: true} }

// replyStepData is the encoding of a reply's step: the message of a reply
// with quick replies or buttons, or the text of a plain one.
type replyStepData struct {
	Message *messenger.Message `json:"message,omitempty"`
	Text    string             `json:"text,omitempty"`
}

func (s *replyStep) encodeStep() ([]byte, error) { return json.Marshal(replyStepData{Message: s.msg}) }

// decodeReplyStep reads a reply's step: a message, or a plain text.
func decodeReplyStep(data []byte) (Step, error) {
	var d replyStepData
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	if d.Message == nil {
		return decodeTextStep("reply", data)
	}
	return &replyStep{msg: d.Message}, nil
}
