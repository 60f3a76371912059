package messenger

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// samples returns the names of the webhook samples in testdata/.
func samples(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no samples: %v", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	return names
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// summary is one line per event: channel, page, kind, sender, timestamp.
func summary(w *Webhook) []string {
	var out []string
	for _, in := range w.Events() {
		ch := "messaging"
		if in.Standby {
			ch = "standby"
		}
		out = append(out, fmt.Sprintf("%s %s %s %s %s from=%s ts=%d",
			in.Object, in.PageID, ch, in.Event.Kind(), "to="+in.Event.Recipient.ID, in.Event.Sender.ID, in.Event.Timestamp))
	}
	return out
}

func TestDecode(t *testing.T) {
	tests := []struct {
		file  string
		want  []string
		check func(t *testing.T, w *Webhook)
	}{
		{
			file: "text_message.json",
			want: []string{"page 111222333444555 messaging message to=111222333444555 from=2400000000000001 ts=1764000000001"},
			check: func(t *testing.T, w *Webhook) {
				m := w.Entry[0].Messaging[0].Message
				if m.MID != "m_abc" || m.Text != "Talk to a human" {
					t.Errorf("message = %+v", m)
				}
				if got := w.Entry[0].Time.Time().UnixMilli(); got != 1764000000123 {
					t.Errorf("entry time = %d", got)
				}
			},
		},
		{
			file: "batch.json",
			want: []string{
				"page 111222333444555 messaging message to=111222333444555 from=2400000000000001 ts=1764000000001",
				"page 111222333444555 messaging postback to=111222333444555 from=2400000000000001 ts=1764000000002",
				"page 111222333444555 standby message to=111222333444555 from=2400000000000002 ts=1764000000400",
				"page 999888777666555 messaging delivery to=999888777666555 from=2400000000000003 ts=1764000000500",
				"page 999888777666555 standby read to=999888777666555 from=2400000000000004 ts=1764000000600",
			},
			check: func(t *testing.T, w *Webhook) {
				m := w.Entry[0].Messaging[0].Message
				if m.QuickReply == nil || m.QuickReply.Payload != "HANDOFF" {
					t.Errorf("quick reply = %+v", m.QuickReply)
				}
				if m.ReplyTo == nil || m.ReplyTo.MID != "m_prev" {
					t.Errorf("reply_to = %+v", m.ReplyTo)
				}
				if len(m.Attachments) != 2 || m.Attachments[0].Type != "image" ||
					m.Attachments[0].Payload.URL != "https://example.com/a.png" || m.Attachments[1].Payload != (AttachmentPayload{}) {
					t.Errorf("attachments = %+v", m.Attachments)
				}
				pb := w.Entry[0].Messaging[1].Postback
				if pb.Payload != "HANDOFF" || pb.Referral == nil || pb.Referral.Ref != "promo7" {
					t.Errorf("postback = %+v", pb)
				}
				d := w.Entry[2].Messaging[0].Delivery
				if len(d.MIDs) != 2 || d.Watermark != 1764000000000 {
					t.Errorf("delivery = %+v", d)
				}
			},
		},
		{
			file: "echo.json",
			want: []string{
				"page 111222333444555 messaging echo to=2400000000000001 from=111222333444555 ts=1764000000999",
				"page 111222333444555 messaging echo to=2400000000000001 from=111222333444555 ts=1764000001001",
			},
			check: func(t *testing.T, w *Webhook) {
				ev := w.Entry[0].Messaging
				if ev[0].Message.AppID != "263902037430900" || ev[0].Message.Metadata != "gw:reply:42" {
					t.Errorf("numeric app_id echo = %+v", ev[0].Message)
				}
				// Beyond float64 precision: the digits must survive.
				if ev[1].Message.AppID != "1234567890123456789" {
					t.Errorf("string app_id = %q", ev[1].Message.AppID)
				}
			},
		},
		{
			file: "handover.json",
			want: []string{
				"page 111222333444555 messaging pass_thread_control to=111222333444555 from=2400000000000001 ts=1764000001000",
				"page 111222333444555 messaging take_thread_control to=111222333444555 from=2400000000000001 ts=1764000002000",
				"page 111222333444555 messaging request_thread_control to=111222333444555 from=2400000000000001 ts=1764000003000",
				"page 111222333444555 messaging app_roles to=111222333444555 from= ts=1764000004000",
			},
			check: func(t *testing.T, w *Webhook) {
				ev := w.Entry[0].Messaging
				if p := ev[0].PassThreadControl; p.PreviousOwnerAppID != "" || p.NewOwnerAppID != "2222" || p.Metadata != "reason=billing" {
					t.Errorf("pass = %+v", p)
				}
				if p := ev[1].TakeThreadControl; p.PreviousOwnerAppID != "2222" || p.NewOwnerAppID != "1111" {
					t.Errorf("take = %+v", p)
				}
				if r := ev[2].RequestThreadControl; r.RequestedOwnerAppID != "263902037430900" || r.Metadata != "agent wants it" {
					t.Errorf("request = %+v", r)
				}
				if roles := ev[3].AppRoles["1111"]; len(roles) != 1 || roles[0] != "primary_receiver" {
					t.Errorf("app_roles = %v", ev[3].AppRoles)
				}
			},
		},
		{
			file: "string_timestamps.json",
			want: []string{"page 111222333444555 messaging postback to=111222333444555 from=2400000000000001 ts=1527459824"},
			check: func(t *testing.T, w *Webhook) {
				if w.Entry[0].Time != 1764000000123 {
					t.Errorf("entry time = %d", w.Entry[0].Time)
				}
			},
		},
		{
			file: "standby_postback.json",
			want: []string{
				"page 111222333444555 standby postback to=111222333444555 from=2400000000000001 ts=1764000000500",
				"page 111222333444555 standby echo to=2400000000000001 from=111222333444555 ts=1764000000600",
			},
			check: func(t *testing.T, w *Webhook) {
				if pb := w.Entry[0].Standby[0].Postback; pb.Payload != "" || pb.Title != "Talk to an agent" {
					t.Errorf("standby postback = %+v", pb)
				}
				if len(w.Entry[0].Messaging) != 0 {
					t.Errorf("messaging = %v, want none", w.Entry[0].Messaging)
				}
			},
		},
		{
			file: "instagram.json",
			want: []string{
				"instagram 17841400000000000 messaging message to=17841400000000000 from=5100000000000001 ts=1764000000001",
				"instagram 17841400000000000 messaging read to=17841400000000000 from=5100000000000001 ts=1764000000002",
				"instagram 17841400000000000 messaging message to=17841400000000000 from=5100000000000001 ts=1764000000003",
			},
			check: func(t *testing.T, w *Webhook) {
				ev := w.Entry[0].Messaging
				if a := ev[0].Message.Attachments; len(a) != 1 || a[0].Type != "ig_reel" {
					t.Errorf("attachments = %+v", a)
				}
				if !ev[2].Message.IsDeleted {
					t.Errorf("is_deleted not decoded")
				}
			},
		},
		{
			file: "other_events.json",
			want: []string{
				"page 111222333444555 messaging reaction to=111222333444555 from=2400000000000001 ts=1764000000001",
				"page 111222333444555 messaging referral to=111222333444555 from=2400000000000001 ts=1764000000002",
				"page 111222333444555 messaging optin to=111222333444555 from=2400000000000001 ts=1764000000003",
				"page 111222333444555 messaging unknown to=111222333444555 from=2400000000000001 ts=1764000000004",
				"page 111222333444555 messaging unknown to=111222333444555 from=2400000000000001 ts=1764000000005",
			},
			check: func(t *testing.T, w *Webhook) {
				ev := w.Entry[0].Messaging
				if r := ev[0].Reaction; r.Emoji != "❤️" || r.Action != "react" {
					t.Errorf("reaction = %+v", r)
				}
				if r := ev[1].Referral; r.AdID != "6045246247433" || r.Source != "ADS" {
					t.Errorf("referral = %+v", r)
				}
				if o := ev[2].Optin; o.Payload != "weekly" {
					t.Errorf("optin = %+v", o)
				}
			},
		},
		{
			file: "non_ascii_raw.json",
			want: []string{"page 111222333444555 messaging message to=111222333444555 from=2400000000000001 ts=1764000000001"},
			check: func(t *testing.T, w *Webhook) {
				if got := w.Entry[0].Messaging[0].Message.Text; got != "äöå — ¿qué tal? 👋" {
					t.Errorf("text = %q", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			w, err := Decode(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := summary(w)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.check != nil {
				tt.check(t, w)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
		msg  string // a fragment the error must contain
	}{
		{"empty", ``, ErrNotJSON, "end of JSON input"},
		{"truncated", `{"object":"page","entry":[{"id":"1"`, ErrNotJSON, "end of JSON input"},
		{"html", `<html>oops</html>`, ErrNotJSON, "at byte 1"},
		{"trailing garbage", `{"object":"page"} x`, ErrNotJSON, "after top-level value"},
		{"null", ` null`, ErrWrongShape, "null"},
		{"array", `[{"object":"page"}]`, ErrWrongShape, "want an object"},
		{"string", `"page"`, ErrWrongShape, "want an object"},
		{"entry object", `{"object":"page","entry":{"id":"1"}}`, ErrWrongShape, "entry"},
		{"messaging string", `{"object":"page","entry":[{"id":"1","messaging":"hi"}]}`, ErrWrongShape, "entry.messaging"},
		{"message string", `{"object":"page","entry":[{"id":"1","messaging":[{"message":"hi"}]}]}`, ErrWrongShape, "entry.messaging.message"},
		{"float id", `{"object":"page","entry":[{"id":1.5}]}`, ErrWrongShape, "an ID (string or integer)"},
		{"bool app id", `{"object":"page","entry":[{"id":"1","messaging":[{"message":{"app_id":true}}]}]}`, ErrWrongShape, "entry.messaging.message.app_id"},
		{"word timestamp", `{"object":"page","entry":[{"id":"1","time":"soon"}]}`, ErrWrongShape, "entry.time"},
		{"object timestamp", `{"object":"page","entry":[{"id":"1","messaging":[{"timestamp":{}}]}]}`, ErrWrongShape, "a timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Decode([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, %v; want error %v", w, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestIDUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{`"1234"`, "1234", false},
		{`1234`, "1234", false},
		{`263902037430900`, "263902037430900", false},
		{`123456789012345678901234567890`, "123456789012345678901234567890", false},
		{`null`, "", false},
		{`""`, "", false},
		{`"a\u00e9"`, "aé", false},
		{`1.5`, "", true},
		{`1e15`, "", true},
		{`true`, "", true},
		{`{}`, "", true},
		{`[]`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got struct {
				ID ID `json:"id"`
			}
			err := json.Unmarshal([]byte(`{"id":`+tt.in+`}`), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got.ID != tt.want {
				t.Errorf("ID = %q, want %q", got.ID, tt.want)
			}
		})
	}
}

func TestTimestampUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    Timestamp
		wantErr bool
	}{
		{`1764000000123`, 1764000000123, false},
		{`"1764000000123"`, 1764000000123, false},
		{`null`, 0, false},
		{`1.764e12`, 1764000000000, false},
		{`"soon"`, 0, true},
		{`""`, 0, true},
		{`"NaN"`, 0, true},
		{`1e400`, 0, true},
		{`true`, 0, true},
		{`[1]`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got struct {
				T Timestamp `json:"t"`
			}
			err := json.Unmarshal([]byte(`{"t":`+tt.in+`}`), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got.T != tt.want {
				t.Errorf("Timestamp = %d, want %d", got.T, tt.want)
			}
		})
	}
}

// TestDecodeGolden dumps every decoded sample, so that any change to what a
// body decodes to shows up in review. Run with -update to rewrite.
func TestDecodeGolden(t *testing.T) {
	for _, name := range samples(t) {
		t.Run(name, func(t *testing.T) {
			w, err := Decode(readTestdata(t, name))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			type dump struct {
				Kind EventKind
				Incoming
			}
			var out []dump
			for _, in := range w.Events() {
				out = append(out, dump{in.Event.Kind(), in})
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", strings.TrimSuffix(name, ".json")+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the decoded sample (run with -update if intended):\n%s", golden, got)
			}
		})
	}
}

var knownKinds = map[EventKind]bool{
	KindMessage: true, KindEcho: true, KindPostback: true, KindDelivery: true, KindRead: true,
	KindReaction: true, KindReferral: true, KindOptin: true, KindPassThreadControl: true,
	KindTakeThreadControl: true, KindRequestThreadControl: true, KindAppRoles: true, KindUnknown: true,
}

func FuzzDecode(f *testing.F) {
	for _, name := range samples(f) {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrWrongShape) {
				t.Fatalf("error wraps neither sentinel: %v", err)
			}
			return
		}
		n := 0
		for _, e := range w.Entry {
			n += len(e.Messaging) + len(e.Standby)
		}
		events := w.Events()
		if len(events) != n {
			t.Fatalf("Events() = %d events, entries hold %d", len(events), n)
		}
		for _, in := range events {
			if !knownKinds[in.Event.Kind()] {
				t.Fatalf("Kind() = %q", in.Event.Kind())
			}
		}
		// What we decode re-encodes to a body that decodes to the same thing.
		b1, err := json.Marshal(w)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		w2, err := Decode(b1)
		if err != nil {
			t.Fatalf("Decode(Marshal(w)) = %v\nbody: %s", err, b1)
		}
		b2, err := json.Marshal(w2)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip differs:\n%s\n%s", b1, b2)
		}
	})
}

func BenchmarkVerifyAndDecode(b *testing.B) {
	secret := []byte("bench-app-secret")
	for _, file := range []string{"text_message.json", "batch10.json"} {
		body := readTestdata(b, file)
		sig := Sign(secret, body)
		b.Run(strings.TrimSuffix(file, ".json"), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := VerifySignature(body, sig, secret); err != nil {
					b.Fatal(err)
				}
				w, err := Decode(body)
				if err != nil {
					b.Fatal(err)
				}
				if len(w.Events()) == 0 {
					b.Fatal("no events")
				}
			}
		})
	}
}

