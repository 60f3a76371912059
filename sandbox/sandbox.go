// Package sandbox is an emulator of the Messenger Platform that threadgate
// runs against when no PAGE_ACCESS_TOKEN is set, so that a person can try
// the bot and the handover without a Facebook account.
//
// The real code path runs: the gateway's Graph API client calls the
// emulator's Graph endpoints over HTTP, and the emulator delivers events to
// the gateway's real POST /webhook, signed with X-Hub-Signature-256. Next to
// the bot (the gateway's app) the emulator plays the user and the human-agent
// apps named in the rules file, and it serves a playground page at / and a
// JSON API under /sandbox/api to drive them.
//
// Thread ownership follows Conversation Routing with the bot as the Page's
// default application: a thread starts owned by the bot, only the owner may
// send, a pass moves ownership to the target app, a take moves it to the
// taker, a release makes the thread idle (the next user message goes to the
// bot), and ownership expires after 24 hours without a user message.
//
// # Graph API
//
// Mounted under /sandbox/graph/v26.0 (see GraphURL): POST /me/messages
// (text, quick replies, a button template, a generic template, an image,
// video, audio or file by URL, a sender_action alone, the Send API's
// thread_control), POST /me/pass_thread_control,
// /me/take_thread_control, /me/request_thread_control,
// /me/release_thread_control, GET /me/thread_owner?recipient=PSID, GET,
// POST and DELETE /me/messenger_profile and GET /PSID (the user's profile),
// answered as Facebook answers them, errors included. Every call needs the
// access token of Options.Token and, with an app secret, a valid
// appsecret_proof.
//
// # JSON API
//
// The JSON API plays the user and the agent apps, for the playground page
// and for curl. Bodies are JSON; errors are {"error": "what is wrong"}, with
// the Graph code and subcode when the platform refused the action (409 when
// the app does not own the thread). The routes that make the platform send
// a webhook answer once the gateway has answered it, with its status under
// "webhook"; they answer 502 when the gateway refused it or could not be
// reached.
//
//	POST /sandbox/api/users/{psid}/messages   {"text": "hello"}
//	                                          {"quick_reply": "PAYLOAD", "text": "Title"}  (text optional)
//	    The user writes, or taps a quick reply. A new PSID starts a thread
//	    owned by the bot. → {"item": {…}, "channel": "messaging"|"standby", "webhook": {…}};
//	    the item carries its seq and time.
//	POST /sandbox/api/users/{psid}/postbacks  {"payload": "PAYLOAD", "title": "Title"}  (title optional)
//	    The user taps a postback button, Get Started, an ice breaker or a
//	    persistent menu item; the copy on standby has no payload.
//	POST /sandbox/api/agents/{app}/messages   {"user": "PSID", "text": "Hi, Anna here"}
//	    The agent app replies; it must own the thread, except the Page
//	    Inbox, which takes the thread first as on Facebook.
//	POST /sandbox/api/agents/{app}/done       {"user": "PSID", "metadata": "…"}  (metadata optional)
//	    The agent passes the thread back to the bot.
//	POST /sandbox/api/agents/{app}/take       {"user": "PSID", "metadata": "…"}
//	POST /sandbox/api/agents/{app}/request    {"user": "PSID", "metadata": "…"}
//	POST /sandbox/api/agents/{app}/release    {"user": "PSID"}
//	    {app} is an app's name from the rules file (e.g. zendesk) or its ID.
//	    → {"thread": {…}, "webhook": {…}}  (webhook only when one was sent)
//	GET  /sandbox/api/state                   every thread, the apps, the rules
//	                                          information and the inspector log
//	GET  /sandbox/api/conversations/{psid}    one thread: owner, typing, items
//	GET  /sandbox/api/users/{psid}            the user's name, as the User Profile API gives it
//	GET  /sandbox/api/events                  Server-Sent Events: "hello", then a
//	                                          "change" event (a Change) per update
package sandbox

import (
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/messenger"
)

// Defaults for Options fields left empty.
const (
	DefaultPageID   = "100000000000001"
	DefaultBotAppID = "1000000000000001"
	// GraphVersion is the Graph API version the emulator's URL names.
	GraphVersion = "v26.0"
	// PageInboxAppID is the Facebook Page Inbox's app ID. The emulator
	// always knows it as an agent app, named "page_inbox" unless the rules
	// file names it otherwise.
	PageInboxAppID = messenger.PageInboxAppID
)

// Limits that keep the emulator's memory bounded.
const (
	maxLogEntries    = 500
	maxThreadItems   = 200
	maxThreads       = 1000
	ownershipTimeout = 24 * time.Hour
	typingTimeout    = 20 * time.Second
)

// Options configures an Emulator.
type Options struct {
	// PageID is the emulated Page's ID (default DefaultPageID).
	PageID string
	// BotAppID is the gateway's own app ID in the sandbox (default
	// DefaultBotAppID); give the gateway the same value as APP_ID.
	BotAppID string
	// Token is the access token the Graph endpoints expect; a call with
	// another token is answered with Graph error 190.
	Token string
	// AppSecret signs the webhooks (X-Hub-Signature-256) and, when set,
	// every Graph call must carry a valid appsecret_proof.
	AppSecret []byte
	// Apps returns the rules file's apps (name → app ID); each of them can
	// act as the human-agent side; the Page Inbox always can. It is called
	// from several goroutines. Nil: only the Page Inbox.
	Apps func() map[string]string
	// WebhookURL is where webhooks are POSTed: the gateway's own /webhook,
	// e.g. http://127.0.0.1:8080/webhook.
	WebhookURL string
	// HTTPClient delivers webhooks (default: a client with a 10 s timeout).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives delivery failures (default: discard).
	Logger *slog.Logger
	// RulesInfo, if set, returns what the page shows about the rules in
	// force (hash, load time, last reload error); it is marshalled to JSON
	// as given.
	RulesInfo func() any
}

