package messenger

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// checkFastAsStd fails when the fast path decodes body to anything but
// what encoding/json decodes, and reports whether it decoded it.
func checkFastAsStd(t *testing.T, body []byte) bool {
	t.Helper()
	var fast Webhook
	if !decodeFast(body, &fast) {
		return false
	}
	var std Webhook
	if err := json.Unmarshal(body, &std); err != nil {
		t.Fatalf("the fast path decoded a body that encoding/json refuses (%v):\n%q", err, body)
	}
	if !reflect.DeepEqual(fast, std) {
		f, _ := json.Marshal(fast)
		s, _ := json.Marshal(std)
		t.Fatalf("the fast path and encoding/json differ on\n%q\nfast: %s\nstd:  %s", body, f, s)
	}
	return true
}

// TestDecodeFastOnSamples checks that the fast path decodes every sample
// as encoding/json does, and that it decodes them itself: all but the one
// with app_roles, which it leaves to encoding/json.
func TestDecodeFastOnSamples(t *testing.T) {
	for _, name := range samples(t) {
		t.Run(name, func(t *testing.T) {
			body := readTestdata(t, name)
			took := checkFastAsStd(t, body)
			if want := !strings.Contains(string(body), `"app_roles"`); took != want {
				t.Errorf("fast path taken = %v, want %v", took, want)
			}
		})
	}
}

