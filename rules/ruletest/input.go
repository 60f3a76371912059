// Package ruletest tries a compiled rule set on events described by hand:
// the cases of a rule-test file (`threadgate test`, and the tests that a
// running gateway runs before it accepts a new rules file) and the events
// that `threadgate explain` and `POST /-/explain` explain.
//
// It knows nothing of files: the rules package reads test files and the
// `tests:` key of a rules file and hands their YAML nodes to DecodeCases.
// Everything here is pure: the clock comes in with each input.
package ruletest

import (
	"fmt"
	"strings"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// Defaults of the IDs an input's event carries when it does not say.
const (
	DefaultSender = "test-user"
	DefaultPage   = "test-page"
)

// Owner values of an input's conversation when it does not give one: the
// bot owns the thread, or, for a standby event, another app does.
const (
	OwnerSelf  = "self"
	OwnerOther = "other"
)

// Input describes one event to try the rules on and the state of its
// conversation. The JSON form is the body of `POST /-/explain`.
type Input struct {
	// Message is the text of a message.
	Message string `json:"message,omitempty"`
	// Postback is the payload of a postback (a button the user tapped).
	Postback string `json:"postback,omitempty"`
	// QuickReply is the payload of the quick reply the message carries.
	QuickReply string `json:"quick_reply,omitempty"`
	// Attachments are the types of the message's attachments (image, …).
	Attachments []string `json:"attachment,omitempty"`
	// Event is the event kind; by default postback when Postback is set,
	// else message.
	Event string `json:"event,omitempty"`
	// Standby is true for an event on the standby channel.
	Standby bool `json:"standby,omitempty"`
	// Metadata is the metadata of a handover event.
	Metadata string `json:"metadata,omitempty"`
	// At is the clock that now() reads; zero: the time of the run.
	At time.Time `json:"at,omitzero"`
	// Owner is who owns the thread: "self", "idle", an app name; by default
	// "self", or "other" for a standby event.
	Owner string `json:"owner,omitempty"`
	// Paused is true when the bot is paused for the user.
	Paused bool `json:"paused,omitempty"`
	// Sender is the user's ID and Page the Page's, or its name in the
	// file's pages; DefaultSender and DefaultPage when empty.
	Sender string `json:"sender,omitempty"`
	Page   string `json:"page,omitempty"`
}

// inputKeys are the YAML keys of an input, in documentation order.
var inputKeys = []string{"message", "postback", "quick_reply", "attachment", "event", "standby", "metadata", "at", "owner", "paused", "sender", "page"}

// InputKeys returns the keys that describe an input in a test case, in
// documentation order.
func InputKeys() []string { return append([]string(nil), inputKeys...) }

// Kind returns the event kind the input describes.
func (in *Input) Kind() engine.Kind {
	switch {
	case in.Event != "":
		return engine.Kind(in.Event)
	case in.Postback != "":
		return engine.KindPostback
	}
	return engine.KindMessage
}

// problem is a mistake in an input, about one of its keys.
type problem struct {
	key string
	msg string
}

// problems returns every mistake of the input: an unknown event kind, keys
// that do not go together, an input that describes no event.
func (in *Input) problems() []problem {
	var out []problem
	if in.Event != "" && !knownKind(engine.Kind(in.Event)) {
		out = append(out, problem{"event", fmt.Sprintf("unknown event %q, expected one of: %s", in.Event, kindNames())})
		return out
	}
	isMessage := in.Message != "" || in.QuickReply != "" || len(in.Attachments) > 0
	if in.Event == "" && in.Postback == "" && !isMessage {
		out = append(out, problem{"", "no event: give message, postback, quick_reply, attachment or event"})
		return out
	}
	kind := in.Kind()
	if in.Postback != "" && kind != engine.KindPostback {
		out = append(out, problem{"postback", fmt.Sprintf("a postback payload cannot go with event: %s, remove one of them", kind)})
	}
	if in.Postback != "" && in.Standby {
		out = append(out, problem{"postback", "postbacks on the standby channel carry no payload; write event: postback and standby: true without postback"})
	}
	if isMessage && in.Postback != "" {
		out = append(out, problem{"postback", "an event is either a message (message, quick_reply, attachment) or a postback, not both"})
	} else if isMessage && kind != engine.KindMessage {
		out = append(out, problem{"event", fmt.Sprintf("message, quick_reply and attachment describe a message, not a %s event", kind)})
	}
	if in.Metadata != "" && (kind == engine.KindMessage || kind == engine.KindPostback) {
		out = append(out, problem{"metadata", "metadata belongs to handover events (pass_thread_control, take_thread_control, request_thread_control)"})
	}
	return out
}

// Validate returns an error describing every mistake of the input, or nil.
func (in *Input) Validate() error {
	ps := in.problems()
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		if p.key != "" {
			msgs[i] = p.key + ": " + p.msg
		} else {
			msgs[i] = p.msg
		}
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// Engine returns the engine's input for this event. now is used when the
// input gives no time. Call Validate first: Engine does not check.
func (in *Input) Engine(now time.Time) engine.Input {
	ev := &engine.Event{
		Kind:     in.Kind(),
		Standby:  in.Standby,
		Object:   "page",
		PageID:   orDefault(in.Page, DefaultPage),
		SenderID: orDefault(in.Sender, DefaultSender),
		Metadata: in.Metadata,
	}
	switch ev.Kind {
	case engine.KindMessage:
		ev.Text = in.Message
		if in.QuickReply != "" {
			ev.QuickReply, ev.HasQuickReply = in.QuickReply, true
		}
		ev.Attachments = append([]string(nil), in.Attachments...)
	case engine.KindPostback:
		ev.Payload = in.Postback
	}
	at := in.At
	if at.IsZero() {
		at = now
	}
	return engine.Input{Event: ev, State: engine.State{Owner: in.owner(), Paused: in.Paused}, Now: at}
}

// engineInput is in.Engine with the page resolved against the rule set:
// a name of the file's pages stands for the page's ID.
func engineInput(set *engine.Set, in *Input, now time.Time) engine.Input {
	ei := in.Engine(now)
	if in.Page != "" {
		for _, p := range set.Handover().Pages {
			if p.Name == in.Page {
				ei.Event.PageID = p.ID
				break
			}
		}
	}
	return ei
}

// owner is the thread owner the rules see.
func (in *Input) owner() string {
	switch {
	case in.Owner != "":
		return in.Owner
	case in.Standby:
		return OwnerOther
	}
	return OwnerSelf
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func knownKind(k engine.Kind) bool {
	for _, x := range engine.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

func kindNames() string {
	parts := make([]string, len(engine.Kinds))
	for i, k := range engine.Kinds {
		parts[i] = string(k)
	}
	return strings.Join(parts, ", ")
}

// decodeInput fills in from the input keys of a test case's fields,
// reporting every mistake at its position; at is the case's node, where
// mistakes about the case as a whole are put. what prefixes messages.
func decodeInput(fields []diag.Field, at *yaml.Node, what string) (Input, diag.List) {
	var in Input
	var errs diag.List
	keyNode := map[string]*yaml.Node{}
	for _, f := range fields {
		k := f.Key.Value
		keyNode[k] = f.Key
		where := what + ": " + k
		switch k {
		case "message", "postback", "quick_reply", "event", "metadata", "owner", "sender", "page":
			// Numbers and booleans are read as their text: `message: 42`
			// is a message that says 42.
			s, err := diag.Scalar(f.Value, where)
			if err != nil {
				errs.Add(err)
				continue
			}
			switch k {
			case "message":
				in.Message = s
			case "postback":
				in.Postback = s
			case "quick_reply":
				in.QuickReply = s
			case "event":
				in.Event = s
			case "metadata":
				in.Metadata = s
			case "owner":
				in.Owner = s
			case "sender":
				in.Sender = s
			case "page":
				in.Page = s
			}
		case "attachment":
			items, e := diag.Strings(f.Value, where)
			errs.Add(e...)
			for _, it := range items {
				in.Attachments = append(in.Attachments, it.Value)
			}
		case "standby", "paused":
			b, err := diag.Bool(f.Value, where)
			if err != nil {
				errs.Add(err)
				continue
			}
			if k == "standby" {
				in.Standby = b
			} else {
				in.Paused = b
			}
		case "at":
			s, err := diag.Scalar(f.Value, where)
			if err != nil {
				errs.Add(err)
				continue
			}
			t, perr := ParseTime(s)
			if perr != nil {
				errs.Add(diag.At(f.Value, "%s: %v", where, perr))
				continue
			}
			in.At = t
		}
	}
	if len(errs) > 0 {
		return in, errs
	}
	for _, p := range in.problems() {
		n := at
		if kn, ok := keyNode[p.key]; ok {
			n = kn
		}
		if p.key != "" {
			errs.Add(diag.At(n, "%s: %s: %s", what, p.key, p.msg))
		} else {
			errs.Add(diag.At(n, "%s: %s", what, p.msg))
		}
	}
	return in, errs
}

// ParseTime reads the time of an input: RFC 3339 with a time zone, such as
// 2026-01-05T10:00:00+01:00 or 2026-01-05T09:00:00Z.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time, expected a date and time with its zone such as 2026-01-05T10:00:00+01:00", s)
	}
	return t, nil
}
