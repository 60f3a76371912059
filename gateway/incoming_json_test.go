package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/threadgate/threadgate/messenger"
)

// plainMessageFields and plainInboundFields are the fields of
// messenger.Event and messenger.InboundMessage that appendPlainMessage
// writes or checks to be empty.
var (
	plainMessageFields = []string{"Sender", "Recipient", "Timestamp", "Message", "Postback", "Delivery", "Read",
		"Reaction", "Referral", "Optin", "PassThreadControl", "TakeThreadControl", "RequestThreadControl", "AppRoles"}
	plainInboundFields = []string{"MID", "Text", "QuickReply", "ReplyTo", "Attachments", "IsEcho", "AppID",
		"Metadata", "IsDeleted", "IsUnsupported", "Referral"}
)

// TestPlainMessageKnowsEveryField fails when a field is added to the types
// appendPlainMessage encodes: it would be dropped from stored events.
func TestPlainMessageKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		typ  reflect.Type
		want []string
	}{
		{reflect.TypeFor[messenger.Event](), plainMessageFields},
		{reflect.TypeFor[messenger.InboundMessage](), plainInboundFields},
		{reflect.TypeFor[messenger.Party](), []string{"ID"}},
		{reflect.TypeFor[messenger.InboundQuickReply](), []string{"Payload"}},
		{reflect.TypeFor[storedIncoming](), []string{"Object", "PageID", "Standby", "Event"}},
	} {
		var got []string
		for f := range c.typ.Fields() {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s has fields %v; appendPlainMessage knows %v: update it (and this list)", c.typ, got, c.want)
		}
	}
}

func plainIncoming(object, page, sender, mid, text string, ts int64, standby bool, qr *string) messenger.Incoming {
	m := &messenger.InboundMessage{MID: mid, Text: text}
	if qr != nil {
		m.QuickReply = &messenger.InboundQuickReply{Payload: *qr}
	}
	return messenger.Incoming{Object: object, PageID: messenger.ID(page), Standby: standby, Event: &messenger.Event{
		Sender: messenger.Party{ID: messenger.ID(sender)}, Recipient: messenger.Party{ID: messenger.ID(page)},
		Timestamp: messenger.Timestamp(ts), Message: m,
	}}
}

// checkPlainMessage checks that appendPlainMessage writes what json.Marshal
// does when it takes the event, and reports whether it did.
func checkPlainMessage(t *testing.T, in messenger.Incoming) bool {
	t.Helper()
	got, ok := appendPlainMessage(nil, in)
	if !ok {
		if got != nil {
			t.Errorf("appendPlainMessage refused the event but appended %q", got)
		}
		return false
	}
	want, err := json.Marshal(storedIncoming{Object: in.Object, PageID: in.PageID, Standby: in.Standby, Event: in.Event})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("appendPlainMessage wrote\n%s\njson.Marshal writes\n%s", got, want)
	}
	return true
}

func TestAppendPlainMessageMatchesMarshal(t *testing.T) {
	qr, empty := "PAYLOAD_1", ""
	for _, c := range []struct {
		name string
		in   messenger.Incoming
	}{
		{"ascii", plainIncoming("page", "111", "2400", "m_1", "hello there", 1764000000001, false, nil)},
		{"accents and emoji", plainIncoming("page", "111", "2400", "m_1", "¿Dónde está mi pedido? 📦", 1, false, nil)},
		{"html characters", plainIncoming("page", "111", "2400", "m_<1>", "a < b && c > d", 1, false, nil)},
		{"quotes and backslashes", plainIncoming("page", "111", "2400", "m_1", `say "hi" \ bye`, 1, false, nil)},
		{"control characters", plainIncoming("page", "111", "2400", "m_1", "line\nbreak\ttab\x00nul\x7f", 1, false, nil)},
		{"invalid UTF-8", plainIncoming("page", "111", "2400", "m_1", "bad \xff\xfe bytes", 1, false, nil)},
		{"line separators", plainIncoming("page", "111", "2400", "m_1", "a\u2028b\u2029c", 1, false, nil)},
		{"no text", plainIncoming("instagram", "111", "2400", "m_1", "", -5, true, nil)},
		{"quick reply", plainIncoming("page", "111", "2400", "m_1", "Yes", 1, false, &qr)},
		{"empty quick reply payload", plainIncoming("page", "111", "2400", "m_1", "", 0, false, &empty)},
		{"standby", plainIncoming("page", "111", "2400", "m_1", "x", 1, true, nil)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !checkPlainMessage(t, c.in) {
				t.Error("appendPlainMessage refused a plain message")
			}
		})
	}
}