// TestDecodeFastEdges holds bodies where the fast path must either decode
// as encoding/json does or give up: the cases where the two could part.
func TestDecodeFastEdges(t *testing.T) {
	ev := func(s string) string {
		return `{"object":"page","entry":[{"id":"1","time":1,"messaging":[` + s + `]}]}`
	}
	tests := []struct {
		name string
		body string
		fast bool // whether the fast path decodes it
	}{
		{"plain", ev(`{"sender":{"id":"2"},"message":{"mid":"m","text":"hi"}}`), true},
		{"white space everywhere", " \t\r\n{ \"object\" : \"page\" , \"entry\" : [ ] } \n", true},
		{"object not page", `{"object":"instagram","entry":[]}`, true},
		{"object page with an escape", `{"object":"pag\u0065"}`, true},
		{"object longer than page", `{"object":"pages"}`, true},
		{"escapes", ev(`{"message":{"text":"\"\\\/\b\f\n\r\t\u00e9\u20ac\ud83d\ude00"}}`), true},
		{"lone high surrogate", ev(`{"message":{"text":"a\ud800b"}}`), true},
		{"high surrogate then not low", ev(`{"message":{"text":"\ud800\u0041"}}`), true},
		{"lone low surrogate", ev(`{"message":{"text":"\udc00"}}`), true},
		{"invalid UTF-8", ev("{\"message\":{\"text\":\"a\xffb\xc3\"}}"), true},
		{"UTF-8 of a surrogate", ev("{\"message\":{\"text\":\"\xed\xa0\x80\"}}"), true},
		{"raw non-ASCII", ev(`{"message":{"text":"héllo 世界"}}`), true},
		{"nulls", ev(`{"sender":null,"recipient":{"id":null},"timestamp":null,"message":{"mid":null,"is_echo":null,"attachments":null,"quick_reply":null}}`), true},
		{"null event", ev(`null`), true},
		{"null entry", `{"entry":[null]}`, true},
		{"null entries", `{"entry":null}`, true},
		{"empty arrays", ev(`{"delivery":{"mids":[]}}`), true},
		{"numeric IDs", ev(`{"sender":{"id":-12},"recipient":{"id":0}}`), true},
		{"string timestamp", ev(`{"timestamp":"1764000000001"}`), true},
		{"exponent timestamp", ev(`{"timestamp":1.764e12}`), true},
		{"page ID reused", `{"entry":[{"id":"77","messaging":[{"recipient":{"id":"77"},"sender":{"id":77}}]},{"messaging":[{"recipient":{"id":"77"}}]}]}`, true},
		{"page ID with an escape", `{"entry":[{"id":"7\u0037","messaging":[{"recipient":{"id":"7\u0037"}},{"recipient":{"id":"77"}}]}]}`, true},
		{"unknown values of every kind", ev(`{"x":{"a":[1,2.5,-0,0e1,1E+2,1e-2,true,false,null,"s",{},[]]},"message":{"mid":"m"}}`), true},
		{"unknown key in another case", ev(`{"x_Y":1}`), true},
		{"empty object", `{}`, true},

		{"not an object", `[]`, false},
		{"null", `null`, false},
		{"empty", ``, false},
		{"trailing garbage", `{"object":"page"} x`, false},
		{"two values", `{} {}`, false},
		{"trailing comma", `{"object":"page",}`, false},
		{"missing colon", `{"object" "page"}`, false},
		{"duplicate key", ev(`{"message":{"mid":"a"},"message":{"text":"b"}}`), false},
		{"key in another case", ev(`{"Message":{"mid":"a"}}`), false},
		{"key of a nested type in another case", ev(`{"message":{"MID":"a"}}`), false},
		{"escaped key", ev(`{"m\u0065ssage":{"mid":"a"}}`), false},
		{"non-ASCII key", ev(`{"meſsage":1}`), false},
		{"kelvin sign key", `{"entry":[{"id":"1","messaging":[{"message":{"\u212a":1}}]}]}`, false},
		{"app_roles", ev(`{"app_roles":{"1":["primary_receiver"]}}`), false},
		{"wrong type", ev(`{"message":{"text":5}}`), false},
		{"wrong type for an ID", ev(`{"sender":{"id":1.5}}`), false},
		{"ID as object", ev(`{"sender":{"id":{}}}`), false},
		{"bool as string", ev(`{"message":{"is_echo":"true"}}`), false},
		{"control character in a string", ev("{\"message\":{\"text\":\"a\x01\"}}"), false},
		{"bad escape", ev(`{"message":{"text":"\x"}}`), false},
		{"short unicode escape", ev(`{"message":{"text":"\u12"}}`), false},
		{"leading zero", ev(`{"timestamp":01}`), false},
		{"bare minus", ev(`{"x":-}`), false},
		{"fraction without digits", ev(`{"x":1.}`), false},
		{"exponent without digits", ev(`{"x":1e}`), false},
		{"plus sign", ev(`{"x":+1}`), false},
		{"bad literal", ev(`{"x":nul}`), false},
		{"unterminated string", `{"object":"page`, false},
		{"unterminated object", `{"object":"page"`, false},
		{"deep unknown value", ev(`{"x":` + strings.Repeat("[", maxFastDepth+1) + strings.Repeat("]", maxFastDepth+1) + `}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if took := checkFastAsStd(t, []byte(tt.body)); took != tt.fast {
				t.Errorf("fast path taken = %v, want %v", took, tt.fast)
			}
			// Whichever path decodes it, Decode gives what it gave
			// with encoding/json alone.
			got, err := Decode([]byte(tt.body))
			want, wantErr := decodeStdOnly([]byte(tt.body))
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() || !reflect.DeepEqual(got, want) {
				t.Errorf("Decode = %+v, %v; with encoding/json alone %+v, %v", got, err, want, wantErr)
			}
		})
	}
}

// decodeStdOnly is Decode without its fast path.
func decodeStdOnly(body []byte) (*Webhook, error) {
	w := new(Webhook)
	if err := decodeStd(body, w); err != nil {
		return nil, err
	}
	truncateTexts(w)
	return w, nil
}

// TestDecodeFastKnowsEveryField checks that every JSON field of the
// webhook's types is in the sample that has them all, so that a field
// added to a type and not to the fast path shows: the fast path gives up
// on every body that has the field (TestDecodeFastOnSamples).
func TestDecodeFastKnowsEveryField(t *testing.T) {
	body := string(readTestdata(t, "every_field.json"))
	for _, names := range [][]string{webhookNames, entryNames, partyNames, eventNames, messageNames, quickReplyNames,
		replyToNames, attachmentNames, payloadNames, postbackNames, deliveryNames, readNames, reactionNames,
		referralNames, optinNames, ownerNames, requestNames} {
		for _, n := range names {
			if n == "app_roles" { // left to encoding/json
				continue
			}
			if !strings.Contains(body, `"`+n+`":`) {
				t.Errorf("testdata/every_field.json has no field %q", n)
			}
		}
	}
}

// FuzzDecodeFast checks that whatever the fast path decodes, encoding/json
// decodes the same.
func FuzzDecodeFast(f *testing.F) {
	for _, name := range samples(f) {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"entry":[{"id":"1","messaging":[{"message":{"text":"\ud800\u0041"}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFastAsStd(t, body)
	})
}

// TestDecodeAllocations fails when decoding a one-message webhook
// allocates more than what it keeps: the webhook, its entry and event
// slices, the message, and its strings (the recipient is the Page's ID,
// not copied again).
func TestDecodeAllocations(t *testing.T) {
	body := readTestdata(t, "text_message.json")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Decode(body); err != nil {
			t.Fatal(err)
		}
	})
	// Webhook, []Entry, []Event, InboundMessage; the Page's and the
	// sender's IDs, the mid and the text.
	const want = 8
	if allocs > want {
		t.Errorf("Decode allocates %.0f times, want %d", allocs, want)
	}
}
