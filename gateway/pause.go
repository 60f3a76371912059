package gateway

import (
	"time"
	"unicode/utf8"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
)

// This file notes what people do in a thread: the user's messages and an
// agent's echoes (for the idle clocks), and pauses the bot's rules for a
// user after a person wrote to them (handover.pause_on_human).

// observeActivity records what one event shows of the people in the
// thread. It runs for every event, before the rules, with the rule set
// in force (nil when none is loaded).
func (g *Gateway) observeActivity(set *engine.Set, conv Conversation, in messenger.Incoming, now time.Time) {
	ev := in.Event
	kind := ev.Kind()
	human := kind == messenger.KindEcho && g.isHumanEcho(set, in)
	handBack := kind == messenger.KindPassThreadControl && g.isHandBack(in)
	var pause time.Duration
	if human && set != nil {
		pause = set.Handover().PauseOnHuman
	}
	g.state.Update(conv, func(s *ThreadState) {
		if in.Object != "" {
			s.Object = in.Object
		}
		switch {
		case kind == messenger.KindMessage || kind == messenger.KindPostback:
			s.LastUserMessage = now
			s.LastActivity = now
		case human:
			s.LastActivity = now
			if pause > 0 && now.Add(pause).After(s.PausedUntil) {
				s.PausedUntil = now.Add(pause)
			}
		case handBack:
			// The agent gave the thread back: the bot answers again now.
			s.PausedUntil = time.Time{}
		}
	})
	if kind == messenger.KindEcho {
		g.learnFromEcho(conv, in)
	}
	if human && pause > 0 {
		g.log.Info("a person wrote to the user: the bot is paused for them", "sender", g.senderTag(conv.UserID), "pause", pause.String())
	}
}

// isHumanEcho reports whether an echo is of a message that a person (the
// Page Inbox, Business Suite) or another app sent, not the gateway itself.
//
// With APP_ID set, that is any echo whose app_id is not APP_ID, or that has
// none. Without APP_ID the gateway cannot recognise its own echoes by
// app_id, so only these count: an echo on the standby channel (another app
// owns the thread, so the gateway did not send it), and an echo whose
// app_id is the Page Inbox's, the Instagram Inbox's or an app named under
// the rules file's apps.
func (g *Gateway) isHumanEcho(set *engine.Set, in messenger.Incoming) bool {
	app := ""
	if in.Event.Message != nil {
		app = in.Event.Message.AppID.String()
	}
	if g.cfg.AppID != "" {
		return app != g.cfg.AppID
	}
	if in.Standby {
		return true
	}
	switch {
	case app == "":
		return false
	case messenger.IsInboxApp(app):
		return true
	}
	return set != nil && set.AppName(app) != ""
}

// Bounds of .Transcript: the user's last messages, oldest first, at most
// transcriptLen of them and maxTranscriptRunes characters in all, so that
// `{{ .Transcript | join " / " }}` fits in a handover's 1000 characters of
// metadata with room for a few words around it.
const maxTranscriptRunes = 800

// appendTranscript adds a message to a transcript and drops the oldest
// messages beyond the bounds; a message longer than the whole budget is cut.
func appendTranscript(list []string, s string) []string {
	if utf8.RuneCountInString(s) > maxTranscriptRunes {
		s = string([]rune(s)[:maxTranscriptRunes])
	}
	list = appendBounded(list, s, transcriptLen)
	total := 0
	for _, m := range list {
		total += utf8.RuneCountInString(m)
	}
	drop := 0
	for total > maxTranscriptRunes && drop < len(list)-1 {
		total -= utf8.RuneCountInString(list[drop])
		drop++
	}
	if drop > 0 {
		list = append([]string(nil), list[drop:]...)
	}
	return list
}
