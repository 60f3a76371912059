package sandbox

import (
	"crypto/rand"
	"encoding/json"
	"time"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/messenger"
)

// thread is one user's conversation with the Page. It is guarded by
// Emulator.mu.
type thread struct {
	user         string
	owner        string // app ID; "" when idle
	ownerSince   time.Time
	lastActivity time.Time // last message of the user (ownership expires 24 h later)
	typing       string    // app ID showing the typing indicator, or ""
	typingSince  time.Time
	seen         time.Time // last mark_seen
	items        []Item
}

// Item is one line of a conversation as the page shows it: a message of
// the user, the bot or an agent, or a note about the thread's ownership.
type Item struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// From is "user", "bot", "agent" or "system".
	From string `json:"from"`
	// App names the app that sent a bot or agent message, or that a
	// system note is about.
	App   string `json:"app,omitempty"`
	AppID string `json:"app_id,omitempty"`
	MID   string `json:"mid,omitempty"`
	Text  string `json:"text,omitempty"`
	// QuickReply and Postback are the payloads of a tapped quick reply or
	// button.
	QuickReply string `json:"quick_reply,omitempty"`
	Postback   string `json:"postback,omitempty"`
	// QuickReplies and Buttons are what a bot or agent message offers.
	QuickReplies []Choice `json:"quick_replies,omitempty"`
	Buttons      []Choice `json:"buttons,omitempty"`
	// Channel says how the bot received a user message: "messaging" or
	// "standby".
	Channel string `json:"channel,omitempty"`
	// Media is an image, video, audio or file sent by URL.
	Media *Media `json:"media,omitempty"`
	// Cards are the cards of a generic template, in carousel order.
	Cards []Card `json:"cards,omitempty"`
}

// Media is a file a message carries, by URL.
type Media struct {
	// Type is image, video, audio or file.
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Card is one card of a generic template.
type Card struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	// URL is what tapping the card opens (its default_action).
	URL     string   `json:"url,omitempty"`
	Buttons []Choice `json:"buttons,omitempty"`
}