// Emulator is an emulated Messenger Platform: a Page, its users, the
// gateway's app and the agent apps.
type Emulator struct {
	opt  Options
	log  *slog.Logger
	http *http.Client
	now  func() time.Time

	mu      sync.Mutex
	seq     int64
	lastTS  int64
	threads map[string]*thread
	order   []string // PSIDs in creation order
	logs    []LogEntry
	subs    map[chan Change]struct{}
	profile messenger.Profile // the Page's Messenger profile (profile.go)
	closed  bool
	tail    chan struct{} // closed when the last queued webhook is delivered
}

// New returns an Emulator. Mount it on the gateway's router.
func New(o Options) *Emulator {
	if o.PageID == "" {
		o.PageID = DefaultPageID
	}
	if o.BotAppID == "" {
		o.BotAppID = DefaultBotAppID
	}
	e := &Emulator{opt: o, log: o.Logger, http: o.HTTPClient, now: o.Now,
		threads: map[string]*thread{}, subs: map[chan Change]struct{}{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.http == nil {
		e.http = &http.Client{Timeout: 10 * time.Second}
	}
	if e.now == nil {
		e.now = time.Now
	}
	done := make(chan struct{})
	close(done)
	e.tail = done
	return e
}

// Mount adds the emulator's routes to r: the Graph API under
// /sandbox/graph/{version}/, the JSON API under /sandbox/api/ (both listed
// in the package documentation), and the playground page at GET / with its
// files under /sandbox/static/.
func (e *Emulator) Mount(r gin.IRouter) {
	r.Any("/sandbox/graph/:version/*path", e.graph)
	e.mountAPI(r.Group("/sandbox/api"))
	e.mountPage(r)
}

// GraphURL returns the base URL, version included, that the gateway's Graph
// API client must use (GRAPH_API_URL) when the emulator is mounted on the
// server at base, e.g. "http://127.0.0.1:8080".
func (e *Emulator) GraphURL(base string) string {
	return strings.TrimRight(base, "/") + "/sandbox/graph/" + GraphVersion
}

// LocalURL returns the base URL at which the process itself reaches a server
// listening on addr (as given to --addr, or a listener's address): an
// unspecified or empty host becomes the loopback address. For example ":8080"
// gives "http://127.0.0.1:8080" and "[::]:8080" gives "http://[::1]:8080".
// The emulator's WebhookURL and the client's GraphURL are built on it.
func LocalURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "80"
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() == nil:
		host = "::1"
	case ip != nil && ip.IsUnspecified():
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// PageID returns the emulated Page's ID.
func (e *Emulator) PageID() string { return e.opt.PageID }

// BotAppID returns the gateway's app ID in the sandbox.
func (e *Emulator) BotAppID() string { return e.opt.BotAppID }

// Record adds what the gateway did with one event to the inspector. Give it
// to the gateway as Config.OnHandled.
func (e *Emulator) Record(r gateway.Report) {
	rep := reportLog(r)
	summary := "no rule fired"
	switch {
	case r.Note != "" && len(r.Rules) == 0:
		summary = r.Note
	case len(r.Rules) > 0:
		summary = "rule " + strings.Join(r.Rules, ", ") + " fired"
	}
	entry := LogEntry{Kind: LogReport, User: r.UserID, Summary: r.Kind + ": " + summary, Report: rep, Error: rep.firstError()}
	if r.Kind == "echo" && len(r.Rules) == 0 {
		// The platform's copy of a message the Page sent: named so that it
		// does not read like the echo rule, and grouped by the page.
		entry.Summary, entry.Echo = "platform echo of a sent message: no rule runs on echoes", true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addLog(entry)
}

// RulesChanged tells open pages to show Options.RulesInfo's new value;
// call it after each reload attempt of the rules file.
func (e *Emulator) RulesChanged() {
	if e.opt.RulesInfo == nil {
		return
	}
	info := e.opt.RulesInfo()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.publish(Change{Seq: e.nextSeq(), Rules: info})
}

// Close ends the event streams of open pages, so that a server shutdown does
// not wait for them; register it with http.Server.RegisterOnShutdown.
func (e *Emulator) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for ch := range e.subs {
		close(ch)
		delete(e.subs, ch)
	}
}

// App is an agent app the emulator knows: a name from the rules file's
// apps and its app ID.
type App struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// botName is what the page and the logs call the gateway's app.
const botName = "bot"

// agentApps returns the agent apps sorted by name: the rules file's apps
// plus the Page Inbox.
func (e *Emulator) agentApps() []App {
	var m map[string]string
	if e.opt.Apps != nil {
		m = e.opt.Apps()
	}
	var out []App
	inbox := false
	for name, id := range m {
		if id == e.opt.BotAppID {
			continue
		}
		inbox = inbox || id == PageInboxAppID
		out = append(out, App{Name: name, ID: id})
	}
	if !inbox {
		out = append(out, App{Name: "page_inbox", ID: PageInboxAppID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// findAgent resolves an agent app by name or ID.
func (e *Emulator) findAgent(nameOrID string) (App, bool) {
	for _, a := range e.agentApps() {
		if a.Name == nameOrID || a.ID == nameOrID {
			return a, true
		}
	}
	return App{}, false
}

// appName returns the name of an app ID: "bot", an agent's name, "idle"
// for no owner, or the ID itself.
func (e *Emulator) appName(id string) string {
	switch id {
	case "":
		return "idle"
	case e.opt.BotAppID:
		return botName
	}
	if a, ok := e.findAgent(id); ok {
		return a.Name
	}
	return id
}
