package gateway

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/threadgate/threadgate/messenger"
)

// appendPlainMessage appends the stored form of in, byte for byte as
// json.Marshal writes a storedIncoming, when its event is a plain message:
// text, a quick reply's payload, or both, and nothing else. It reports
// false, appending nothing, for any other event, which encodeIncoming
// hands to json.Marshal. Plain messages are most of what a bot receives,
// and the reflection of json.Marshal cost them about 2% of the gateway's
// CPU under load.
//
// The fields it checks are listed in plainMessageFields and
// plainInboundFields: TestPlainMessageKnowsEveryField fails when a field
// is added to messenger.Event or messenger.InboundMessage, so that a new
// field is never dropped here.
func appendPlainMessage(b []byte, in messenger.Incoming) ([]byte, bool) {
	ev := in.Event
	if ev == nil || ev.Message == nil || ev.Postback != nil || ev.Delivery != nil || ev.Read != nil ||
		ev.Reaction != nil || ev.Referral != nil || ev.Optin != nil || ev.PassThreadControl != nil ||
		ev.TakeThreadControl != nil || ev.RequestThreadControl != nil || len(ev.AppRoles) != 0 {
		return b, false
	}
	m := ev.Message
	if m.ReplyTo != nil || len(m.Attachments) != 0 || m.IsEcho || m.AppID != "" || m.Metadata != "" ||
		m.IsDeleted || m.IsUnsupported || m.Referral != nil {
		return b, false
	}
	b = append(b, `{"object":`...)
	b = appendJSONString(b, in.Object)
	b = append(b, `,"page_id":`...)
	b = appendJSONString(b, string(in.PageID))
	if in.Standby {
		b = append(b, `,"standby":true`...)
	}
	b = append(b, `,"event":{"sender":{"id":`...)
	b = appendJSONString(b, string(ev.Sender.ID))
	b = append(b, `},"recipient":{"id":`...)
	b = appendJSONString(b, string(ev.Recipient.ID))
	b = append(b, `},"timestamp":`...)
	b = strconv.AppendInt(b, int64(ev.Timestamp), 10)
	b = append(b, `,"message":{"mid":`...)
	b = appendJSONString(b, m.MID)
	if m.Text != "" {
		b = append(b, `,"text":`...)
		b = appendJSONString(b, m.Text)
	}
	if m.QuickReply != nil {
		b = append(b, `,"quick_reply":{"payload":`...)
		b = appendJSONString(b, m.QuickReply.Payload)
		b = append(b, '}')
	}
	return append(b, "}}}"...), true
}

// appendJSONString appends s as json.Marshal writes a string: as it is
// when nothing in it needs escaping, else by json.Marshal itself (control
// characters, quotes, backslashes, <, >, &, invalid UTF-8, U+2028 and
// U+2029 are escaped there).
func appendJSONString(b []byte, s string) []byte {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&':
			return appendMarshalled(b, s)
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if !ascii && (!utf8.ValidString(s) || containsLineSeparator(s)) {
		return appendMarshalled(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// containsLineSeparator reports whether s holds U+2028 or U+2029, which
// json.Marshal escapes.
func containsLineSeparator(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == 0xE2 && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9) {
			return true
		}
	}
	return false
}

func appendMarshalled(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}
