package sandbox

import (
	"errors"
	"strings"

	"github.com/threadgate/threadgate/messenger"
)

// This file holds what the platform does when the user, the bot or an agent
// app acts: who owns each thread, who may send, and which webhooks the bot
// receives. The Graph endpoints (the bot's side) and the JSON API (the user
// and agent side) both call it. Every method takes e.mu itself.

// errTooManyUsers refuses a new user beyond the emulator's bound.
var errTooManyUsers = errors.New("the sandbox holds too many conversations; restart it to start over")

// page is the Page as the sender or recipient of an event.
func (e *Emulator) page() messenger.Party { return messenger.Party{ID: messenger.ID(e.opt.PageID)} }

// party is a user as the sender or recipient of an event.
func party(psid string) messenger.Party { return messenger.Party{ID: messenger.ID(psid)} }

// channelFor returns the channel on which the bot receives an event of the
// thread now: messaging when it owns the thread or the thread is idle.
func (e *Emulator) channelFor(t *thread) string {
	if o := e.ownerOf(t); o == "" || o == e.opt.BotAppID {
		return channelMessaging
	}
	return channelStandby
}

// userMessage is the user writing text or tapping a quick reply. The bot's
// app, the Page's default app, picks up an idle thread.
func (e *Emulator) userMessage(psid, text, quickReply string) (Item, <-chan delivery, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.thread(psid, true)
	if t == nil {
		return Item{}, nil, errTooManyUsers
	}
	if quickReply != "" && text == "" {
		text = e.offeredTitle(t, quickReply, false)
	}
	e.userActive(t)
	it := Item{From: "user", MID: newMID(), Text: text, QuickReply: quickReply, Channel: e.channelFor(t)}
	msg := &messenger.InboundMessage{MID: it.MID, Text: text}
	if quickReply != "" {
		msg.QuickReply = &messenger.InboundQuickReply{Payload: quickReply}
	}
	it = e.addItem(t, it)
	return it, e.queueWebhook(psid, it.Channel, messenger.Event{Sender: party(psid), Recipient: e.page(), Message: msg}), nil
}

// userPostback is the user tapping a postback button. The copy on standby
// carries no payload, as on Facebook.
func (e *Emulator) userPostback(psid, title, payload string) (Item, <-chan delivery, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.thread(psid, true)
	if t == nil {
		return Item{}, nil, errTooManyUsers
	}
	if title == "" {
		title = e.offeredTitle(t, payload, true)
	}
	e.userActive(t)
	it := Item{From: "user", MID: newMID(), Text: title, Postback: payload, Channel: e.channelFor(t)}
	pb := &messenger.Postback{MID: it.MID, Title: title}
	if it.Channel == channelMessaging {
		pb.Payload = payload
	}
	it = e.addItem(t, it)
	return it, e.queueWebhook(psid, it.Channel, messenger.Event{Sender: party(psid), Recipient: e.page(), Postback: pb}), nil
}

// userActive records a user message: it restarts the owner's 24 hours, and
// the default app (the bot) takes an idle thread.
func (e *Emulator) userActive(t *thread) {
	if e.ownerOf(t) == "" {
		e.setOwner(t, e.opt.BotAppID)
	}
	t.lastActivity = e.now()
}

// offeredTitle finds the title of the latest quick reply or button with
// this payload; the payload itself when none was offered.
func (e *Emulator) offeredTitle(t *thread, payload string, button bool) string {
	for i := len(t.items) - 1; i >= 0; i-- {
		list := t.items[i].QuickReplies
		if button {
			list = t.items[i].Buttons
		}
		for _, c := range list {
			if c.Payload == payload {
				return c.Title
			}
		}
	}
	return payload
}

