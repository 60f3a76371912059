// Package engine decides what the bot does with one event: given an event and
// a compiled rule set, it returns the rule(s) that fire and the actions they
// plan, rendered. It does no I/O: the clock and per-user state come in as
// arguments, so every decision can be replayed in tests and by `explain`.
package engine

import "github.com/threadgate/threadgate/messenger"

// Kind is the kind of an event as rules see it.
type Kind string

// Event kinds that rules can match with `event:`.
const (
	KindMessage              Kind = "message"
	KindPostback             Kind = "postback"
	KindPassThreadControl    Kind = "pass_thread_control"
	KindTakeThreadControl    Kind = "take_thread_control"
	KindRequestThreadControl Kind = "request_thread_control"
	// KindReturned is not a webhook: the gateway evaluates it after it took
	// the thread back by itself (handover.return_after_idle), so that a rule
	// can tell the user the bot is back.
	KindReturned Kind = "returned"
)

// Kinds lists every event kind a rule may name, in documentation order.
var Kinds = []Kind{KindMessage, KindPostback, KindPassThreadControl, KindTakeThreadControl, KindRequestThreadControl, KindReturned}

// Event is one inbound event, reduced to what rules read.
type Event struct {
	// Kind is what happened.
	Kind Kind
	// Standby is true when the event arrived on the standby channel: another
	// app owns the thread.
	Standby bool
	// Object is "page" (Messenger) or "instagram".
	Object string
	// PageID is the Page or Instagram account the event is for.
	PageID string
	// SenderID is the user's PSID or IGSID.
	SenderID string
	// MID is the message ID, when the event has one.
	MID string
	// Text is the message text, as the user wrote it.
	Text string
	// Payload is the postback payload.
	Payload string
	// QuickReply is the payload of the quick reply the user tapped; HasQuickReply
	// tells an empty payload from none.
	QuickReply    string
	HasQuickReply bool
	// Attachments lists the types of the message's attachments (image, video, …).
	Attachments []string
	// Metadata is the metadata of a handover event.
	Metadata string
	// AppID is the app a handover event is about: the new owner of a
	// pass/take, the requesting app of a request.
	AppID string
}

// State is what the gateway knows about one conversation when the event is
// evaluated: who owns the thread and whether the bot is paused for the user.
type State struct {
	// Owner is "self", "idle", a name from the rules file's apps, or an app ID.
	Owner string
	// Paused is true while the bot is paused for this user.
	Paused bool
	// Transcript holds the user's last few messages, oldest first.
	Transcript []string
	// User is the person's profile (User Profile API), for templates'
	// .User; empty when not fetched or refused. The gateway fetches it
	// only when a rule that fired reads it (actions.ReadsUser). Issue 14.
	User messenger.UserProfile
}
