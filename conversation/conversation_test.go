package conversation

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"gopkg.in/yaml.v3"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	ourApp     = "1001"
	zendeskApp = "2006"
)

// settings are the settings of most cases: APP_ID set, rules loaded with
// one app, a platform that can look up owners and carry thread_control.
func settings(tweak ...func(*Settings)) Settings {
	s := Settings{
		AppID:           ourApp,
		RulesLoaded:     true,
		Apps:            map[string]string{"zendesk": zendeskApp},
		CanLookupOwner:  true,
		CanCarryControl: true,
		KeepTranscript:  true,
	}
	for _, f := range tweak {
		f(&s)
	}
	return s
}

func noAppID(s *Settings)    { s.AppID = "" }
func readsOwner(s *Settings) { s.ReadsOwner = true }
func noRules(s *Settings)    { s.RulesLoaded, s.Apps = false, nil }
func routing(s *Settings)    { s.Handover.Dialect = engine.DialectRouting }
func pause30m(s *Settings)   { s.Handover.PauseOnHuman = 30 * time.Minute }
func return2h(s *Settings)   { s.Handover.ReturnAfterIdle = 2 * time.Hour }
func policy(p engine.RequestPolicy) func(*Settings) {
	return func(s *Settings) { s.Handover.OnRequest = p }
}

func ev(kind EventKind, standby bool, app string) Event {
	e := Event{Kind: kind, Standby: standby, Object: "page", AppID: app, Rules: engine.Event{PageID: "p1", SenderID: "u1"}}
	if kind == EventMessage {
		e.Rules.Text = "hi"
	}
	return e
}

// at is t0 moved by d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// show renders an effect for comparison; times are shown relative to t0.
func show(e Effect) string {
	switch e := e.(type) {
	case RunRules:
		in := e.Input
		return fmt.Sprintf("rules %s standby=%v app=%q owner=%q paused=%v transcript=%q carry=%v",
			in.Event.Kind, in.Event.Standby, in.Event.AppID, in.State.Owner, in.State.Paused, in.State.Transcript, e.CarryControl)
	case RunStep:
		s := fmt.Sprintf("step %s %s %+v", e.Purpose, e.Step.Kind(), e.Step.Effect())
		if e.Then.Kind != "" {
			s += fmt.Sprintf(" then %s object=%s", e.Then.Kind, e.Then.Object)
		}
		return s
	case LookupOwner:
		return "lookup then " + string(e.Then.Kind)
	case Watch:
		return "watch " + e.Since.Sub(t0).String()
	case Observe:
		return "observe " + e.Target + " " + e.Direction
	case Note:
		s := fmt.Sprintf("note %s %s", e.Level, e.Message)
		if e.Report != "" {
			s += " / " + e.Report
		}
		return s
	}
	return fmt.Sprintf("unknown effect %T", e)
}

func showAll(effects []Effect) []string {
	out := []string{}
	for _, e := range effects {
		out = append(out, show(e))
	}
	return out
}

func check(t *testing.T, gotState, wantState State, gotEffects []Effect, wantEffects []string) {
	t.Helper()
	if !reflect.DeepEqual(gotState, wantState) {
		t.Errorf("state:\n got %+v\nwant %+v", gotState, wantState)
	}
	if got := showAll(gotEffects); !reflect.DeepEqual(got, wantEffects) {
		t.Errorf("effects:\n got %q\nwant %q", got, wantEffects)
	}
}

const noRule = "note DEBUG this kind of event triggers no rule / this kind of event triggers no rule"

