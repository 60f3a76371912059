package messenger

import (
	"bytes"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is Decode's fast path: a decoder written for the webhook's
// types that reads the body once and allocates only what it keeps (the
// strings, the slices and the structs behind pointers). encoding/json,
// for a one-message webhook, scans the body twice and allocates as much
// again for its reflection and its error context.
//
// The fast path gives up (returns false) on anything it does not decode
// exactly as encoding/json would: invalid JSON, a value of the wrong type,
// a key that appears twice, a key that only differs in case from a field's
// name, a field it does not handle (app_roles), nesting deeper than
// maxFastDepth. Decode then decodes the body with encoding/json, which
// gives the result or the error it always gave. FuzzDecodeFast checks that
// whatever the fast path decodes, encoding/json decodes the same.

// maxFastDepth bounds the nesting of the values the fast path skips.
const maxFastDepth = 64

// Names of each decoded type's JSON fields: a key not handled by the fast
// path that matches one of them, even in another case, makes it give up.
var (
	webhookNames    = jsonNames(reflect.TypeFor[Webhook]())
	entryNames      = jsonNames(reflect.TypeFor[Entry]())
	partyNames      = jsonNames(reflect.TypeFor[Party]())
	eventNames      = jsonNames(reflect.TypeFor[Event]())
	messageNames    = jsonNames(reflect.TypeFor[InboundMessage]())
	quickReplyNames = jsonNames(reflect.TypeFor[InboundQuickReply]())
	replyToNames    = jsonNames(reflect.TypeFor[ReplyTo]())
	attachmentNames = jsonNames(reflect.TypeFor[InboundAttachment]())
	payloadNames    = jsonNames(reflect.TypeFor[AttachmentPayload]())
	postbackNames   = jsonNames(reflect.TypeFor[Postback]())
	deliveryNames   = jsonNames(reflect.TypeFor[Delivery]())
	readNames       = jsonNames(reflect.TypeFor[Read]())
	reactionNames   = jsonNames(reflect.TypeFor[Reaction]())
	referralNames   = jsonNames(reflect.TypeFor[Referral]())
	optinNames      = jsonNames(reflect.TypeFor[Optin]())
	ownerNames      = jsonNames(reflect.TypeFor[ThreadOwnerChange]())
	requestNames    = jsonNames(reflect.TypeFor[ThreadControlRequest]())
)

// jsonNames returns the JSON names of a struct's fields.
func jsonNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// decodeFast decodes body into w, or returns false, leaving w partly
// filled, when Decode must use encoding/json.
func decodeFast(body []byte, w *Webhook) bool {
	d := fastDecoder{b: body}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '{' { // null, or not an object
		return false
	}
	if !d.webhook(w) {
		return false
	}
	d.ws()
	return d.i == len(d.b)
}

// fastDecoder reads a JSON body from b[i:].
type fastDecoder struct {
	b     []byte
	i     int
	depth int
	// page is the ID of the entry being read, when it is digits: an
	// event's recipient (or an echo's sender) is the same ID, which is
	// then not copied again.
	page ID
}

// ws skips white space.
func (d *fastDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, or 0 at the end.
func (d *fastDecoder) next() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// literal reads the literal lit (true, false or null).
func (d *fastDecoder) literal(lit string) bool {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return false
	}
	d.i += len(lit)
	return true
}

// object reads an object, or null (which changes nothing, as for
// encoding/json). field is given each key: it reads the key's value and
// returns the key's bit among the type's fields, or bit 0 when the key is
// not one it handles (the value is then skipped). names are the type's
// field names.
func (d *fastDecoder) object(names []string, field func(key []byte) (bit uint32, ok bool)) bool {
	switch d.next() {
	case 'n':
		return d.literal("null")
	case '{':
		d.i++
	default:
		return false
	}
	if d.next() == '}' {
		d.i++
		return true
	}
	var seen uint32
	for {
		if d.next() != '"' {
			return false
		}
		key, ok := d.key()
		if !ok || d.next() != ':' {
			return false
		}
		d.i++
		bit, ok := field(key)
		switch {
		case !ok:
			return false
		case bit != 0:
			if seen&bit != 0 { // a second value: encoding/json merges it
				return false
			}
			seen |= bit
		default:
			if foldsToAny(key, names) || !d.skip() {
				return false
			}
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// foldsToAny reports whether key matches one of names in any case:
// encoding/json would decode its value into that field. key and names are
// ASCII.
func foldsToAny(key []byte, names []string) bool {
	for _, n := range names {
		if len(n) == len(key) && equalFoldASCII(n, key) {
			return true
		}
	}
	return false
}

func equalFoldASCII(s string, b []byte) bool {
	for i := range len(s) {
		x, y := s[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// key reads an object's key, at its opening quote: ASCII without escapes,
// or the fast path gives up (encoding/json folds some non-ASCII letters to
// ASCII ones).
func (d *fastDecoder) key() ([]byte, bool) {
	start := d.i + 1
	for i := start; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			d.i = i + 1
			return d.b[start:i], true
		case c == '\\' || c < ' ' || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// array reads an array, calling elem for each element, or null.
// setNil is called for null, empty for [] (encoding/json sets a nil
// slice to an empty one).
func (d *fastDecoder) array(elem func() bool, setNil, empty func()) bool {
	switch d.next() {
	case 'n':
		setNil()
		return d.literal("null")
	case '[':
		d.i++
	default:
		return false
	}
	if d.next() == ']' {
		d.i++
		empty()
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			return true
		default:
			return false
		}
	}
}

// structs reads an array of structs into *s, each with read.
func structs[T any](d *fastDecoder, s *[]T, read func(*T) bool) bool {
	return d.array(func() bool {
		var zero T
		*s = append(*s, zero)
		return read(&(*s)[len(*s)-1])
	}, func() { *s = nil }, func() {
		if *s == nil {
			*s = []T{}
		}
	})
}

// str reads a string into *dst; null leaves *dst as it is.
func (d *fastDecoder) str(dst *string) bool {
	switch d.next() {
	case 'n':
		return d.literal("null")
	case '"':
		s, ok := d.stringValue()
		*dst = s
		return ok
	}
	return false
}

// boolean reads true or false into *dst; null leaves *dst as it is.
func (d *fastDecoder) boolean(dst *bool) bool {
	switch d.next() {
	case 'n':
		return d.literal("null")
	case 't':
		*dst = true
		return d.literal("true")
	case 'f':
		*dst = false
		return d.literal("false")
	}
	return false
}

// id reads an ID: the token goes to ID.UnmarshalJSON, as with
// encoding/json.
func (d *fastDecoder) id(dst *ID) bool {
	tok, ok := d.scalar()
	if !ok {
		return false
	}
	if p := d.page; p != "" && (string(tok) == string(p) ||
		len(tok) == len(p)+2 && tok[0] == '"' && string(tok[1:len(tok)-1]) == string(p)) {
		*dst = p
		return true
	}
	return dst.UnmarshalJSON(tok) == nil
}

// timestamp reads a Timestamp: the token goes to Timestamp.UnmarshalJSON.
func (d *fastDecoder) timestamp(dst *Timestamp) bool {
	tok, ok := d.scalar()
	return ok && dst.UnmarshalJSON(tok) == nil
}

// scalar reads a string, number or literal and returns its token.
func (d *fastDecoder) scalar() ([]byte, bool) {
	start := d.i
	var ok bool
	switch c := d.next(); {
	case c == '"':
		start = d.i
		_, _, ok = d.stringToken()
	case c == '-' || c >= '0' && c <= '9':
		start = d.i
		ok = d.number()
	case c == 't':
		start = d.i
		ok = d.literal("true")
	case c == 'f':
		start = d.i
		ok = d.literal("false")
	case c == 'n':
		start = d.i
		ok = d.literal("null")
	}
	return d.b[start:d.i], ok
}

// stringToken reads a string at its opening quote, checking it as a JSON
// string, and returns what is between the quotes and whether that holds
// escapes or bytes outside ASCII.
func (d *fastDecoder) stringToken() (raw []byte, plain, ok bool) {
	start := d.i + 1
	plain = true
	for i := start; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			d.i = i + 1
			return d.b[start:i], plain, true
		case c == '\\':
			plain = false
			i++
			if i >= len(d.b) {
				return nil, false, false
			}
			switch d.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(d.b) || getu4(d.b[i-1:]) < 0 {
					return nil, false, false
				}
				i += 4
			default:
				return nil, false, false
			}
		case c < ' ':
			return nil, false, false
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return nil, false, false
}

// stringValue reads a string at its opening quote and returns its value
// as encoding/json gives it.
func (d *fastDecoder) stringValue() (string, bool) {
	raw, plain, ok := d.stringToken()
	switch {
	case !ok:
		return "", false
	case plain || utf8.Valid(raw) && bytes.IndexByte(raw, '\\') < 0:
		return string(raw), true
	}
	return unquote(raw), true
}

// unquote returns the value of a checked JSON string's contents as
// encoding/json does: escapes decoded, an invalid surrogate or byte of
// UTF-8 replaced by U+FFFD.
func unquote(s []byte) string {
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			r++
			switch s[r] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := getu4(s[r-1:])
				r += 5
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						b = utf8.AppendRune(b, dec)
						r += 6
						continue
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // " \ /
				b = append(b, s[r])
			}
			r++
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			b = utf8.AppendRune(b, rr)
			r += size
		}
	}
	return string(b)
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *fastDecoder) number() bool {
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || b[i+1] < '0' || b[i+1] > '9' {
			return false
		}
		i = digits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		i = digits(b, i)
	}
	d.i = i
	return true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// skip reads any value, checking it, and drops it.
func (d *fastDecoder) skip() bool {
	d.depth++
	ok := d.depth <= maxFastDepth && d.skipValue()
	d.depth--
	return ok
}

func (d *fastDecoder) skipValue() bool {
	switch d.next() {
	case '{':
		d.i++
		if d.next() == '}' {
			d.i++
			return true
		}
		for {
			if d.next() != '"' {
				return false
			}
			if _, _, ok := d.stringToken(); !ok || d.next() != ':' {
				return false
			}
			d.i++
			if !d.skip() {
				return false
			}
			switch d.next() {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case '[':
		d.i++
		if d.next() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip() {
				return false
			}
			switch d.next() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	}
	_, ok := d.scalar()
	return ok
}

// The readers of the webhook's types. Each field's bit is 1<<(its index
// among the type's names), which only needs to differ from the others'.

func (d *fastDecoder) webhook(w *Webhook) bool {
	return d.object(webhookNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "object":
			if d.next() == '"' && d.literal(`"page"`) { // nearly every body: no copy
				w.Object = "page"
				return 1, true
			}
			return 1, d.str(&w.Object)
		case "entry":
			return 2, structs(d, &w.Entry, d.entry)
		}
		return 0, true
	})
}

func (d *fastDecoder) entry(e *Entry) bool {
	return d.object(entryNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "id":
			d.page = ""
			ok := d.id(&e.ID)
			if ok && IsNumericID(string(e.ID)) {
				d.page = e.ID
			}
			return 1, ok
		case "time":
			return 2, d.timestamp(&e.Time)
		case "messaging":
			return 4, structs(d, &e.Messaging, d.event)
		case "standby":
			return 8, structs(d, &e.Standby, d.event)
		}
		return 0, true
	})
}

func (d *fastDecoder) party(p *Party) bool {
	return d.object(partyNames, func(key []byte) (uint32, bool) {
		if string(key) == "id" {
			return 1, d.id(&p.ID)
		}
		return 0, true
	})
}

// pointer reads a struct behind a pointer: null sets it to nil, anything
// else is read into a new struct.
func pointer[T any](d *fastDecoder, p **T, read func(*T) bool) bool {
	if d.next() == 'n' {
		*p = nil
		return d.literal("null")
	}
	*p = new(T)
	return read(*p)
}

func (d *fastDecoder) event(e *Event) bool {
	return d.object(eventNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "sender":
			return 1 << 0, d.party(&e.Sender)
		case "recipient":
			return 1 << 1, d.party(&e.Recipient)
		case "timestamp":
			return 1 << 2, d.timestamp(&e.Timestamp)
		case "message":
			return 1 << 3, pointer(d, &e.Message, d.message)
		case "postback":
			return 1 << 4, pointer(d, &e.Postback, d.postback)
		case "delivery":
			return 1 << 5, pointer(d, &e.Delivery, d.delivery)
		case "read":
			return 1 << 6, pointer(d, &e.Read, d.read)
		case "reaction":
			return 1 << 7, pointer(d, &e.Reaction, d.reaction)
		case "referral":
			return 1 << 8, pointer(d, &e.Referral, d.referral)
		case "optin":
			return 1 << 9, pointer(d, &e.Optin, d.optin)
		case "pass_thread_control":
			return 1 << 10, pointer(d, &e.PassThreadControl, d.ownerChange)
		case "take_thread_control":
			return 1 << 11, pointer(d, &e.TakeThreadControl, d.ownerChange)
		case "request_thread_control":
			return 1 << 12, pointer(d, &e.RequestThreadControl, d.controlRequest)
		}
		return 0, true // app_roles among them: foldsToAny gives up
	})
}

