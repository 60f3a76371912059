package messenger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Webhook is the body of a webhook POST from the Messenger Platform.
type Webhook struct {
	// Object is "page" for Messenger and "instagram" for Instagram messaging.
	Object string  `json:"object"`
	Entry  []Entry `json:"entry"`
}

// Entry is one element of a webhook's entry array: the events of one Page
// (or Instagram account). Events arrive on Messaging when this app owns the
// thread (or the thread is idle) and on Standby when another app owns it.
type Entry struct {
	// ID is the Page ID or Instagram professional account ID.
	ID ID `json:"id"`
	// Time is when Meta sent the entry.
	Time      Timestamp `json:"time"`
	Messaging []Event   `json:"messaging,omitempty"`
	Standby   []Event   `json:"standby,omitempty"`
}

// Party is the sender or recipient of an event.
type Party struct {
	ID ID `json:"id"`
}

// Event is one element of an entry's messaging or standby array. Exactly one
// of its pointer fields (or AppRoles) is normally set; Kind tells which.
type Event struct {
	Sender    Party     `json:"sender"`
	Recipient Party     `json:"recipient"`
	Timestamp Timestamp `json:"timestamp"`

	Message              *InboundMessage       `json:"message,omitempty"`
	Postback             *Postback             `json:"postback,omitempty"`
	Delivery             *Delivery             `json:"delivery,omitempty"`
	Read                 *Read                 `json:"read,omitempty"`
	Reaction             *Reaction             `json:"reaction,omitempty"`
	Referral             *Referral             `json:"referral,omitempty"`
	Optin                *Optin                `json:"optin,omitempty"`
	PassThreadControl    *ThreadOwnerChange    `json:"pass_thread_control,omitempty"`
	TakeThreadControl    *ThreadOwnerChange    `json:"take_thread_control,omitempty"`
	RequestThreadControl *ThreadControlRequest `json:"request_thread_control,omitempty"`
	// AppRoles maps app IDs to their legacy roles ("primary_receiver",
	// "secondary_receiver").
	AppRoles map[string][]string `json:"app_roles,omitempty"`
}

// InboundMessage is the "message" object of a message or echo event.
type InboundMessage struct {
	MID         string              `json:"mid"`
	Text        string              `json:"text,omitempty"`
	QuickReply  *InboundQuickReply  `json:"quick_reply,omitempty"`
	ReplyTo     *ReplyTo            `json:"reply_to,omitempty"`
	Attachments []InboundAttachment `json:"attachments,omitempty"`
	// IsEcho is set on echoes of messages the Page sent.
	IsEcho bool `json:"is_echo,omitempty"`
	// AppID is the app that sent an echoed message; the Page Inbox's app
	// ID when a person replied from the inbox.
	AppID ID `json:"app_id,omitempty"`
	// Metadata is the Send API metadata of an echoed message.
	Metadata      string    `json:"metadata,omitempty"`
	IsDeleted     bool      `json:"is_deleted,omitempty"`
	IsUnsupported bool      `json:"is_unsupported,omitempty"`
	Referral      *Referral `json:"referral,omitempty"`
}

// InboundQuickReply is present on a message sent by tapping a quick reply.
type InboundQuickReply struct {
	Payload string `json:"payload"`
}

// ReplyTo names the message that a message replies to.
type ReplyTo struct {
	MID         string `json:"mid"`
	IsSelfReply bool   `json:"is_self_reply,omitempty"`
}

// InboundAttachment is one attachment of an inbound message. Of its payload,
// whose shape depends on Type (image, sticker, fallback, location…), only
// the few fields below are kept: a user can send a large payload, and a
// queued event must stay small (the rest is skipped while decoding).
type InboundAttachment struct {
	Type    string            `json:"type"`
	Payload AttachmentPayload `json:"payload,omitzero"`
}

// AttachmentPayload is what threadgate keeps of an inbound attachment's
// payload.
type AttachmentPayload struct {
	// URL is the attachment's content (image, video, audio, file) or a
	// fallback's link.
	URL string `json:"url,omitempty"`
	// Title is a fallback attachment's title.
	Title string `json:"title,omitempty"`
	// StickerID is set for stickers (the "like" thumb is 369239263222822).
	StickerID ID `json:"sticker_id,omitempty"`
}

// Postback is sent when a person taps a postback button, Get Started or a
// persistent menu item. The copy delivered on standby carries no Payload.
type Postback struct {
	MID      string    `json:"mid,omitempty"`
	Title    string    `json:"title,omitempty"`
	Payload  string    `json:"payload,omitempty"`
	Referral *Referral `json:"referral,omitempty"`
}

// Delivery reports that messages up to Watermark were delivered.
type Delivery struct {
	MIDs      []string  `json:"mids,omitempty"`
	Watermark Timestamp `json:"watermark"`
}