func TestHandle(t *testing.T) {
	owned := func(o Owner, since time.Duration) State {
		return State{Owner: o, OwnerSince: at(since), Object: "page"}
	}
	userSaid := func(st State) State {
		st.LastUserMessage, st.LastActivity = t0, t0
		return st
	}
	tests := []struct {
		name     string
		st       State
		ev       Event
		s        Settings
		want     State
		wantEffs []string
	}{
		// A user's messages and postbacks: the channel tells the owner.
		{
			name: "a message on the main channel makes us the owner and joins the transcript",
			ev:   ev(EventMessage, false, ""), s: settings(),
			want:     State{Owner: Self, OwnerSince: t0, LastUserMessage: t0, LastActivity: t0, Object: "page", Transcript: []string{"hi"}},
			wantEffs: []string{`rules message standby=false app="" owner="self" paused=false transcript=["hi"] carry=false`},
		},
		{
			name: "a message on standby while we owned the thread: another app owns it",
			st:   owned(Self, -time.Hour), ev: ev(EventMessage, true, ""), s: settings(),
			want:     userSaid(owned(Other, 0)),
			wantEffs: []string{"watch 0s", `rules message standby=true app="" owner="other" paused=false transcript=[] carry=false`},
		},
		{
			name: "a message on standby while a known app owns it changes nothing of the owner",
			st:   owned(AppOwner(zendeskApp), -time.Hour), ev: ev(EventMessage, true, ""), s: settings(),
			want:     userSaid(owned(AppOwner(zendeskApp), -time.Hour)),
			wantEffs: []string{`rules message standby=true app="" owner="zendesk" paused=false transcript=[] carry=false`},
		},
		{
			name: "a postback on the main channel of an idle thread: ours again, no transcript",
			st:   owned(Idle, -time.Hour), ev: ev(EventPostback, false, ""), s: settings(),
			want:     userSaid(owned(Self, 0)),
			wantEffs: []string{`rules postback standby=false app="" owner="self" paused=false transcript=[] carry=false`},
		},
		{
			name: "the routing dialect lets a pass ride on the message",
			st:   owned(Self, -time.Hour), ev: ev(EventMessage, false, ""), s: settings(routing),
			want:     State{Owner: Self, OwnerSince: at(-time.Hour), LastUserMessage: t0, LastActivity: t0, Object: "page", Transcript: []string{"hi"}},
			wantEffs: []string{`rules message standby=false app="" owner="self" paused=false transcript=["hi"] carry=true`},
		},
		{
			name: "no carrying on a platform that cannot",
			st:   owned(Self, -time.Hour), ev: ev(EventPostback, false, ""), s: settings(routing, func(s *Settings) { s.CanCarryControl = false }),
			want:     userSaid(owned(Self, -time.Hour)),
			wantEffs: []string{`rules postback standby=false app="" owner="self" paused=false transcript=[] carry=false`},
		},
		{
			name: "paused: the rules read it",
			st:   State{Owner: Self, OwnerSince: at(-time.Hour), PausedUntil: at(time.Minute), Object: "page"}, ev: ev(EventPostback, false, ""), s: settings(),
			want:     State{Owner: Self, OwnerSince: at(-time.Hour), PausedUntil: at(time.Minute), LastUserMessage: t0, LastActivity: t0, Object: "page"},
			wantEffs: []string{`rules postback standby=false app="" owner="self" paused=true transcript=[] carry=false`},
		},
		{
			name: "no rules loaded: the owner is learned, no rule runs, no transcript",
			ev:   ev(EventMessage, false, ""), s: settings(noRules),
			want:     userSaid(owned(Self, 0)),
			wantEffs: []string{"note WARN event not handled: no rules loaded / no rules loaded"},
		},

		// Echoes: who wrote, and who owns the thread.
		{
			name: "our own echo changes nothing but the object",
			st:   owned(Self, -time.Hour), ev: ev(EventEcho, false, ourApp), s: settings(pause30m),
			want:     owned(Self, -time.Hour),
			wantEffs: []string{noRule},
		},
		{
			name: "a person's echo pauses the bot (pause_on_human)",
			st:   owned(Self, -time.Hour), ev: ev(EventEcho, false, messenger.PageInboxAppID), s: settings(pause30m),
			want:     State{Owner: Self, OwnerSince: at(-time.Hour), LastActivity: t0, PausedUntil: at(30 * time.Minute), Object: "page"},
			wantEffs: []string{"note INFO a person wrote to the user: the bot is paused for them", noRule},
		},
		{
			name: "a pause never shortens a longer one",
			st:   State{Owner: Self, OwnerSince: at(-time.Hour), PausedUntil: at(time.Hour), Object: "page"}, ev: ev(EventEcho, false, ""), s: settings(pause30m),
			want:     State{Owner: Self, OwnerSince: at(-time.Hour), LastActivity: t0, PausedUntil: at(time.Hour), Object: "page"},
			wantEffs: []string{"note INFO a person wrote to the user: the bot is paused for them", noRule},
		},
		{
			name: "a person's echo without pause_on_human only counts as activity",
			st:   owned(Self, -time.Hour), ev: ev(EventEcho, false, messenger.PageInboxAppID), s: settings(),
			want:     State{Owner: Self, OwnerSince: at(-time.Hour), LastActivity: t0, Object: "page"},
			wantEffs: []string{noRule},
		},
		{
			name: "no pause without rules",
			st:   owned(Self, -time.Hour), ev: ev(EventEcho, false, messenger.PageInboxAppID), s: settings(noRules, pause30m),
			want:     State{Owner: Self, OwnerSince: at(-time.Hour), LastActivity: t0, Object: "page"},
			wantEffs: []string{noRule},
		},
		{
			name: "an echo on standby without app_id: some other app owns the thread",
			st:   owned(Self, -time.Hour), ev: ev(EventEcho, true, ""), s: settings(),
			want:     State{Owner: Other, OwnerSince: t0, LastActivity: t0, Object: "page"},
			wantEffs: []string{"watch 0s", noRule},
		},
		{
			name: "an echo on standby without app_id keeps a known other owner",
			st:   owned(AppOwner(zendeskApp), -time.Hour), ev: ev(EventEcho, true, ""), s: settings(),
			want:     State{Owner: AppOwner(zendeskApp), OwnerSince: at(-time.Hour), LastActivity: t0, Object: "page"},
			wantEffs: []string{noRule},
		},
		{
			name: "an echo on standby names the app that owns the thread",
			st:   owned(Other, -time.Hour), ev: ev(EventEcho, true, zendeskApp), s: settings(),
			want:     State{Owner: AppOwner(zendeskApp), OwnerSince: t0, LastActivity: t0, Object: "page"},
			wantEffs: []string{"watch 0s", noRule},
		},

		// Handover webhooks.
		{
			name: "a pass to us is a hand-back: ours, and the pause ends",
			st:   State{Owner: AppOwner(zendeskApp), OwnerSince: at(-time.Hour), PausedUntil: at(time.Hour), Object: "page"}, ev: ev(EventPass, false, ourApp), s: settings(),
			want:     owned(Self, 0),
			wantEffs: []string{"observe self returned", `rules pass_thread_control standby=false app="1001" owner="self" paused=false transcript=[] carry=false`},
		},
		{
			name: "a pass to another app is passed elsewhere, seen by standby rules",
			st:   owned(Other, -time.Hour), ev: ev(EventPass, true, zendeskApp), s: settings(),
			want:     owned(AppOwner(zendeskApp), 0),
			wantEffs: []string{"watch 0s", "observe other passed_elsewhere", `rules pass_thread_control standby=true app="2006" owner="zendesk" paused=false transcript=[] carry=false`},
		},
		{
			name: "without APP_ID a pass on the main channel is a hand-back",
			st:   owned(Other, -time.Hour), ev: ev(EventPass, false, "555"), s: settings(noAppID),
			want:     owned(Self, 0),
			wantEffs: []string{"observe self returned", `rules pass_thread_control standby=false app="555" owner="self" paused=false transcript=[] carry=false`},
		},
		{
			name: "without APP_ID a pass on standby went elsewhere",
			st:   owned(Self, -time.Hour), ev: ev(EventPass, true, "555"), s: settings(noAppID),
			want:     owned(AppOwner("555"), 0),
			wantEffs: []string{"watch 0s", "observe other passed_elsewhere", `rules pass_thread_control standby=true app="555" owner="555" paused=false transcript=[] carry=false`},
		},
		{
			name: "another app took the thread",
			st:   owned(Self, -time.Hour), ev: ev(EventTake, true, zendeskApp), s: settings(),
			want:     owned(AppOwner(zendeskApp), 0),
			wantEffs: []string{"watch 0s", "observe other taken", `rules take_thread_control standby=true app="2006" owner="zendesk" paused=false transcript=[] carry=false`},
		},
		{
			name: "a take naming us makes us the owner",
			st:   owned(Other, -time.Hour), ev: ev(EventTake, false, ourApp), s: settings(),
			want:     owned(Self, 0),
			wantEffs: []string{"observe other taken", `rules take_thread_control standby=false app="1001" owner="self" paused=false transcript=[] carry=false`},
		},

		// Requests and the request policy.
		{
			name: "on_request: rules lets the rules decide",
			st:   owned(Self, -time.Hour), ev: ev(EventRequest, false, zendeskApp), s: settings(),
			want:     owned(Self, -time.Hour),
			wantEffs: []string{"observe other requested", `rules request_thread_control standby=false app="2006" owner="self" paused=false transcript=[] carry=false`},
		},
		{
			name: "on_request: ignore",
			st:   owned(Self, -time.Hour), ev: ev(EventRequest, false, zendeskApp), s: settings(policy(engine.RequestIgnore)),
			want:     owned(Self, -time.Hour),
			wantEffs: []string{"observe other requested", "note INFO event handled / request ignored (handover.on_request: ignore)"},
		},
		{
			name: "on_request: grant passes the thread with the pass_thread_control action",
			st:   owned(Self, -time.Hour), ev: ev(EventRequest, false, zendeskApp), s: settings(policy(engine.RequestGrant)),
			want: owned(Self, -time.Hour),
			wantEffs: []string{"observe other requested",
				"note DEBUG granting the request (handover.on_request: grant) / request granted (handover.on_request: grant)",
				"step grant pass_thread_control {Control:pass Target:zendesk AppID:2006 Metadata:threadgate: request granted (handover.on_request: grant) SendsMessage:false}",
			},
		},
		{
			name: "on_request: grant to an app not in the file names it by ID",
			st:   owned(Self, -time.Hour), ev: ev(EventRequest, false, "555"), s: settings(policy(engine.RequestGrant)),
			want: owned(Self, -time.Hour),
			wantEffs: []string{"observe other requested",
				"note DEBUG granting the request (handover.on_request: grant) / request granted (handover.on_request: grant)",
				"step grant pass_thread_control {Control:pass Target:555 AppID:555 Metadata:threadgate: request granted (handover.on_request: grant) SendsMessage:false}",
			},
		},
		{
			name: "on_request: grant without a requesting app grants nothing",
			st:   owned(Self, -time.Hour), ev: ev(EventRequest, false, ""), s: settings(policy(engine.RequestGrant)),
			want:     owned(Self, -time.Hour),
			wantEffs: []string{"observe other requested", "note WARN request_thread_control without requested_owner_app_id: not granted / request without a requesting app: nothing to grant"},
		},

		// The owner lookup.
		{
			name: "a rule reads an unknown owner: ask the platform first",
			ev:   ev(EventRequest, false, zendeskApp), s: settings(readsOwner),
			want:     State{OwnerLookupAt: t0, Object: "page"},
			wantEffs: []string{"observe other requested", "lookup then request_thread_control"},
		},
		{
			name: "no lookup within a minute of the last",
			st:   State{OwnerLookupAt: at(-30 * time.Second)}, ev: ev(EventRequest, false, zendeskApp), s: settings(readsOwner),
			want:     State{OwnerLookupAt: at(-30 * time.Second), Object: "page"},
			wantEffs: []string{"observe other requested", `rules request_thread_control standby=false app="2006" owner="" paused=false transcript=[] carry=false`},
		},
		{
			name: "a lookup again after a minute",
			st:   State{OwnerLookupAt: at(-time.Minute)}, ev: ev(EventRequest, false, zendeskApp), s: settings(readsOwner),
			want:     State{OwnerLookupAt: t0, Object: "page"},
			wantEffs: []string{"observe other requested", "lookup then request_thread_control"},
		},
		{
			name: "no lookup when no rule reads the owner",
			ev:   ev(EventRequest, false, zendeskApp), s: settings(),
			want:     State{Object: "page"},
			wantEffs: []string{"observe other requested", `rules request_thread_control standby=false app="2006" owner="" paused=false transcript=[] carry=false`},
		},
		{
			name: "no lookup on a platform that cannot",
			ev:   ev(EventRequest, false, zendeskApp), s: settings(readsOwner, func(s *Settings) { s.CanLookupOwner = false }),
			want:     State{Object: "page"},
			wantEffs: []string{"observe other requested", `rules request_thread_control standby=false app="2006" owner="" paused=false transcript=[] carry=false`},
		},

		// The platform's 24-hour idle expiry.
		{
			name: "an owner without a user message for 24h: the thread is idle",
			st:   owned(AppOwner(zendeskApp), -25*time.Hour), ev: ev(EventRequest, false, zendeskApp), s: settings(readsOwner),
			want:     owned(AppOwner(zendeskApp), -25*time.Hour),
			wantEffs: []string{"observe other requested", `rules request_thread_control standby=false app="2006" owner="idle" paused=false transcript=[] carry=false`},
		},

		// The return timer (return_after_idle).
		{
			name: "return due, but return_after_idle is off",
			st:   owned(AppOwner(zendeskApp), -3*time.Hour), ev: Event{Kind: EventReturnDue}, s: settings(),
			want: owned(AppOwner(zendeskApp), -3*time.Hour),
		},
		{
			name: "return due, but no rules are loaded",
			st:   owned(AppOwner(zendeskApp), -3*time.Hour), ev: Event{Kind: EventReturnDue}, s: settings(return2h, noRules),
			want: owned(AppOwner(zendeskApp), -3*time.Hour),
		},
		{
			name: "return due, but the thread is back with us",
			st:   owned(Self, -3*time.Hour), ev: Event{Kind: EventReturnDue}, s: settings(return2h),
			want: owned(Self, -3*time.Hour),
		},
		{
			name: "return due, but someone wrote since: watch again",
			st:   State{Owner: AppOwner(zendeskApp), OwnerSince: at(-3 * time.Hour), LastActivity: at(-time.Hour)}, ev: Event{Kind: EventReturnDue}, s: settings(return2h),
			want:     State{Owner: AppOwner(zendeskApp), OwnerSince: at(-3 * time.Hour), LastActivity: at(-time.Hour)},
			wantEffs: []string{"watch -1h0m0s"},
		},
		{
			name: "return due, and the last failed try was less than a full wait ago",
			st:   State{Owner: Other, OwnerSince: at(-5 * time.Hour), ReturnTriedAt: at(-time.Hour)}, ev: Event{Kind: EventReturnDue}, s: settings(return2h),
			want:     State{Owner: Other, OwnerSince: at(-5 * time.Hour), ReturnTriedAt: at(-time.Hour)},
			wantEffs: []string{"watch -1h0m0s"},
		},
		{
			name: "return due: take the thread back with the take_thread_control action",
			st:   State{Owner: AppOwner(zendeskApp), OwnerSince: at(-3 * time.Hour), Object: "instagram"}, ev: Event{Kind: EventReturnDue}, s: settings(return2h),
			want: State{Owner: AppOwner(zendeskApp), OwnerSince: at(-3 * time.Hour), Object: "instagram"},
			wantEffs: []string{
				"step return take_thread_control {Control:take Target: AppID: Metadata:threadgate: the bot took the thread back after 2h without messages (handover.return_after_idle) SendsMessage:false} then returned object=instagram",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, effs := Handle(tt.st, tt.ev, t0, tt.s)
			check(t, got, tt.want, effs, orEmpty(tt.wantEffs))
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// notOwner is the Graph API's answer to a call of an app that does not
// own the thread.
var notOwner = &messenger.GraphError{HTTPStatus: 400, Code: 10, Subcode: 2018300, Message: "another app is controlling this thread"}

func TestApply(t *testing.T) {
	rule := func(s actions.Step, err error) StepDone {
		return StepDone{Run: RunStep{Step: s, Purpose: PurposeRule}, Err: err}
	}
	reply := textStep(t)
	pass := actions.PassThreadControl("zendesk", zendeskApp, "m")
	take := actions.TakeThreadControl("")
	mine := State{Owner: Self, OwnerSince: at(-time.Hour)}
	theirs := State{Owner: AppOwner(zendeskApp), OwnerSince: at(-3 * time.Hour), PausedUntil: at(time.Hour)}
	returned := engine.Event{Kind: engine.KindReturned, Object: "page", PageID: "p1", SenderID: "u1"}
	lookup := LookupOwner{Then: engine.Event{Kind: engine.KindMessage, Text: "hi"}}
	tests := []struct {
		name     string
		st       State
		out      Outcome
		s        Settings
		want     State
		wantEffs []string
	}{
		{"a reply sent changes nothing", mine, rule(reply, nil), settings(), mine, nil},
		{"a reply refused for ownership: another app owns the thread", mine, rule(reply, fmt.Errorf("reply: %w", notOwner)), settings(),
			State{Owner: Other, OwnerSince: t0}, []string{"watch 0s"}},
		{"a reply failed otherwise changes nothing", mine, rule(reply, errors.New("timeout")), settings(), mine, nil},
		{"a pass: the app owns the thread", mine, rule(pass, nil), settings(),
			State{Owner: AppOwner(zendeskApp), OwnerSince: t0}, []string{"watch 0s", "observe zendesk pass"}},
		{"a take: ours, unpaused", theirs, rule(take, nil), settings(),
			State{Owner: Self, OwnerSince: t0}, []string{"observe self take"}},
		{"a release: idle", mine, rule(planned(t, "release_thread_control", "{}"), nil), settings(),
			State{Owner: Idle, OwnerSince: t0}, []string{"observe idle release"}},
		{"a request: counted, the owner stays", theirs, rule(planned(t, "request_thread_control", "{}"), nil), settings(),
			theirs, []string{"observe self request"}},
		{"a grant made", mine, StepDone{Run: RunStep{Step: pass, Purpose: PurposeGrant}}, settings(),
			State{Owner: AppOwner(zendeskApp), OwnerSince: t0},
			[]string{"watch 0s", "observe zendesk pass", "note INFO event handled"}},
		{"a grant refused for ownership", mine, StepDone{Run: RunStep{Step: pass, Purpose: PurposeGrant}, Err: notOwner}, settings(),
			State{Owner: Other, OwnerSince: t0}, []string{"watch 0s", "note ERROR granting the request failed"}},
		{"a return made: ours, unpaused, then the returned rules", theirs, StepDone{Run: RunStep{Step: take, Purpose: PurposeReturn, Then: returned}}, settings(return2h),
			State{Owner: Self, OwnerSince: t0},
			[]string{"observe self take", "note INFO idle thread taken back", `rules returned standby=false app="" owner="self" paused=false transcript=[] carry=false`}},
		{"a return failed: try again after a full wait", theirs, StepDone{Run: RunStep{Step: take, Purpose: PurposeReturn, Then: returned}, Err: notOwner}, settings(return2h),
			State{Owner: AppOwner(zendeskApp), OwnerSince: at(-3 * time.Hour), PausedUntil: at(time.Hour), ReturnTriedAt: t0},
			[]string{"watch 0s", "note ERROR taking an idle thread back failed / taking the idle thread back failed; will try again after return_after_idle"}},
		{"the lookup found no owner: idle", State{OwnerLookupAt: t0}, OwnerFound{Lookup: lookup}, settings(readsOwner),
			State{Owner: Idle, OwnerSince: t0, OwnerLookupAt: t0}, []string{`rules message standby=false app="" owner="idle" paused=false transcript=[] carry=false`}},
		{"the lookup found us", State{OwnerLookupAt: t0}, OwnerFound{Lookup: lookup, AppID: ourApp}, settings(readsOwner),
			State{Owner: Self, OwnerSince: t0, OwnerLookupAt: t0}, []string{`rules message standby=false app="" owner="self" paused=false transcript=[] carry=false`}},
		{"the lookup found another app", State{OwnerLookupAt: t0}, OwnerFound{Lookup: lookup, AppID: zendeskApp}, settings(readsOwner),
			State{Owner: AppOwner(zendeskApp), OwnerSince: t0, OwnerLookupAt: t0},
			[]string{"watch 0s", `rules message standby=false app="" owner="zendesk" paused=false transcript=[] carry=false`}},
		{"the lookup failed: the owner stays unknown, not asked again", State{OwnerLookupAt: t0}, OwnerFound{Lookup: lookup, Err: errors.New("timeout")}, settings(readsOwner),
			State{OwnerLookupAt: t0},
			[]string{"note WARN could not ask who owns the thread; rules read owner as unknown", `rules message standby=false app="" owner="" paused=false transcript=[] carry=false`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, effs := Apply(tt.st, tt.out, t0, tt.s)
			check(t, got, tt.want, effs, orEmpty(tt.wantEffs))
		})
	}
}

// textStep returns a reply step as the actions package plans it.
func textStep(t *testing.T) actions.Step {
	t.Helper()
	return planned(t, "reply", "hello")
}

// planned compiles and plans one action.
func planned(t *testing.T, kind, value string) actions.Step {
	t.Helper()
	spec, ok := actions.Lookup(kind)
	if !ok {
		t.Fatalf("no action %s", kind)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil || len(doc.Content) != 1 {
		t.Fatalf("%s: %q is not one YAML value: %v", kind, value, err)
	}
	a, errs := spec.Decode(doc.Content[0], nil)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", kind, errs)
	}
	s, err := a.Plan(&actions.Data{Text: "hi"})
	if err != nil || s == nil {
		t.Fatalf("%s: plan: %v", kind, err)
	}
	return s
}

func TestHumanEchoes(t *testing.T) {
	tests := []struct {
		name    string
		appID   string
		echo    string
		standby bool
		want    bool
	}{
		{"ours", ourApp, ourApp, false, false},
		{"page inbox", ourApp, messenger.PageInboxAppID, false, true},
		{"unknown app", ourApp, "555", false, true},
		{"no app_id", ourApp, "", false, true},
		{"no APP_ID: page inbox", "", messenger.PageInboxAppID, false, true},
		{"no APP_ID: instagram inbox", "", messenger.InstagramInboxAppID, false, true},
		{"no APP_ID: an app of the rules file", "", zendeskApp, false, true},
		{"no APP_ID: an unknown app (maybe us)", "", "555", false, false},
		{"no APP_ID: no app_id", "", "", false, false},
		{"no APP_ID: on standby", "", "555", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings(pause30m, func(s *Settings) { s.AppID = tt.appID })
			st, _ := Handle(State{Owner: Self}, ev(EventEcho, tt.standby, tt.echo), t0, s)
			if got := st.Paused(t0); got != tt.want {
				t.Errorf("paused after the echo = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckWatched(t *testing.T) {
	since := at(-3 * time.Hour)
	tests := []struct {
		name      string
		st        State
		s         Settings
		want      WatchVerdict
		wantQuiet time.Time
	}{
		{"back with us", State{Owner: Self, OwnerSince: since}, settings(return2h), Forget, time.Time{}},
		{"idle by now", State{Owner: Other, OwnerSince: at(-25 * time.Hour)}, settings(return2h), Forget, time.Time{}},
		{"someone wrote since", State{Owner: Other, OwnerSince: since, LastActivity: at(-time.Hour)}, settings(return2h), WatchAgain, at(-time.Hour)},
		{"return_after_idle is off", State{Owner: Other, OwnerSince: since}, settings(), Forget, time.Time{}},
		{"due", State{Owner: AppOwner(zendeskApp), OwnerSince: since}, settings(return2h), QueueReturn, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, quiet := CheckWatched(tt.st, since, t0, tt.s)
			if got != tt.want || !quiet.Equal(tt.wantQuiet) {
				t.Errorf("CheckWatched = %v, %v; want %v, %v", got, quiet, tt.want, tt.wantQuiet)
			}
		})
	}
}

func TestReturnWait(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    Settings
		want time.Duration
	}{
		{"off", settings(), IdleExpiry},
		{"on", settings(return2h), 2 * time.Hour},
		{"no rules", settings(return2h, noRules), IdleExpiry},
	} {
		if got := tt.s.ReturnWait(); got != tt.want {
			t.Errorf("%s: ReturnWait = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCalls(t *testing.T) {
	reply := planned(t, "reply", "hello")
	echo := planned(t, "echo", "'you said: '")
	typing := planned(t, "sender_action", "typing_on")
	pass := actions.PassThreadControl("zendesk", zendeskApp, "m")
	passNoApp := actions.PassThreadControl("ghost", "", "m")
	release := planned(t, "release_thread_control", "{}")
	take := actions.TakeThreadControl("")
	show := func(calls []Call) string {
		var parts []string
		for _, c := range calls {
			s := c.Step.Kind()
			if c.Carried != nil {
				s += "+" + c.Carried.Kind()
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " ")
	}
	tests := []struct {
		name  string
		steps []actions.Step
		carry bool
		want  string
	}{
		{"legacy: every step alone", []actions.Step{reply, pass}, false, "reply pass_thread_control"},
		{"routing: a pass rides on the reply", []actions.Step{reply, pass}, true, "reply+pass_thread_control"},
		{"routing: a release rides on an echo", []actions.Step{echo, release}, true, "echo+release_thread_control"},
		{"routing: a take never rides", []actions.Step{reply, take}, true, "reply take_thread_control"},
		{"routing: a pass with no message before it", []actions.Step{pass, reply}, true, "pass_thread_control reply"},
		{"routing: a typing indicator carries nothing", []actions.Step{typing, pass}, true, "sender_action pass_thread_control"},
		{"routing: the last message carries", []actions.Step{reply, reply, pass}, true, "reply reply+pass_thread_control"},
		{"routing: a pass to no app cannot ride", []actions.Step{reply, passNoApp}, true, "reply pass_thread_control"},
	}
	for _, tt := range tests {
		if got := show(Calls(tt.steps, tt.carry)); got != tt.want {
			t.Errorf("%s: Calls = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCurrentOwner(t *testing.T) {
	tests := []struct {
		name string
		st   State
		now  time.Time
		want Owner
	}{
		{"unknown stays unknown", State{}, t0, Unknown},
		{"idle stays idle", State{Owner: Idle, OwnerSince: t0}, at(48 * time.Hour), Idle},
		{"fresh owner", State{Owner: AppOwner("42"), OwnerSince: t0}, at(23 * time.Hour), AppOwner("42")},
		{"owner expires after 24h", State{Owner: AppOwner("42"), OwnerSince: t0}, at(24 * time.Hour), Idle},
		{"a user message restarts the 24h", State{Owner: AppOwner("42"), OwnerSince: t0, LastUserMessage: at(20 * time.Hour)}, at(30 * time.Hour), AppOwner("42")},
		{"our own thread expires too", State{Owner: Self, OwnerSince: t0, LastUserMessage: at(time.Hour)}, at(25 * time.Hour), Idle},
		{"an agent's message does not restart it", State{Owner: AppOwner("42"), OwnerSince: t0, LastActivity: at(20 * time.Hour)}, at(25 * time.Hour), Idle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.st.CurrentOwner(tt.now); got != tt.want {
				t.Errorf("CurrentOwner = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOwner(t *testing.T) {
	s := settings()
	tests := []struct {
		o                     Owner
		wantString, wantRules string
		wantOther             bool
	}{
		{Unknown, "", "", false},
		{Self, "self", "self", false},
		{Idle, "idle", "idle", false},
		{Other, "other", "other", true},
		{AppOwner(zendeskApp), zendeskApp, "zendesk", true},
		{AppOwner("555"), "555", "555", true},
		{AppOwner(""), "", "", false},
	}
	for _, tt := range tests {
		if got := tt.o.String(); got != tt.wantString {
			t.Errorf("%#v.String() = %q, want %q", tt.o, got, tt.wantString)
		}
		if got := s.OwnerForRules(tt.o); got != tt.wantRules {
			t.Errorf("OwnerForRules(%#v) = %q, want %q", tt.o, got, tt.wantRules)
		}
		if got := tt.o.HeldByOther(); got != tt.wantOther {
			t.Errorf("%#v.HeldByOther() = %v, want %v", tt.o, got, tt.wantOther)
		}
	}
}

func TestStateJSONRoundTrip(t *testing.T) {
	tests := []State{
		{},
		{Owner: Self, OwnerSince: t0},
		{
			Owner:           AppOwner(zendeskApp),
			OwnerSince:      at(-time.Hour),
			LastActivity:    at(-time.Minute),
			PausedUntil:     at(30 * time.Minute),
			Transcript:      []string{"hi", "é ✓ \"quoted\""},
			LastUserMessage: at(-2 * time.Minute),
			OwnerLookupAt:   at(-3 * time.Minute),
			ReturnTriedAt:   at(-4 * time.Minute),
			Object:          "instagram",
		},
		{Owner: Other, OwnerSince: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))},
	}
	for _, st := range tests {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", st, err)
		}
		var got State
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if !equalState(got, st) {
			t.Errorf("round trip of %+v gave %+v (JSON %s)", st, got, b)
		}
	}
	b, _ := json.Marshal(State{Owner: AppOwner("42"), OwnerSince: t0})
	if want := `{"owner":{"kind":"app","app_id":"42"},"owner_since":"2026-03-01T12:00:00Z"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

// equalState compares states, times by instant.
func equalState(a, b State) bool {
	times := func(s State) []time.Time {
		return []time.Time{s.OwnerSince, s.LastActivity, s.PausedUntil, s.LastUserMessage, s.OwnerLookupAt, s.ReturnTriedAt}
	}
	ta, tb := times(a), times(b)
	for i := range ta {
		if !ta[i].Equal(tb[i]) {
			return false
		}
	}
	return a.Owner == b.Owner && a.Object == b.Object && reflect.DeepEqual(a.Transcript, b.Transcript)
}

func TestAppendTranscript(t *testing.T) {
	long := strings.Repeat("é", 900)
	tests := []struct {
		name      string
		in        []string
		add       string
		wantLen   int
		wantFirst string
		wantLast  string
	}{
		{"first", nil, "hi", 1, "hi", "hi"},
		{"keeps order", []string{"a", "b"}, "c", 3, "a", "c"},
		{"at most ten", []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, "11", 10, "2", "11"},
		{"a long message is cut", []string{"a"}, long, 1, long[:2*MaxTranscriptRunes], long[:2*MaxTranscriptRunes]},
		{"old messages make room", []string{strings.Repeat("x", 500), "b"}, strings.Repeat("y", 400), 2, "b", strings.Repeat("y", 400)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendTranscript(append([]string(nil), tt.in...), tt.add)
			total := 0
			for _, m := range got {
				total += utf8.RuneCountInString(m)
			}
			if len(got) != tt.wantLen || got[0] != tt.wantFirst || got[len(got)-1] != tt.wantLast || total > MaxTranscriptRunes {
				t.Errorf("got %d messages (%d characters), first %.10q, last %.10q; want %d, first %.10q, last %.10q",
					len(got), total, got[0], got[len(got)-1], tt.wantLen, tt.wantFirst, tt.wantLast)
			}
		})
	}
}

func TestAppendBoundedKeepsTheLastNAndNeverWritesIntoItsArgument(t *testing.T) {
	tests := []struct {
		list []string
		s    string
		n    int
		want []string
	}{
		{nil, "a", 3, []string{"a"}},
		{[]string{"a", "b"}, "c", 3, []string{"a", "b", "c"}},
		{[]string{"a", "b", "c"}, "d", 3, []string{"b", "c", "d"}},
		{[]string{"a", "b", "c", "d"}, "e", 2, []string{"d", "e"}},
		{[]string{"a"}, "b", 1, []string{"b"}},
	}
	for _, tt := range tests {
		arg := make([]string, len(tt.list), len(tt.list)+5) // spare capacity an in-place append would use
		copy(arg, tt.list)
		got := appendBounded(arg, tt.s, tt.n)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("appendBounded(%q, %q, %d) = %q, want %q", tt.list, tt.s, tt.n, got, tt.want)
		}
		if spare := arg[:cap(arg)][len(arg)]; spare != "" {
			t.Errorf("appendBounded wrote %q into its argument's array", spare)
		}
	}
}

func TestFormatWait(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Hour:                      "2h",
		90 * time.Minute:                   "1h30m",
		45 * time.Second:                   "45s",
		time.Hour + 30*time.Second:         "1h0m30s",
		2*time.Hour + 400*time.Millisecond: "2h",
	} {
		if got := FormatWait(d); got != want {
			t.Errorf("FormatWait(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestKeepTranscript: the user's texts join the transcript only while the
// rules read it (Settings.KeepTranscript); otherwise none is kept, one left
// by an earlier rule set is dropped, and the rules see none.
func TestKeepTranscript(t *testing.T) {
	dropTranscript := func(s *Settings) { s.KeepTranscript = false }
	withText := func(kind EventKind, standby bool, text string) Event {
		e := ev(kind, standby, "")
		e.Rules.Text = text
		return e
	}
	tests := []struct {
		name       string
		before     []string
		ev         Event
		s          Settings
		want       []string
		wantInRule []string
	}{
		{"kept: a message joins", []string{"a"}, withText(EventMessage, false, "b"), settings(), []string{"a", "b"}, []string{"a", "b"}},
		{"kept: a postback does not join", []string{"a"}, withText(EventPostback, false, "Buy"), settings(), []string{"a"}, []string{"a"}},
		{"kept: a standby message does not join", []string{"a"}, withText(EventMessage, true, "b"), settings(), []string{"a"}, []string{"a"}},
		{"kept: a message without text does not join", []string{"a"}, withText(EventMessage, false, ""), settings(), []string{"a"}, []string{"a"}},
		{"not kept: a message does not join", nil, withText(EventMessage, false, "b"), settings(dropTranscript), nil, nil},
		{"not kept: an earlier transcript is dropped", []string{"a"}, withText(EventMessage, false, "b"), settings(dropTranscript), nil, nil},
		{"not kept: dropped on a postback too", []string{"a"}, withText(EventPostback, false, "Buy"), settings(dropTranscript), nil, nil},
		{"no rules loaded: left as it is", []string{"a"}, withText(EventMessage, false, "b"), settings(dropTranscript, noRules), []string{"a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := State{Owner: Self, OwnerSince: at(-time.Hour), Object: "page", Transcript: tt.before}
			got, effects := Handle(st, tt.ev, t0, tt.s)
			if !reflect.DeepEqual(got.Transcript, tt.want) {
				t.Errorf("transcript = %q, want %q", got.Transcript, tt.want)
			}
			var inRule []string
			for _, e := range effects {
				if run, ok := e.(RunRules); ok {
					inRule = run.Input.State.Transcript
				}
			}
			if !reflect.DeepEqual(inRule, tt.wantInRule) {
				t.Errorf("the rules read transcript %q, want %q", inRule, tt.wantInRule)
			}
			if len(tt.before) > 0 && tt.before[0] != "a" {
				t.Errorf("the transition wrote into the state's transcript: %q", tt.before)
			}
		})
	}
}

// TestHandleAllocations counts the allocations of a message's transition
// when the rules do not read the transcript: one for the effects and the
// event the rules read, one for the RunRules in its Effect. A regression
// shows as a count, not a time.
func TestHandleAllocations(t *testing.T) {
	s := settings(func(s *Settings) { s.KeepTranscript = false })
	st := State{Owner: Self, OwnerSince: at(-time.Hour), Object: "page"}
	e := ev(EventMessage, false, "")
	_, effects := Handle(st, e, t0, s)
	if got := showAll(effects); len(got) != 1 || !strings.HasPrefix(got[0], "rules message") {
		t.Fatalf("effects %q, want the rules run", got)
	}
	if n := testing.AllocsPerRun(100, func() { Handle(st, e, t0, s) }); n > 2 {
		t.Errorf("Handle made %v allocations, want at most 2", n)
	}
}

// TestEffectsOwnTheirEvents: two transitions' RunRules never share the
// event they point to.
func TestEffectsOwnTheirEvents(t *testing.T) {
	st := State{Owner: Self, OwnerSince: at(-time.Hour), Object: "page"}
	a, b := ev(EventMessage, false, ""), ev(EventMessage, false, "")
	a.Rules.Text, b.Rules.Text = "first", "second"
	_, ea := Handle(st, a, t0, settings())
	_, eb := Handle(st, b, t0, settings())
	ra, rb := ea[0].(RunRules), eb[0].(RunRules)
	if ra.Input.Event == rb.Input.Event || ra.Input.Event.Text != "first" || rb.Input.Event.Text != "second" {
		t.Errorf("events %p %q and %p %q", ra.Input.Event, ra.Input.Event.Text, rb.Input.Event, rb.Input.Event.Text)
	}
}
