package sandbox

import (
	"fmt"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/messenger"
)

// The Graph edges the bot's app calls. Each one decodes and checks its
// parameters as Facebook does, then acts for the bot's app.

// graphSend serves POST /me/messages: a message (text, quick replies, a
// button template), or a sender_action alone, optionally with the Send API's
// thread_control to pass or release the thread in the same call.
func (e *Emulator) graphSend(p params) (any, *graphError) {
	psid, gerr := recipient(p)
	if gerr != nil {
		return nil, gerr
	}
	bot := e.opt.BotAppID
	if action := p.str("sender_action"); action != "" {
		if _, ok := p["message"]; ok {
			return nil, errParam("param sender_action cannot be sent with message")
		}
		if gerr := e.senderAction(bot, psid, action); gerr != nil {
			return nil, gerr
		}
		return gin.H{"recipient_id": psid}, nil
	}
	var msg messenger.Message
	if !p.decode("message", &msg) {
		return nil, errParam("param message must be non-empty.")
	}
	if gerr := checkMessage(&msg); gerr != nil {
		return nil, gerr
	}
	switch t := p.str("messaging_type"); t {
	case "RESPONSE", "UPDATE":
	case "MESSAGE_TAG":
		if p.str("tag") == "" {
			return nil, errParam("param tag must be non-empty when messaging_type is MESSAGE_TAG")
		}
	default:
		return nil, errParam("param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
	}
	var ctl struct {
		ControlType string       `json:"control_type"`
		AppID       messenger.ID `json:"app_id"`
		Metadata    string       `json:"metadata"`
	}
	if _, ok := p["thread_control"]; ok {
		if !p.decode("thread_control", &ctl) || (ctl.ControlType != "pass" && ctl.ControlType != "release") {
			return nil, errParam("param thread_control[control_type] must be one of {pass, release}")
		}
		if ctl.AppID == "" {
			ctl.AppID = messenger.ID(bot) // pass without app_id goes to the default app
		}
		if ctl.ControlType == "pass" && (!e.knownApp(ctl.AppID.String()) || ctl.AppID.String() == bot) {
			return nil, errParam("param thread_control[app_id] must be the ID of another app connected to the Page")
		}
	}
	mid, _, gerr := e.send(bot, psid, &msg)
	if gerr != nil {
		return nil, gerr
	}
	if ctl.Metadata == "" {
		// The handover's metadata may travel as the message's, which the
		// receiving app reads in the echo (threadgate's routing dialect).
		ctl.Metadata = msg.Metadata
	}
	switch ctl.ControlType {
	case "pass":
		_, gerr = e.pass(bot, psid, ctl.AppID.String(), ctl.Metadata)
	case "release":
		gerr = e.release(bot, psid)
	}
	if gerr != nil {
		return nil, gerr
	}
	return gin.H{"recipient_id": psid, "message_id": mid}, nil
}

// checkMessage enforces the Send API's limits on a message. They count
// characters, not bytes, and are the limits `threadgate check` applies
// (the actions package's), so that a message the check accepts is never
// refused here.
func checkMessage(m *messenger.Message) *graphError {
	switch {
	case m.Text == "" && m.Attachment == nil:
		return errParam("param message must have text or attachment")
	case m.Text != "" && m.Attachment != nil:
		return errParam("param message must have text or attachment, not both")
	case utf8.RuneCountInString(m.Text) > actions.MaxTextLen:
		return errParam(fmt.Sprintf("Length of param message[text] must be less than or equal to %d", actions.MaxTextLen))
	case len(m.QuickReplies) > actions.MaxQuickReplies:
		return errParam(fmt.Sprintf("param message[quick_replies] must have at most %d elements", actions.MaxQuickReplies))
	case utf8.RuneCountInString(m.Metadata) > actions.MaxMetadataLen:
		return errParam(fmt.Sprintf("Length of param message[metadata] must be less than or equal to %d", actions.MaxMetadataLen))
	}
	for _, q := range m.QuickReplies {
		switch {
		case q.ContentType != "text" && q.ContentType != "user_phone_number" && q.ContentType != "user_email":
			return errParam("param message[quick_replies][content_type] must be one of {text, user_phone_number, user_email}")
		case q.ContentType == "text" && (q.Title == "" || q.Payload == ""):
			return errParam("param message[quick_replies] of content_type text need a title and a payload")
		case utf8.RuneCountInString(q.Title) > actions.MaxTitleLen:
			return errParam(fmt.Sprintf("param message[quick_replies][title] must be at most %d characters", actions.MaxTitleLen))
		case utf8.RuneCountInString(q.Payload) > actions.MaxPayloadLen:
			return errParam(fmt.Sprintf("param message[quick_replies][payload] must be at most %d characters", actions.MaxPayloadLen))
		}
	}
	if a := m.Attachment; a != nil && (a.Type != "template" || a.Payload.TemplateType == "generic") {
		return checkRichAttachment(a) // rich.go
	}
	if a := m.Attachment; a != nil {
		if a.Type != "template" || a.Payload.TemplateType != "button" {
			return errParam("the sandbox supports button and generic templates and media attachments")
		}
		if a.Payload.Text == "" || utf8.RuneCountInString(a.Payload.Text) > actions.MaxButtonTextLen {
			return errParam(fmt.Sprintf("param message[attachment][payload][text] must be 1 to %d characters", actions.MaxButtonTextLen))
		}
		if n := len(a.Payload.Buttons); n < 1 || n > actions.MaxButtons {
			return errParam(fmt.Sprintf("param message[attachment][payload][buttons] must have 1 to %d elements", actions.MaxButtons))
		}
		for _, b := range a.Payload.Buttons {
			switch {
			case b.Title == "" || utf8.RuneCountInString(b.Title) > actions.MaxTitleLen:
				return errParam(fmt.Sprintf("param message[attachment][payload][buttons][title] must be 1 to %d characters", actions.MaxTitleLen))
			case b.Type == "postback" && (b.Payload == "" || utf8.RuneCountInString(b.Payload) > actions.MaxPayloadLen):
				return errParam(fmt.Sprintf("param message[attachment][payload][buttons][payload] must be 1 to %d characters", actions.MaxPayloadLen))
			case b.Type == "web_url" && b.URL == "":
				return errParam("param message[attachment][payload][buttons][url] must be non-empty")
			case b.Type != "postback" && b.Type != "web_url":
				return errParam("the sandbox supports only postback and web_url buttons")
			}
		}
	}
	return nil
}

// graphPass serves POST /me/pass_thread_control.
func (e *Emulator) graphPass(p params) (any, *graphError) {
	psid, gerr := recipient(p)
	if gerr != nil {
		return nil, gerr
	}
	target := p.str("target_app_id")
	if target == "" {
		return nil, errParam("param target_app_id must be non-empty.")
	}
	if _, gerr := e.pass(e.opt.BotAppID, psid, target, p.str("metadata")); gerr != nil {
		return nil, gerr
	}
	return gin.H{"success": true}, nil
}

// graphTake serves POST /me/take_thread_control.
func (e *Emulator) graphTake(p params) (any, *graphError) {
	psid, gerr := recipient(p)
	if gerr != nil {
		return nil, gerr
	}
	if _, gerr := e.take(e.opt.BotAppID, psid, p.str("metadata")); gerr != nil {
		return nil, gerr
	}
	return gin.H{"success": true}, nil
}

// graphRequest serves POST /me/request_thread_control.
func (e *Emulator) graphRequest(p params) (any, *graphError) {
	psid, gerr := recipient(p)
	if gerr != nil {
		return nil, gerr
	}
	if _, gerr := e.request(e.opt.BotAppID, psid, p.str("metadata")); gerr != nil {
		return nil, gerr
	}
	return gin.H{"success": true}, nil
}

// graphRelease serves POST /me/release_thread_control.
func (e *Emulator) graphRelease(p params) (any, *graphError) {
	psid, gerr := recipient(p)
	if gerr != nil {
		return nil, gerr
	}
	if gerr := e.release(e.opt.BotAppID, psid); gerr != nil {
		return nil, gerr
	}
	return gin.H{"success": true}, nil
}

// graphThreadOwner serves GET /me/thread_owner?recipient=PSID: the owner
// and when its control expires, or no data while the thread is idle.
func (e *Emulator) graphThreadOwner(p params) (any, *graphError) {
	psid := p.str("recipient")
	if psid == "" {
		if id, gerr := recipient(p); gerr == nil {
			psid = id
		}
	}
	if psid == "" {
		return nil, errParam("param recipient must be non-empty.")
	}
	owner, expires, gerr := e.threadOwner(psid)
	if gerr != nil {
		return nil, gerr
	}
	data := []gin.H{}
	if owner != "" {
		data = append(data, gin.H{"thread_owner": gin.H{"app_id": owner, "expiration": expires}})
	}
	return gin.H{"data": data}, nil
}