func TestAppendPlainMessageRefusesOthers(t *testing.T) {
	plain := func() messenger.Incoming { return plainIncoming("page", "111", "2400", "m_1", "hi", 1, false, nil) }
	for _, c := range []struct {
		name   string
		change func(*messenger.Incoming)
	}{
		{"no event", func(in *messenger.Incoming) { in.Event = nil }},
		{"no message", func(in *messenger.Incoming) { in.Event.Message = nil }},
		{"postback", func(in *messenger.Incoming) { in.Event.Postback = &messenger.Postback{Payload: "P"} }},
		{"app roles", func(in *messenger.Incoming) { in.Event.AppRoles = map[string][]string{"1": {"primary_receiver"}} }},
		{"echo", func(in *messenger.Incoming) { in.Event.Message.IsEcho = true }},
		{"echo's app", func(in *messenger.Incoming) { in.Event.Message.AppID = "263902037430900" }},
		{"metadata", func(in *messenger.Incoming) { in.Event.Message.Metadata = "m" }},
		{"attachment", func(in *messenger.Incoming) {
			in.Event.Message.Attachments = []messenger.InboundAttachment{{Type: "image"}}
		}},
		{"reply", func(in *messenger.Incoming) { in.Event.Message.ReplyTo = &messenger.ReplyTo{MID: "m_0"} }},
		{"deleted", func(in *messenger.Incoming) { in.Event.Message.IsDeleted = true }},
		{"unsupported", func(in *messenger.Incoming) { in.Event.Message.IsUnsupported = true }},
		{"referral", func(in *messenger.Incoming) { in.Event.Message.Referral = &messenger.Referral{Ref: "r"} }},
		{"handover", func(in *messenger.Incoming) {
			in.Event.PassThreadControl = &messenger.ThreadOwnerChange{}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := plain()
			c.change(&in)
			if checkPlainMessage(t, in) {
				t.Error("appendPlainMessage took an event that is not a plain message")
			}
		})
	}
}

// FuzzAppendPlainMessage checks that appendPlainMessage writes exactly
// what json.Marshal does, whatever the strings.
func FuzzAppendPlainMessage(f *testing.F) {
	f.Add("page", "111222333444555", "2400000000000001", "m_1", "hello there", int64(1764000000001), false, false, "")
	f.Add("instagram", "1", "2", "m_<&>", "emoji 📦 \u2028 \xff", int64(-1), true, true, "PAYLOAD")
	f.Fuzz(func(t *testing.T, object, page, sender, mid, text string, ts int64, standby, withQR bool, payload string) {
		var qr *string
		if withQR {
			qr = &payload
		}
		if !checkPlainMessage(t, plainIncoming(object, page, sender, mid, text, ts, standby, qr)) {
			t.Error("appendPlainMessage refused a plain message")
		}
	})
}

func BenchmarkEncodeIncoming(b *testing.B) {
	in := plainIncoming("page", "111222333444555", "2400000000000001", "m_AbCdEf0123456789", "hello there, where is my order?", 1764000000001, false, nil)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = encodeIncoming(in)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(storedIncoming{Object: in.Object, PageID: in.PageID, Standby: in.Standby, Event: in.Event})
		}
	})
}
