package engine

import "time"

// RequestPolicy says what the gateway does when another app asks for a
// thread that threadgate owns (a request_thread_control event).
type RequestPolicy string

// Request policies (handover.on_request).
const (
	// RequestRules lets the rules with `event: request_thread_control`
	// decide; with none, the request is ignored. The default.
	RequestRules RequestPolicy = "rules"
	// RequestGrant passes the thread to the requesting app at once; no rule
	// runs.
	RequestGrant RequestPolicy = "grant"
	// RequestIgnore leaves the thread where it is; no rule runs.
	RequestIgnore RequestPolicy = "ignore"
)

// RequestPolicies lists the policies in documentation order.
var RequestPolicies = []RequestPolicy{RequestRules, RequestGrant, RequestIgnore}

// Dialect says how threadgate hands a thread over on a Page.
type Dialect string

// Handover dialects (handover.dialect, pages.NAME.dialect).
const (
	// DialectLegacy calls the Handover Protocol's Graph edges
	// (/me/pass_thread_control, /me/release_thread_control …). The default.
	DialectLegacy Dialect = "legacy"
	// DialectRouting hands the thread over with the Send API's
	// thread_control field of Conversation Routing, on the message the rule
	// sends just before the pass or release.
	DialectRouting Dialect = "routing"
)

// Dialects lists the dialects in documentation order.
var Dialects = []Dialect{DialectLegacy, DialectRouting}

// Page is a Page or Instagram professional account named in the rules
// file's pages. The rules file holds IDs only; tokens live in the
// environment or the pages file.
type Page struct {
	// Name is the page's name in the rules file (match: {page: NAME}).
	Name string
	// ID is the Page ID or Instagram account ID.
	ID string
	// Dialect is the page's own dialect; "" means Handover.Dialect.
	Dialect Dialect
}

// Handover holds the rules file's handover settings. The zero value is
// valid: no pause, no automatic return, requests decided by the rules,
// the legacy dialect, no named pages.
type Handover struct {
	// PauseOnHuman pauses the bot's rules for a user for this long after a
	// person (the Page Inbox, another app) wrote to them; 0: never.
	PauseOnHuman time.Duration
	// ReturnAfterIdle takes a thread back from another app after this long
	// without a message of the user or an agent; 0: never.
	ReturnAfterIdle time.Duration
	// OnRequest is the request policy; "" means RequestRules.
	OnRequest RequestPolicy
	// Dialect is the default dialect; "" means DialectLegacy.
	Dialect Dialect
	// Pages holds the named pages by ID.
	Pages map[string]Page
}

// Policy returns the request policy, the default filled in.
func (h Handover) Policy() RequestPolicy {
	if h.OnRequest == "" {
		return RequestRules
	}
	return h.OnRequest
}

// DialectFor returns the dialect of a Page: its own, else the file's,
// else DialectLegacy.
func (h Handover) DialectFor(pageID string) Dialect {
	if p, ok := h.Pages[pageID]; ok && p.Dialect != "" {
		return p.Dialect
	}
	if h.Dialect == "" {
		return DialectLegacy
	}
	return h.Dialect
}

// PageName returns the name a Page ID has in the rules file's pages, or
// "" when it has none.
func (h Handover) PageName(pageID string) string {
	return h.Pages[pageID].Name
}

// ReadsUser reports whether a template of any rule of the set reads the
// user's profile (.User), so that the gateway asks the User Profile API
// only for a rule set that needs it. It is computed when the set is built.
func (s *Set) ReadsUser() bool { return s.readsUser }

// ReadsTranscript reports whether a template of any rule of the set reads
// the user's last messages (.Transcript), so that the conversation keeps
// them only for a rule set that needs them. It is computed when the set is
// built.
func (s *Set) ReadsTranscript() bool { return s.readsTranscript }

// ReadsOwner reports whether any rule of the set reads the thread's owner
// (see Rule.ReadsOwner). It is computed when the set is built.
func (s *Set) ReadsOwner() bool { return s.readsOwner }
