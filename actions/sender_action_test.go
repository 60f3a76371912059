package actions

import (
	"errors"
	"reflect"
	"testing"
)

func TestDecodeSenderAction(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "typing on", src: `sender_action: typing_on`},
		{name: "typing off", src: `sender_action: typing_off`},
		{name: "mark seen", src: `sender_action: mark_seen`},
		{name: "unknown", src: `sender_action: typing`, want: []string{
			`1:16: sender_action: unknown indicator "typing", expected one of: typing_on, typing_off, mark_seen`,
		}},
		{name: "mapping", src: `sender_action: {action: typing_on}`, want: []string{
			"1:16: sender_action: expected a string, got a mapping",
		}},
		{name: "null", src: `sender_action:`, want: []string{
			"1:15: sender_action: expected a string, got nothing (null)",
		}},
	})
}

func TestSenderAction(t *testing.T) {
	for _, a := range []string{"typing_on", "typing_off", "mark_seen"} {
		t.Run(a, func(t *testing.T) {
			s, err := plan(t, "sender_action: "+a, &Data{Text: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind() != "sender_action" {
				t.Errorf("Kind() = %q", s.Kind())
			}
			if want := map[string]any{"action": a}; !reflect.DeepEqual(s.Fields(), want) {
				t.Errorf("Fields() = %v, want %v", s.Fields(), want)
			}
			calls, err := execute(t, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := []call{{Method: "SenderAction", To: testTo, Arg: a}}; !reflect.DeepEqual(calls, want) {
				t.Fatalf("calls: got %+v, want %+v", calls, want)
			}
			_, err = execute(t, s, map[string]error{"SenderAction": errGraph})
			if !errors.Is(err, errGraph) {
				t.Fatalf("error %v does not wrap the platform's", err)
			}
			mustContain(t, err, "sender_action "+a+": ")
		})
	}
}