// A user can send an attachment whose payload is nearly the whole 1 MiB
// body: a decoded event keeps only what rules and actions read of it, so
// that a queue of such events stays small.
func TestDecodeKeepsNoLargeAttachmentPayload(t *testing.T) {
	big := strings.Repeat("x", 900<<10)
	body := `{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1,` +
		`"message":{"mid":"m1","attachments":[{"type":"file","payload":{"url":"https://example.com/f","blob":"` + big + `","nested":{"more":["` + big + `"]}}}]}}]}]}`
	w, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	a := w.Entry[0].Messaging[0].Message.Attachments
	if len(a) != 1 || a[0].Type != "file" || a[0].Payload.URL != "https://example.com/f" {
		t.Fatalf("attachments = %+v", a)
	}
	kept, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) > 1024 {
		t.Errorf("the decoded webhook keeps %d bytes of a %d-byte body, want under 1 KiB", len(kept), len(body))
	}
}

// A message's text is kept up to the 20,000 characters Messenger lets a
// person send: a larger body cannot make a queued event large.
func TestDecodeCutsOverlongText(t *testing.T) {
	for _, tt := range []struct {
		name string
		text string
		want int // characters kept
	}{
		{"at the limit", strings.Repeat("a", MaxInboundText), MaxInboundText},
		{"over, in characters of two bytes", strings.Repeat("é", MaxInboundText+5), MaxInboundText},
		{"far over", strings.Repeat("x", 900<<10), MaxInboundText},
		{"short", "hello", 5},
	} {
		body := `{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m1","text":"` + tt.text + `"}}],` +
			`"standby":[{"sender":{"id":"3"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m2","text":"` + tt.text + `"}}]}]}`
		w, err := Decode([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range append(w.Entry[0].Messaging, w.Entry[0].Standby...) {
			got := ev.Message.Text
			if n := len([]rune(got)); n != tt.want || !strings.HasPrefix(tt.text, got) {
				t.Errorf("%s: kept %d characters, want %d of the text's start", tt.name, n, tt.want)
			}
		}
	}
}