// Choice is a quick reply or a button offered to the user.
type Choice struct {
	Type    string `json:"type,omitempty"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Thread is a conversation as the JSON API shows it.
type Thread struct {
	User string `json:"user"`
	// Name is the user's name, as the User Profile API gives it.
	Name string `json:"name"`
	// Owner is "bot", an agent app's name, or "idle".
	Owner      string    `json:"owner"`
	OwnerAppID string    `json:"owner_app_id,omitempty"`
	OwnerSince time.Time `json:"owner_since,omitzero"`
	// Typing names the app whose typing indicator shows, if any.
	Typing string    `json:"typing,omitempty"`
	Seen   time.Time `json:"seen,omitzero"`
	Items  []Item    `json:"items"`
}

// Log entry kinds.
const (
	LogWebhook = "webhook" // a webhook delivered to the gateway
	LogGraph   = "graph"   // a Graph API call the gateway made
	LogReport  = "report"  // what the gateway did with an event
	LogAgent   = "agent"   // something an agent app did or was told
)

// LogEntry is one line of the inspector.
type LogEntry struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	User    string    `json:"user,omitempty"`
	Summary string    `json:"summary"`
	// Error is set when the webhook, call or action failed.
	Error string `json:"error,omitempty"`
	// Echo marks what concerns a platform echo (the copy of a message the
	// Page sent): its webhook and the gateway's report of it.
	Echo    bool        `json:"echo,omitempty"`
	Webhook *WebhookLog `json:"webhook,omitempty"`
	Graph   *GraphLog   `json:"graph,omitempty"`
	Report  *ReportLog  `json:"report,omitempty"`
}

// WebhookLog is a webhook the emulator POSTed to the gateway.
type WebhookLog struct {
	// Channel is "messaging" or "standby"; Event the event's kind.
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Body    json.RawMessage `json:"body"`
	// Status is the gateway's HTTP status (0 when the request failed).
	Status   int    `json:"status"`
	Response string `json:"response,omitempty"`
}

// GraphLog is a Graph API call and the emulator's answer. The access
// token and the appsecret proof are never recorded.
type GraphLog struct {
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Params   json.RawMessage `json:"params,omitempty"`
	Status   int             `json:"status"`
	Response json.RawMessage `json:"response"`
}

// ReportLog is a gateway.Report as the inspector shows it.
type ReportLog struct {
	Kind    string       `json:"kind"`
	Standby bool         `json:"standby"`
	Text    string       `json:"text,omitempty"`
	Rules   []string     `json:"rules"`
	Trace   []TraceLine  `json:"trace,omitempty"`
	Actions []ActionLine `json:"actions,omitempty"`
	Owner   string       `json:"owner,omitempty"`
	// Paused is true when the bot was paused for the user
	// (handover.pause_on_human) as the rules were evaluated.
	Paused bool   `json:"paused,omitempty"`
	Note   string `json:"note,omitempty"`
}

// TraceLine says why one rule did or did not fire.
type TraceLine struct {
	Rule   string `json:"rule"`
	Fired  bool   `json:"fired"`
	Reason string `json:"reason,omitempty"`
}

// ActionLine is one action the gateway ran.
type ActionLine struct {
	Kind   string         `json:"kind"`
	Fields map[string]any `json:"fields,omitempty"`
	Error  string         `json:"error,omitempty"`
}

func reportLog(r gateway.Report) *ReportLog {
	out := &ReportLog{Kind: r.Kind, Standby: r.Standby, Text: r.Text, Rules: r.Rules, Owner: r.Owner, Paused: r.Paused, Note: r.Note}
	if out.Rules == nil {
		out.Rules = []string{}
	}
	for _, t := range r.Trace {
		out.Trace = append(out.Trace, TraceLine{Rule: t.Rule, Fired: t.Fired, Reason: t.Reason})
	}
	for _, a := range r.Actions {
		out.Actions = append(out.Actions, ActionLine{Kind: a.Kind, Fields: a.Fields, Error: a.Error})
	}
	return out
}

func (r *ReportLog) firstError() string {
	for _, a := range r.Actions {
		if a.Error != "" {
			return a.Kind + ": " + a.Error
		}
	}
	return ""
}

// Change is one update pushed to the page over Server-Sent Events: a
// thread's new state, a new or updated inspector entry (same Seq as
// before), or the rules information. Seq orders changes: a page that loaded
// the State ignores changes whose Seq is not above State.Seq.
type Change struct {
	Seq    int64     `json:"seq"`
	Thread *Thread   `json:"thread,omitempty"`
	Log    *LogEntry `json:"log,omitempty"`
	// Rules is Options.RulesInfo's new value, after RulesChanged.
	Rules any `json:"rules,omitempty"`
	// Profile is the Page's Messenger profile after the bot changed it.
	Profile *messenger.Profile `json:"profile,omitempty"`
}

// State is everything the page shows.
type State struct {
	Seq      int64      `json:"seq"`
	PageID   string     `json:"page_id"`
	BotAppID string     `json:"bot_app_id"`
	Apps     []App      `json:"apps"`
	Rules    any        `json:"rules,omitempty"`
	Threads  []Thread   `json:"threads"`
	Log      []LogEntry `json:"log"`
	// Profile is the Page's Messenger profile: Get Started, greeting, ice
	// breakers, persistent menu, as the bot set it.
	Profile messenger.Profile `json:"profile"`
}

// The methods below must be called with e.mu held.

// nextSeq numbers changes so that the page can tell which it has seen.
func (e *Emulator) nextSeq() int64 {
	e.seq++
	return e.seq
}

// timestamp returns the time of a new event in milliseconds, strictly after
// the previous one: the gateway tells handover events apart by timestamp.
func (e *Emulator) timestamp() int64 {
	ts := e.now().UnixMilli()
	if ts <= e.lastTS {
		ts = e.lastTS + 1
	}
	e.lastTS = ts
	return ts
}

// thread returns the user's thread, creating it (owned by the bot) when
// create is set; nil when it does not exist or there are too many.
func (e *Emulator) thread(user string, create bool) *thread {
	t := e.threads[user]
	if t != nil || !create || len(e.threads) >= maxThreads {
		return t
	}
	now := e.now()
	t = &thread{user: user, owner: e.opt.BotAppID, ownerSince: now, lastActivity: now}
	e.threads[user] = t
	e.order = append(e.order, user)
	return t
}

// ownerOf returns the thread's owner, making the thread idle first when
// the owner's control has expired.
func (e *Emulator) ownerOf(t *thread) string {
	if t.owner != "" && e.now().Sub(t.lastActivity) >= ownershipTimeout {
		t.owner = ""
		t.ownerSince = e.now()
	}
	return t.owner
}

func (e *Emulator) setOwner(t *thread, owner string) {
	t.owner = owner
	t.ownerSince = e.now()
}

// addItem appends a line to a thread and publishes the thread.
func (e *Emulator) addItem(t *thread, it Item) Item {
	it.Seq = e.nextSeq()
	it.Time = e.now()
	t.items = append(t.items, it)
	if len(t.items) > maxThreadItems {
		t.items = append([]Item(nil), t.items[len(t.items)-maxThreadItems:]...)
	}
	e.publishThread(t)
	return it
}

// publishThread tells the pages that a thread changed.
func (e *Emulator) publishThread(t *thread) {
	th := e.snapshot(t)
	e.publish(Change{Seq: e.nextSeq(), Thread: &th})
}

// addLog appends an inspector entry and publishes it.
func (e *Emulator) addLog(l LogEntry) {
	if l.Seq == 0 {
		l.Seq = e.nextSeq()
	}
	l.Time = e.now()
	e.logs = append(e.logs, l)
	if len(e.logs) > maxLogEntries {
		e.logs = append([]LogEntry(nil), e.logs[len(e.logs)-maxLogEntries:]...)
	}
	e.publish(Change{Seq: e.nextSeq(), Log: &l})
}

// publish sends a change to every open page. A page too slow to keep up is
// disconnected; it reconnects and reloads the whole state.
func (e *Emulator) publish(c Change) {
	for ch := range e.subs {
		select {
		case ch <- c:
		default:
			close(ch)
			delete(e.subs, ch)
		}
	}
}

func (e *Emulator) snapshot(t *thread) Thread {
	owner := e.ownerOf(t)
	u := userProfileOf(t.user)
	th := Thread{User: t.user, Name: u.FirstName + " " + u.LastName,
		Owner: e.appName(owner), OwnerAppID: owner, OwnerSince: t.ownerSince,
		Seen: t.seen, Items: append([]Item{}, t.items...)}
	if t.typing != "" && e.now().Sub(t.typingSince) < typingTimeout {
		th.Typing = e.appName(t.typing)
	}
	return th
}

func (e *Emulator) state(rules any) State {
	s := State{Seq: e.seq, PageID: e.opt.PageID, BotAppID: e.opt.BotAppID, Apps: e.agentApps(),
		Rules: rules, Threads: []Thread{}, Log: append([]LogEntry{}, e.logs...), Profile: e.profile}
	for _, u := range e.order {
		s.Threads = append(s.Threads, e.snapshot(e.threads[u]))
	}
	return s
}

// newMID returns a fresh message ID in Messenger's "m_…" form.
func newMID() string {
	return "m_" + rand.Text()
}
