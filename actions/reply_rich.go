package actions

import (
	"fmt"
	"strconv"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// Rich replies: a media file by URL (reply: {image: URL}, video, audio,
// file) and cards (reply: {cards: [...]}, a generic template: a carousel of
// up to ten cards, each with a title, a subtitle, an image, a link opened
// by tapping the card and up to three buttons).

// Limits of a generic template.
const (
	MaxCards       = 10 // cards of one carousel
	MaxCardTextLen = 80 // a card's title, and its subtitle
)

// media is a reply that sends a file by URL.
type media struct {
	kind string // image, video, audio or file
	url  string
}

// card is one card of a generic template; title and subtitle are templates.
type card struct {
	title, subtitle *Template // subtitle nil when not given
	imageURL        string
	defaultURL      string
	buttons         []messenger.Button
}

// cardKeys are the keys of a card.
var cardKeys = []string{"title", "subtitle", "image_url", "default_action", "buttons"}

func decodeCards(n *yaml.Node, c *Compiler) ([]card, diag.List) {
	list, err := items(n, "reply.cards", "cards", MaxCards)
	if err != nil {
		return nil, diag.List{err}
	}
	var errs diag.List
	out := make([]card, 0, len(list))
	for i, item := range list {
		what := "reply.cards[" + strconv.Itoa(i) + "]"
		fields, e := diag.Fields(item, what, cardKeys)
		errs = append(errs, e...)
		if e != nil && fields == nil {
			continue
		}
		var cd card
		for _, f := range fields {
			var err *diag.Error
			switch f.Key.Value {
			case "title":
				cd.title, err = c.Template(f.Value, what+".title", MaxCardTextLen)
				if err == nil && cd.title.Source() == "" {
					err = diag.At(f.Value, "%s.title: the title is empty", what)
				}
			case "subtitle":
				cd.subtitle, err = c.Template(f.Value, what+".subtitle", MaxCardTextLen)
			case "image_url":
				cd.imageURL, err = linkURL(f.Value, what+".image_url")
			case "default_action":
				cd.defaultURL, err = linkURL(f.Value, what+".default_action")
			case "buttons":
				b, e := decodeButtons(f.Value, what+".buttons")
				errs = append(errs, e...)
				cd.buttons = b
			}
			errs.Add(err)
		}
		if !hasKey(fields, "title") {
			errs.Add(diag.At(item, "%s: title is required", what))
		}
		out = append(out, cd)
	}
	return out, errs
}

// planRich renders a media or cards reply.
func (a *replyAction) planRich(d *Data) (Step, error) {
	msg := &messenger.Message{QuickReplies: a.quickReplies}
	if a.media != nil {
		msg.Attachment = &messenger.Attachment{Type: a.media.kind, Payload: messenger.TemplatePayload{URL: a.media.url, IsReusable: true}}
		return &replyStep{msg: msg}, nil
	}
	elems := make([]messenger.Element, len(a.cards))
	for i, cd := range a.cards {
		title, err := cd.title.Render(d)
		if err != nil {
			return nil, err
		}
		if title == "" {
			return nil, fmt.Errorf("reply: card %d: the title rendered empty", i+1)
		}
		e := messenger.Element{Title: title, ImageURL: cd.imageURL, Buttons: cd.buttons}
		if cd.subtitle != nil {
			if e.Subtitle, err = cd.subtitle.Render(d); err != nil {
				return nil, err
			}
		}
		if cd.defaultURL != "" {
			e.DefaultAction = &messenger.DefaultAction{Type: "web_url", URL: cd.defaultURL}
		}
		elems[i] = e
	}
	msg.Attachment = &messenger.Attachment{Type: "template", Payload: messenger.TemplatePayload{TemplateType: "generic", Elements: elems}}
	return &replyStep{msg: msg}, nil
}

// cardFields describes cards for Step.Fields.
func cardFields(elems []messenger.Element) []any {
	out := make([]any, len(elems))
	for i, e := range elems {
		m := map[string]any{"title": e.Title}
		if e.Subtitle != "" {
			m["subtitle"] = e.Subtitle
		}
		if e.ImageURL != "" {
			m["image_url"] = e.ImageURL
		}
		if e.DefaultAction != nil {
			m["default_action"] = e.DefaultAction.URL
		}
		if len(e.Buttons) > 0 {
			m["buttons"] = buttonFields(e.Buttons)
		}
		out[i] = m
	}
	return out
}

// richReplySchemas are the JSON Schemas of reply's media and cards forms,
// each with optional quick replies.
func richReplySchemas() []any {
	quickReplies := quickRepliesSchema
	var out []any
	for _, kind := range []string{"image", "video", "audio", "file"} {
		out = append(out, map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"required":             []any{kind},
			"properties":           map[string]any{kind: mediaSchema(kind), "quick_replies": quickReplies},
		})
	}
	return append(out, map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"cards"},
		"properties":           map[string]any{"cards": cardsSchema, "quick_replies": quickReplies},
	})
}

var urlSchema = map[string]any{"type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://"}

func mediaSchema(kind string) map[string]any {
	return map[string]any{
		"description": "An http or https address of the " + kind + " to send (instead of a text).",
		"type":        "string",
		"pattern":     "^[hH][tT][tT][pP][sS]?://",
	}
}

var cardsSchema = map[string]any{
	"description": "Cards sent as a carousel (a generic template), instead of a text.",
	"type":        "array",
	"minItems":    1,
	"maxItems":    MaxCards,
	"items": map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"title"},
		"properties": map[string]any{
			"title":          templateSchema("The card's title (a template), at most 80 characters.", MaxCardTextLen),
			"subtitle":       templateSchema("The card's subtitle (a template), at most 80 characters.", MaxCardTextLen),
			"image_url":      urlSchema,
			"default_action": withDescription(urlSchema, "The address opened when the card is tapped."),
			"buttons": map[string]any{
				"type":     "array",
				"minItems": 1,
				"maxItems": MaxButtons,
				"items": map[string]any{"oneOf": []any{
					map[string]any{"type": "object", "additionalProperties": false, "required": []any{"title", "payload"},
						"properties": map[string]any{"title": titleSchema, "payload": payloadSchema}},
					map[string]any{"type": "object", "additionalProperties": false, "required": []any{"title", "url"},
						"properties": map[string]any{"title": titleSchema, "url": urlSchema}},
				}},
			},
		},
	},
}

func withDescription(s map[string]any, desc string) map[string]any {
	out := map[string]any{"description": desc}
	for k, v := range s {
		out[k] = v
	}
	return out
}
