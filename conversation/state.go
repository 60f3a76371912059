package conversation

import (
	"time"
	"unicode/utf8"

	"github.com/threadgate/threadgate/messenger"
)

// OwnerKind says who owns a thread.
type OwnerKind string

// Owner kinds.
const (
	// OwnerUnknown: nothing is known of the owner.
	OwnerUnknown OwnerKind = ""
	// OwnerSelf: threadgate owns the thread.
	OwnerSelf OwnerKind = "self"
	// OwnerIdle: nobody owns the thread; the Page's default app answers next.
	OwnerIdle OwnerKind = "idle"
	// OwnerApp: another app, whose ID Owner.AppID holds, owns the thread.
	OwnerApp OwnerKind = "app"
	// OwnerOther: another app owns the thread, not known which.
	OwnerOther OwnerKind = "other"
)

// Owner is the owner of a thread: a kind, and for OwnerApp the app's ID.
// The zero Owner is OwnerUnknown.
type Owner struct {
	// Kind says who owns the thread.
	Kind OwnerKind `json:"kind,omitempty"`
	// AppID is the owning app's ID when Kind is OwnerApp, else "".
	AppID string `json:"app_id,omitempty"`
}

// Owners that are not an app with a known ID.
var (
	Unknown = Owner{}
	Self    = Owner{Kind: OwnerSelf}
	Idle    = Owner{Kind: OwnerIdle}
	Other   = Owner{Kind: OwnerOther}
)

// AppOwner returns the owner "the app with this ID"; an empty ID gives
// Unknown.
func AppOwner(appID string) Owner {
	if appID == "" {
		return Unknown
	}
	return Owner{Kind: OwnerApp, AppID: appID}
}

// HeldByOther reports whether another app owns the thread.
func (o Owner) HeldByOther() bool { return o.Kind == OwnerApp || o.Kind == OwnerOther }

// String returns the owner as logs and rules without app names read it:
// "self", "idle", "other", the app's ID, or "" when unknown.
func (o Owner) String() string {
	if o.Kind == OwnerApp {
		return o.AppID
	}
	return string(o.Kind)
}

// Key identifies one user's conversation with one Page; stores index State
// by it.
type Key struct {
	// PageID is the Page or Instagram account.
	PageID string
	// UserID is the user's PSID or IGSID.
	UserID string
}

// State is what threadgate remembers of one conversation. It is a plain
// value: copying it copies everything but Transcript's array, which is never
// changed in place, only replaced.
type State struct {
	// Owner is who owns the thread, as last learned.
	Owner Owner `json:"owner"`
	// OwnerSince is when Owner was learned.
	OwnerSince time.Time `json:"owner_since,omitzero"`
	// LastActivity is the last message of the user or an agent.
	LastActivity time.Time `json:"last_activity,omitzero"`
	// PausedUntil pauses the bot's rules for the user until then
	// (handover.pause_on_human).
	PausedUntil time.Time `json:"paused_until,omitzero"`
	// Transcript holds the user's last few messages, oldest first, within
	// MaxTranscriptMessages and MaxTranscriptRunes; it is kept only while
	// the rules read it (Settings.KeepTranscript), else empty.
	Transcript []string `json:"transcript,omitempty"`
	// LastUserMessage is the user's last message or postback, on either
	// channel: the platform makes a thread idle IdleExpiry after it.
	LastUserMessage time.Time `json:"last_user_message,omitzero"`
	// OwnerLookupAt is when GET thread_owner was last asked about the
	// thread, so that a failing lookup is not repeated on every event.
	OwnerLookupAt time.Time `json:"owner_lookup_at,omitzero"`
	// ReturnTriedAt is when taking the thread back after
	// handover.return_after_idle last failed; the next try waits a full
	// delay after it.
	ReturnTriedAt time.Time `json:"return_tried_at,omitzero"`
	// Object is the webhook object of the conversation ("page" for
	// Messenger, "instagram"), for the events threadgate makes itself.
	Object string `json:"object,omitempty"`
}

// IdleExpiry is how long a thread stays with its owner without a message of
// the user; then the platform makes it idle and the Page's default app
// answers next.
const IdleExpiry = 24 * time.Hour

// OwnerLookupRetry is how long after asking GET thread_owner about a thread
// threadgate waits before asking again (when the answer did not settle it).
const OwnerLookupRetry = time.Minute

// CurrentOwner is the thread's owner as stored, or Idle once the platform
// has made it idle: IdleExpiry after the later of the owner's arrival and
// the user's last message.
func (st State) CurrentOwner(now time.Time) Owner {
	if st.Owner.Kind == OwnerUnknown || st.Owner.Kind == OwnerIdle {
		return st.Owner
	}
	last := st.OwnerSince
	if st.LastUserMessage.After(last) {
		last = st.LastUserMessage
	}
	if !last.IsZero() && now.Sub(last) >= IdleExpiry {
		return Idle
	}
	return st.Owner
}

// Paused reports whether the bot's rules are paused for the user at now.
func (st State) Paused(now time.Time) bool { return now.Before(st.PausedUntil) }

// QuietSince is when the thread went quiet: the latest of the owner's
// arrival, the last message of the user or an agent, and the last failed
// attempt to take it back.
func (st State) QuietSince() time.Time {
	return latest(st.OwnerSince, st.LastActivity, st.ReturnTriedAt)
}

// LastTouched is the latest moment the state says anything about; a store
// may forget a conversation untouched for longer than IdleExpiry.
func (st State) LastTouched() time.Time {
	return latest(st.OwnerSince, st.LastActivity, st.LastUserMessage, st.PausedUntil, st.OwnerLookupAt, st.ReturnTriedAt)
}

func latest(ts ...time.Time) time.Time {
	var t time.Time
	for _, u := range ts {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// Bounds of the transcript: the user's last messages, at most
// MaxTranscriptMessages of them and MaxTranscriptRunes characters in all, so
// that `{{ .Transcript | join " / " }}` fits in a handover's 1000 characters
// of metadata with room for a few words around it.
const (
	MaxTranscriptMessages = 10
	MaxTranscriptRunes    = 800
)

// appendTranscript returns a transcript with a message added and the oldest
// messages beyond the bounds dropped; a message longer than the whole budget
// is cut. It never writes into list's array.
func appendTranscript(list []string, s string) []string {
	s = messenger.Truncate(s, MaxTranscriptRunes)
	list = appendBounded(list, s, MaxTranscriptMessages)
	total := 0
	for _, m := range list {
		total += utf8.RuneCountInString(m)
	}
	drop := 0
	for total > MaxTranscriptRunes && drop < len(list)-1 {
		total -= utf8.RuneCountInString(list[drop])
		drop++
	}
	if drop > 0 {
		list = append([]string(nil), list[drop:]...)
	}
	return list
}

// appendBounded returns a new slice holding the last n of list and s. It
// never writes into list's array, so a copy of the state that still holds
// list may be read while the state is updated.
func appendBounded(list []string, s string, n int) []string {
	if len(list) >= n {
		list = list[len(list)-n+1:]
	}
	out := make([]string, len(list), len(list)+1)
	copy(out, list)
	return append(out, s)
}
