package sandbox

import (
	"net/url"
	"unicode/utf8"

	"github.com/threadgate/threadgate/messenger"
)

// Rich messages the emulator accepts from the Send API and the playground
// renders: media by URL (image, video, audio, file) and the generic
// template (a carousel of cards).

// choices turns template buttons into the page's choices.
func choices(buttons []messenger.Button) []Choice {
	var out []Choice
	for _, b := range buttons {
		out = append(out, Choice{Type: b.Type, Title: b.Title, Payload: b.Payload, URL: b.URL})
	}
	return out
}

// richItem fills in the media or the cards of a message's attachment.
func richItem(it *Item, a *messenger.Attachment) {
	switch {
	case a.Type != "template":
		it.Media = &Media{Type: a.Type, URL: a.Payload.URL}
	case a.Payload.TemplateType == "generic":
		for _, el := range a.Payload.Elements {
			c := Card{Title: el.Title, Subtitle: el.Subtitle, ImageURL: el.ImageURL, Buttons: choices(el.Buttons)}
			if el.DefaultAction != nil {
				c.URL = el.DefaultAction.URL
			}
			it.Cards = append(it.Cards, c)
		}
	}
}

// checkRichAttachment enforces the Send API's limits on a media attachment
// or a generic template.
func checkRichAttachment(a *messenger.Attachment) *graphError {
	switch a.Type {
	case "image", "video", "audio", "file":
		if !httpURL(a.Payload.URL) {
			return errParam("param message[attachment][payload][url] must be an http or https URL")
		}
		return nil
	case "template":
	default:
		return errParam("param message[attachment][type] must be one of {image, video, audio, file, template}")
	}
	els := a.Payload.Elements
	if len(els) < 1 || len(els) > 10 {
		return errParam("param message[attachment][payload][elements] must have 1 to 10 elements")
	}
	for _, el := range els {
		switch {
		case el.Title == "" || utf8.RuneCountInString(el.Title) > 80:
			return errParam("param message[attachment][payload][elements][title] must be 1 to 80 characters")
		case utf8.RuneCountInString(el.Subtitle) > 80:
			return errParam("param message[attachment][payload][elements][subtitle] must be at most 80 characters")
		case len(el.Buttons) > 3:
			return errParam("param message[attachment][payload][elements][buttons] must have at most 3 elements")
		case el.ImageURL != "" && !httpURL(el.ImageURL):
			return errParam("param message[attachment][payload][elements][image_url] must be an http or https URL")
		}
		for _, b := range el.Buttons {
			if b.Title == "" || utf8.RuneCountInString(b.Title) > 20 || (b.Type != "postback" && b.Type != "web_url") {
				return errParam("param message[attachment][payload][elements][buttons] must be postback or web_url buttons with a title of 1 to 20 characters")
			}
		}
	}
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