// Read reports that messages up to Watermark were read.
type Read struct {
	Watermark Timestamp `json:"watermark"`
	MID       string    `json:"mid,omitempty"`
}

// Reaction reports a reaction added to or removed from a message.
type Reaction struct {
	Reaction string `json:"reaction,omitempty"`
	Emoji    string `json:"emoji,omitempty"`
	// Action is "react" or "unreact".
	Action string `json:"action,omitempty"`
	MID    string `json:"mid,omitempty"`
}

// Referral tells how a person entered the thread (m.me link, ad, QR code…).
type Referral struct {
	Ref    string `json:"ref,omitempty"`
	Source string `json:"source,omitempty"`
	Type   string `json:"type,omitempty"`
	AdID   ID     `json:"ad_id,omitempty"`
}

// Optin is a plugin or notification-messages opt-in.
type Optin struct {
	Type                       string `json:"type,omitempty"`
	Payload                    string `json:"payload,omitempty"`
	Ref                        string `json:"ref,omitempty"`
	UserRef                    string `json:"user_ref,omitempty"`
	NotificationMessagesToken  string `json:"notification_messages_token,omitempty"`
	NotificationMessagesStatus string `json:"notification_messages_status,omitempty"`
}

// ThreadOwnerChange is the body of a pass_thread_control or
// take_thread_control event. PreviousOwnerAppID is empty when the thread
// was idle.
type ThreadOwnerChange struct {
	NewOwnerAppID      ID     `json:"new_owner_app_id"`
	PreviousOwnerAppID ID     `json:"previous_owner_app_id,omitempty"`
	Metadata           string `json:"metadata,omitempty"`
}

// ThreadControlRequest is the body of a request_thread_control event.
type ThreadControlRequest struct {
	RequestedOwnerAppID ID     `json:"requested_owner_app_id"`
	Metadata            string `json:"metadata,omitempty"`
}

// EventKind names what an event is about.
type EventKind string

// Event kinds returned by Event.Kind.
const (
	KindMessage              EventKind = "message"
	KindEcho                 EventKind = "echo"
	KindPostback             EventKind = "postback"
	KindDelivery             EventKind = "delivery"
	KindRead                 EventKind = "read"
	KindReaction             EventKind = "reaction"
	KindReferral             EventKind = "referral"
	KindOptin                EventKind = "optin"
	KindPassThreadControl    EventKind = "pass_thread_control"
	KindTakeThreadControl    EventKind = "take_thread_control"
	KindRequestThreadControl EventKind = "request_thread_control"
	KindAppRoles             EventKind = "app_roles"
	KindUnknown              EventKind = "unknown"
)

// Kind reports what the event is about. A message with is_echo set is an
// echo; an event with no key this package knows is KindUnknown.
func (e *Event) Kind() EventKind {
	switch {
	case e.Message != nil && e.Message.IsEcho:
		return KindEcho
	case e.Message != nil:
		return KindMessage
	case e.Postback != nil:
		return KindPostback
	case e.Delivery != nil:
		return KindDelivery
	case e.Read != nil:
		return KindRead
	case e.Reaction != nil:
		return KindReaction
	case e.Referral != nil:
		return KindReferral
	case e.Optin != nil:
		return KindOptin
	case e.PassThreadControl != nil:
		return KindPassThreadControl
	case e.TakeThreadControl != nil:
		return KindTakeThreadControl
	case e.RequestThreadControl != nil:
		return KindRequestThreadControl
	case e.AppRoles != nil:
		return KindAppRoles
	}
	return KindUnknown
}

// Incoming is one event of a webhook together with where it came from.
type Incoming struct {
	// Object is the webhook's object ("page" or "instagram").
	Object string
	// PageID is the ID of the entry that held the event.
	PageID ID
	// Standby is true for events from an entry's standby array, which the
	// app receives while another app owns the thread.
	Standby bool
	Event   *Event
}

// Events returns every event of every entry, in the order of the body: for
// each entry its messaging events, then its standby events.
func (w *Webhook) Events() []Incoming {
	n := 0
	for i := range w.Entry {
		n += len(w.Entry[i].Messaging) + len(w.Entry[i].Standby)
	}
	out := make([]Incoming, 0, n)
	for i := range w.Entry {
		e := &w.Entry[i]
		for j := range e.Messaging {
			out = append(out, Incoming{Object: w.Object, PageID: e.ID, Event: &e.Messaging[j]})
		}
		for j := range e.Standby {
			out = append(out, Incoming{Object: w.Object, PageID: e.ID, Standby: true, Event: &e.Standby[j]})
		}
	}
	return out
}

// Errors returned (wrapped) by Decode.
var (
	// ErrNotJSON means the body is not a JSON document.
	ErrNotJSON = errors.New("messenger: webhook body is not JSON")
	// ErrWrongShape means the body is JSON but not a webhook.
	ErrWrongShape = errors.New("messenger: webhook body has the wrong shape")
)