func (d *fastDecoder) message(m *InboundMessage) bool {
	return d.object(messageNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "mid":
			return 1 << 0, d.str(&m.MID)
		case "text":
			return 1 << 1, d.str(&m.Text)
		case "quick_reply":
			return 1 << 2, pointer(d, &m.QuickReply, func(q *InboundQuickReply) bool {
				return d.object(quickReplyNames, func(key []byte) (uint32, bool) {
					if string(key) == "payload" {
						return 1, d.str(&q.Payload)
					}
					return 0, true
				})
			})
		case "reply_to":
			return 1 << 3, pointer(d, &m.ReplyTo, func(r *ReplyTo) bool {
				return d.object(replyToNames, func(key []byte) (uint32, bool) {
					switch string(key) {
					case "mid":
						return 1, d.str(&r.MID)
					case "is_self_reply":
						return 2, d.boolean(&r.IsSelfReply)
					}
					return 0, true
				})
			})
		case "attachments":
			return 1 << 4, structs(d, &m.Attachments, d.attachment)
		case "is_echo":
			return 1 << 5, d.boolean(&m.IsEcho)
		case "app_id":
			return 1 << 6, d.id(&m.AppID)
		case "metadata":
			return 1 << 7, d.str(&m.Metadata)
		case "is_deleted":
			return 1 << 8, d.boolean(&m.IsDeleted)
		case "is_unsupported":
			return 1 << 9, d.boolean(&m.IsUnsupported)
		case "referral":
			return 1 << 10, pointer(d, &m.Referral, d.referral)
		}
		return 0, true
	})
}