// send is an app sending a message to the user. Only the thread's owner
// may send; the bot may also send while the thread is idle. Every app's
// message is echoed to the bot.
func (e *Emulator) send(appID, psid string, msg *messenger.Message) (string, <-chan delivery, *graphError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, gerr := e.sendable(appID, psid)
	if gerr != nil {
		return "", nil, gerr
	}
	it := Item{From: e.role(appID), App: e.appName(appID), AppID: appID, MID: newMID(), Text: msg.Text}
	echo := &messenger.InboundMessage{MID: it.MID, Text: msg.Text, IsEcho: true, AppID: messenger.ID(appID), Metadata: msg.Metadata}
	for _, q := range msg.QuickReplies {
		it.QuickReplies = append(it.QuickReplies, Choice{Type: q.ContentType, Title: q.Title, Payload: q.Payload})
	}
	if a := msg.Attachment; a != nil {
		it.Text = a.Payload.Text
		it.Buttons = choices(a.Payload.Buttons)
		richItem(&it, a) // rich.go
		echo.Attachments = []messenger.InboundAttachment{{Type: a.Type, Payload: messenger.AttachmentPayload{URL: a.Payload.URL}}}
	}
	if t.typing == appID {
		t.typing = ""
	}
	e.addItem(t, it)
	return it.MID, e.queueWebhook(psid, e.channelFor(t), messenger.Event{Sender: e.page(), Recipient: party(psid), Message: echo}), nil
}

// senderAction is an app showing or hiding its typing indicator, or
// marking the conversation seen.
func (e *Emulator) senderAction(appID, psid, action string) *graphError {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, gerr := e.sendable(appID, psid)
	if gerr != nil {
		return gerr
	}
	switch action {
	case messenger.TypingOn:
		t.typing, t.typingSince = appID, e.now()
	case messenger.TypingOff:
		if t.typing == appID {
			t.typing = ""
		}
	case messenger.MarkSeen:
		t.seen = e.now()
	default:
		return errParam("param sender_action must be one of {typing_on, typing_off, mark_seen, react, unreact}")
	}
	e.publishThread(t)
	return nil
}

// sendable returns the thread if the app may send in it now.
func (e *Emulator) sendable(appID, psid string) (*thread, *graphError) {
	t := e.thread(psid, false)
	if t == nil {
		return nil, errNoUser
	}
	owner := e.ownerOf(t)
	if owner != appID && (owner != "" || appID != e.opt.BotAppID) {
		return nil, errNotOwner
	}
	return t, nil
}

// role is how a conversation item names the kind of app that sent it.
func (e *Emulator) role(appID string) string {
	if appID == e.opt.BotAppID {
		return botName
	}
	return "agent"
}

// knownApp reports whether an app ID can own a thread: the bot or an agent.
func (e *Emulator) knownApp(id string) bool {
	if id == e.opt.BotAppID {
		return true
	}
	_, ok := e.findAgent(id)
	return ok
}

// pass hands the thread from its owner (or, when idle, from any app) to
// target. The new owner is notified: the bot by a pass_thread_control
// webhook on messaging, an agent on the page.
func (e *Emulator) pass(appID, psid, target, metadata string) (<-chan delivery, *graphError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.thread(psid, false)
	switch {
	case t == nil:
		return nil, errNoUser
	case !e.knownApp(target):
		return nil, errParam("param target_app_id must be the ID of an app connected to the Page")
	case target == appID:
		return nil, errParam("param target_app_id must be another app than the one making the call")
	case checkMetadata(metadata) != nil:
		return nil, checkMetadata(metadata)
	}
	owner := e.ownerOf(t)
	if owner != appID && owner != "" {
		return nil, errControlNotOwner
	}
	e.setOwner(t, target)
	e.note(t, appID, "passed the thread to "+e.appName(target), metadata)
	change := &messenger.ThreadOwnerChange{NewOwnerAppID: messenger.ID(target), PreviousOwnerAppID: messenger.ID(owner), Metadata: metadata}
	if target == e.opt.BotAppID {
		return e.queueWebhook(psid, channelMessaging, messenger.Event{Sender: party(psid), Recipient: e.page(), PassThreadControl: change}), nil
	}
	e.agentNotice(psid, target, "pass_thread_control", metadata)
	return nil, nil
}

