package conversation

import (
	"time"

	"github.com/threadgate/threadgate/engine"
)

// Settings is what the transitions read besides the state and the event:
// the gateway's own app ID, the rules file's handover settings and apps, and
// what the platform can do. The gateway builds it for each event from the
// rule set in force.
type Settings struct {
	// AppID is threadgate's own Facebook app ID ("" when unknown).
	AppID string
	// RulesLoaded is false while no rule set is in force: events still
	// teach who owns the thread, but no rule runs.
	RulesLoaded bool
	// Handover holds the rules file's handover settings (pause_on_human,
	// return_after_idle, on_request, dialects).
	Handover engine.Handover
	// Apps maps the rules file's app names to app IDs.
	Apps map[string]string
	// ReadsOwner is true when a rule of the set reads the thread's owner.
	ReadsOwner bool
	// KeepTranscript is true when a rule of the set reads the user's last
	// messages (.Transcript, engine.Set.ReadsTranscript): then each of the
	// user's texts joins State.Transcript. When it is false, no message is
	// kept and a transcript left by an earlier rule set is dropped at the
	// next event the rules see, so that no state holds the user's words
	// for nothing; the transcript then holds the messages received since
	// a rule reading it was loaded.
	KeepTranscript bool
	// CanLookupOwner is true when the platform answers GET thread_owner.
	CanLookupOwner bool
	// CanCarryControl is true when the platform can send a thread_control
	// with a message (the Send API of Conversation Routing).
	CanCarryControl bool
}

// appName returns the name an app ID has in the rules file's apps, or "".
func (s Settings) appName(appID string) string {
	for name, id := range s.Apps {
		if id == appID {
			return name
		}
	}
	return ""
}

// target is how the Observer and reports name an app: its name in the
// rules file, else its ID.
func (s Settings) target(appID string) string {
	if name := s.appName(appID); name != "" {
		return name
	}
	return appID
}

// OwnerForRules is an owner as rules read it: "self", "idle", "other", ""
// (unknown), the name the app has in the rules file's apps, or its ID.
func (s Settings) OwnerForRules(o Owner) string {
	if o.Kind == OwnerApp {
		return s.target(o.AppID)
	}
	return o.String()
}

// ReturnWait is how long a thread another app holds must be quiet before
// the return timer acts on it: handover.return_after_idle, or IdleExpiry
// when that is off (the platform has made the thread idle by then).
func (s Settings) ReturnWait() time.Duration {
	if s.RulesLoaded && s.Handover.ReturnAfterIdle > 0 {
		return s.Handover.ReturnAfterIdle
	}
	return IdleExpiry
}