func (d *fastDecoder) attachment(a *InboundAttachment) bool {
	return d.object(attachmentNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "type":
			return 1, d.str(&a.Type)
		case "payload":
			p := &a.Payload
			return 2, d.object(payloadNames, func(key []byte) (uint32, bool) {
				switch string(key) {
				case "url":
					return 1, d.str(&p.URL)
				case "title":
					return 2, d.str(&p.Title)
				case "sticker_id":
					return 4, d.id(&p.StickerID)
				}
				return 0, true
			})
		}
		return 0, true
	})
}

func (d *fastDecoder) postback(p *Postback) bool {
	return d.object(postbackNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "mid":
			return 1, d.str(&p.MID)
		case "title":
			return 2, d.str(&p.Title)
		case "payload":
			return 4, d.str(&p.Payload)
		case "referral":
			return 8, pointer(d, &p.Referral, d.referral)
		}
		return 0, true
	})
}

func (d *fastDecoder) delivery(v *Delivery) bool {
	return d.object(deliveryNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "mids":
			return 1, structs(d, &v.MIDs, d.str)
		case "watermark":
			return 2, d.timestamp(&v.Watermark)
		}
		return 0, true
	})
}

func (d *fastDecoder) read(v *Read) bool {
	return d.object(readNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "watermark":
			return 1, d.timestamp(&v.Watermark)
		case "mid":
			return 2, d.str(&v.MID)
		}
		return 0, true
	})
}