// Decode parses a webhook body. Unknown fields and event keys are ignored;
// IDs and timestamps are accepted as JSON strings or numbers. The error
// wraps ErrNotJSON or ErrWrongShape and says what is wrong.
//
// The body is decoded as encoding/json decodes it, by a decoder written for
// these types (webhook_fast.go) or, for what that one does not handle
// exactly as encoding/json would (and for every error), by encoding/json.
func Decode(body []byte) (*Webhook, error) {
	w := new(Webhook)
	if !decodeFast(body, w) {
		*w = Webhook{}
		if err := decodeStd(body, w); err != nil {
			return nil, err
		}
	}
	truncateTexts(w)
	return w, nil
}

// truncateTexts cuts every message's text to MaxInboundText characters.
func truncateTexts(w *Webhook) {
	for i := range w.Entry {
		for _, list := range [][]Event{w.Entry[i].Messaging, w.Entry[i].Standby} {
			for j := range list {
				if m := list[j].Message; m != nil && len(m.Text) > MaxInboundText {
					m.Text = Truncate(m.Text, MaxInboundText)
				}
			}
		}
	}
}

// decodeStd decodes body into w with encoding/json.
func decodeStd(body []byte, w *Webhook) error {
	err := json.Unmarshal(body, w)
	if err == nil {
		if bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("null")) {
			return fmt.Errorf("%w: got JSON null, want an object", ErrWrongShape)
		}
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: %v (at byte %d)", ErrNotJSON, se, se.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("%w: %s: got JSON %s, want %s", ErrWrongShape, fieldPath(te), te.Value, typeName(te.Type))
	}
	return fmt.Errorf("%w: %v", ErrWrongShape, err)
}

// MaxInboundText is the most characters of a message's text that Decode
// keeps: Messenger lets a person send at most 20,000, so nothing real is
// cut, and a queued event stays small whatever a body holds.
const MaxInboundText = 20000

// Truncate returns s cut to at most n characters (Unicode code points, as
// the platform counts them), in a string of its own: a slice of s would
// keep all of s in memory.
func Truncate(s string, n int) string {
	count := 0
	for i := range s {
		if count == n {
			return strings.Clone(s[:i])
		}
		count++
	}
	return s
}

func fieldPath(te *json.UnmarshalTypeError) string {
	if te.Field == "" {
		return "body"
	}
	return te.Field
}

func typeName(t reflect.Type) string {
	switch t {
	case nil:
		return "another type"
	case reflect.TypeFor[ID]():
		return "an ID (string or integer)"
	case reflect.TypeFor[Timestamp]():
		return "a timestamp (integer or numeric string)"
	}
	switch t.Kind() {
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	}
	return "a " + t.Kind().String()
}

// ID is a Graph API identifier (Page ID, PSID, app ID). Meta sends some IDs
// as JSON strings and some as numbers; ID accepts both, and null, and keeps
// a number's digits exactly (it never goes through float64).
type ID string

// UnmarshalJSON accepts a JSON string, a JSON integer or null.
func (id *ID) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*id = ""
		return nil
	case len(b) >= 2 && b[0] == '"' && plainASCII(b):
		// The decoder has checked the token: an ASCII string without
		// escapes is its bytes between the quotes, with no second run of
		// the decoder (IDs are digits: this is nearly every ID).
		*id = ID(b[1 : len(b)-1])
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	case isInteger(b):
		*id = ID(b)
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonValueName(b), Type: reflect.TypeFor[ID]()}
}

// String returns the ID as a string.
func (id ID) String() string { return string(id) }

// plainASCII reports whether b holds only ASCII and no backslash.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func jsonValueName(b []byte) string {
	switch {
	case len(b) == 0:
		return "nothing"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	case b[0] == '"':
		return "string " + string(b)
	}
	return "number " + string(b)
}

// Timestamp is a time in milliseconds since the Unix epoch. It accepts a
// JSON number, a numeric JSON string (as in some of Meta's samples) or null.
type Timestamp int64

// UnmarshalJSON accepts a JSON number, a numeric string or null.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = 0
		return nil
	}
	s := b
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = []byte(str)
	}
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		*t = Timestamp(n)
		return nil
	}
	// Exponent or fraction forms: accept when finite and in range.
	if f, err := strconv.ParseFloat(string(s), 64); err == nil && f >= math.MinInt64 && f < math.MaxInt64 {
		*t = Timestamp(f)
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonValueName(b), Type: reflect.TypeFor[Timestamp]()}
}

// Time returns the timestamp as a time.Time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(int64(t)) }

// IsNumericID reports whether s is a non-empty string of ASCII digits: the
// form of Page, app and user IDs.
func IsNumericID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