// take makes the app the thread's owner. The app that lost the thread is
// notified: the bot (also as the default app of an idle thread) by a
// take_thread_control webhook on messaging, an agent on the page.
func (e *Emulator) take(appID, psid, metadata string) (<-chan delivery, *graphError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.thread(psid, false)
	if t == nil {
		return nil, errNoUser
	}
	if gerr := checkMetadata(metadata); gerr != nil {
		return nil, gerr
	}
	prev := e.ownerOf(t)
	if prev == appID {
		return nil, nil
	}
	e.setOwner(t, appID)
	e.note(t, appID, "took the thread from "+e.appName(prev), metadata)
	change := &messenger.ThreadOwnerChange{NewOwnerAppID: messenger.ID(appID), PreviousOwnerAppID: messenger.ID(prev), Metadata: metadata}
	if prev == e.opt.BotAppID || prev == "" {
		return e.queueWebhook(psid, channelMessaging, messenger.Event{Sender: party(psid), Recipient: e.page(), TakeThreadControl: change}), nil
	}
	e.agentNotice(psid, prev, "take_thread_control", metadata)
	return nil, nil
}

// request asks the thread's owner for the thread. The bot receives a
// request_thread_control webhook when it owns the thread or the thread is
// idle (it is the default app); an agent owner is told on the page.
// Nothing changes hands: the owner may pass or ignore it.
func (e *Emulator) request(appID, psid, metadata string) (<-chan delivery, *graphError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.thread(psid, false)
	if t == nil {
		return nil, errNoUser
	}
	if gerr := checkMetadata(metadata); gerr != nil {
		return nil, gerr
	}
	owner := e.ownerOf(t)
	if owner == appID {
		return nil, nil
	}
	e.note(t, appID, "asked for the thread", metadata)
	req := &messenger.ThreadControlRequest{RequestedOwnerAppID: messenger.ID(appID), Metadata: metadata}
	switch {
	case owner == e.opt.BotAppID || (owner == "" && appID != e.opt.BotAppID):
		return e.queueWebhook(psid, channelMessaging, messenger.Event{Sender: party(psid), Recipient: e.page(), RequestThreadControl: req}), nil
	case owner != "":
		e.agentNotice(psid, owner, "request_thread_control", metadata)
	}
	return nil, nil
}

// release makes the thread idle; only its owner may. No webhook is sent:
// the next user message goes to the default app, the bot.
func (e *Emulator) release(appID, psid string) *graphError {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.thread(psid, false)
	if t == nil {
		return errNoUser
	}
	if e.ownerOf(t) != appID {
		return errControlNotOwner
	}
	e.setOwner(t, "")
	e.note(t, appID, "released the thread; it is idle", "")
	return nil
}

// threadOwner returns the owner of a user's thread ("" when idle) and when
// its control expires.
func (e *Emulator) threadOwner(psid string) (string, int64, *graphError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.thread(psid, false)
	if t == nil {
		return "", 0, errNoUser
	}
	return e.ownerOf(t), t.lastActivity.Add(ownershipTimeout).Unix(), nil
}

// note adds a line about the thread's ownership to the conversation.
func (e *Emulator) note(t *thread, appID, what, metadata string) {
	text := e.appName(appID) + " " + what
	if metadata != "" {
		text += " (metadata: " + metadata + ")"
	}
	e.addItem(t, Item{From: "system", App: e.appName(appID), AppID: appID, Text: text})
}

// agentNotice records an event an agent app receives; the agent side is
// the page, so it goes to the inspector.
func (e *Emulator) agentNotice(psid, appID, event, metadata string) {
	s := e.appName(appID) + " received " + event
	if metadata != "" {
		s += " (metadata: " + strings.TrimSpace(metadata) + ")"
	}
	e.addLog(LogEntry{Kind: LogAgent, User: psid, Summary: s})
}