func (d *fastDecoder) reaction(v *Reaction) bool {
	return d.object(reactionNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "reaction":
			return 1, d.str(&v.Reaction)
		case "emoji":
			return 2, d.str(&v.Emoji)
		case "action":
			return 4, d.str(&v.Action)
		case "mid":
			return 8, d.str(&v.MID)
		}
		return 0, true
	})
}

func (d *fastDecoder) referral(v *Referral) bool {
	return d.object(referralNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "ref":
			return 1, d.str(&v.Ref)
		case "source":
			return 2, d.str(&v.Source)
		case "type":
			return 4, d.str(&v.Type)
		case "ad_id":
			return 8, d.id(&v.AdID)
		}
		return 0, true
	})
}

func (d *fastDecoder) optin(v *Optin) bool {
	return d.object(optinNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "type":
			return 1, d.str(&v.Type)
		case "payload":
			return 2, d.str(&v.Payload)
		case "ref":
			return 4, d.str(&v.Ref)
		case "user_ref":
			return 8, d.str(&v.UserRef)
		case "notification_messages_token":
			return 16, d.str(&v.NotificationMessagesToken)
		case "notification_messages_status":
			return 32, d.str(&v.NotificationMessagesStatus)
		}
		return 0, true
	})
}

func (d *fastDecoder) ownerChange(v *ThreadOwnerChange) bool {
	return d.object(ownerNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "new_owner_app_id":
			return 1, d.id(&v.NewOwnerAppID)
		case "previous_owner_app_id":
			return 2, d.id(&v.PreviousOwnerAppID)
		case "metadata":
			return 4, d.str(&v.Metadata)
		}
		return 0, true
	})
}

func (d *fastDecoder) controlRequest(v *ThreadControlRequest) bool {
	return d.object(requestNames, func(key []byte) (uint32, bool) {
		switch string(key) {
		case "requested_owner_app_id":
			return 1, d.id(&v.RequestedOwnerAppID)
		case "metadata":
			return 2, d.str(&v.Metadata)
		}
		return 0, true
	})
}
