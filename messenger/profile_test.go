package messenger

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/internal/fakegraph"
)

func TestClientProfileCalls(t *testing.T) {
	live := `{"data":[{"get_started":{"payload":"GET_STARTED"},
	  "greeting":[{"locale":"default","text":"Hi {{user_first_name}}"}],
	  "ice_breakers":[{"question":"Opening hours?","payload":"HOURS"}],
	  "persistent_menu":[{"locale":"default","composer_input_disabled":false,"call_to_actions":[{"type":"postback","title":"Talk to a person","payload":"AGENT"}]}]}]}`
	g := newGraph(t)
	g.Script(fakegraph.Match{}, body(live), body(`{"result":"success"}`), body(`{"result":"success"}`))
	c := client(g, nil, nil)
	ctx := context.Background()

	p, err := c.GetProfile(ctx, testPage, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{
		GetStarted:  &GetStarted{Payload: "GET_STARTED"},
		Greeting:    []Greeting{{Locale: "default", Text: "Hi {{user_first_name}}"}},
		IceBreakers: []IceBreakers{{Locale: "default", CallToActions: []IceBreaker{{Question: "Opening hours?", Payload: "HOURS"}}}},
		PersistentMenu: []PersistentMenu{{Locale: "default", CallToActions: []MenuItem{
			{Type: MenuPostback, Title: "Talk to a person", Payload: "AGENT"}}}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("GetProfile = %+v\nwant %+v", p, want)
	}
	if err := c.SetProfile(ctx, testPage, Profile{GetStarted: &GetStarted{Payload: "GO"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteProfileFields(ctx, testPage, []string{FieldCommands, FieldIceBreakers}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetProfile(ctx, testPage, Profile{}); !errors.Is(err, ErrEmptyProfile) {
		t.Errorf("SetProfile(empty) = %v, want ErrEmptyProfile", err)
	}
	got := g.Calls()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	if got[0].Method != http.MethodGet || got[0].Path != "/me/messenger_profile" ||
		got[0].Query.Get("fields") != "get_started,greeting,ice_breakers,persistent_menu,commands" {
		t.Errorf("GET = %+v", got[0])
	}
	if got[1].Method != http.MethodPost || got[1].Path != "/me/messenger_profile" {
		t.Errorf("POST = %+v", got[1])
	}
	jsonEqual(t, string(got[1].RawBody), `{"get_started":{"payload":"GO"}}`)
	if got[2].Method != http.MethodDelete || got[2].Path != "/me/messenger_profile" {
		t.Errorf("DELETE = %+v", got[2])
	}
	jsonEqual(t, string(got[2].RawBody), `{"fields":["commands","ice_breakers"]}`)
}

func TestClientProfileRetries(t *testing.T) {
	g := newGraph(t)
	g.Script(fakegraph.Match{}, graphErr(500, 2, 0, "t1"), body(`{"data":[]}`))
	p, err := client(g, nil, nil).GetProfile(context.Background(), testPage, []string{FieldGreeting})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, Profile{}) {
		t.Errorf("profile = %+v, want empty", p)
	}
	if n := len(g.Calls()); n != 2 {
		t.Errorf("%d requests, want 2 (one retry)", n)
	}
}

func menu(items ...MenuItem) []PersistentMenu {
	return []PersistentMenu{{Locale: DefaultLocale, CallToActions: items}}
}

func TestPlanProfile(t *testing.T) {
	agent := MenuItem{Type: MenuPostback, Title: "Talk to a person", Payload: "AGENT"}
	hours := MenuItem{Type: MenuPostback, Title: "Opening hours", Payload: "HOURS"}
	gs := &GetStarted{Payload: "GET_STARTED"}
	greetings := []Greeting{{Locale: "fr_FR", Text: "Bonjour"}, {Locale: DefaultLocale, Text: "Hello"}}
	tests := []struct {
		name       string
		want, live Profile
		prune      bool
		kinds      map[string]string
		set, del   []string
	}{
		{name: "both empty", kinds: map[string]string{}},
		{name: "all new", want: Profile{GetStarted: gs, PersistentMenu: menu(agent)},
			kinds: map[string]string{FieldGetStarted: ChangeAdd, FieldPersistentMenu: ChangeAdd},
			set:   []string{FieldGetStarted, FieldPersistentMenu}},
		{name: "equal", want: Profile{GetStarted: gs, PersistentMenu: menu(agent)}, live: Profile{GetStarted: gs, PersistentMenu: menu(agent)},
			kinds: map[string]string{FieldGetStarted: ChangeNone, FieldPersistentMenu: ChangeNone}},
		{name: "locale order does not matter", want: Profile{Greeting: greetings},
			live:  Profile{Greeting: []Greeting{greetings[1], greetings[0]}},
			kinds: map[string]string{FieldGreeting: ChangeNone}},
		{name: "item order matters", want: Profile{PersistentMenu: menu(agent, hours)}, live: Profile{PersistentMenu: menu(hours, agent)},
			kinds: map[string]string{FieldPersistentMenu: ChangeUpdate}, set: []string{FieldPersistentMenu}},
		{name: "removed without prune", want: Profile{GetStarted: gs}, live: Profile{GetStarted: gs, IceBreakers: []IceBreakers{{Locale: DefaultLocale}}},
			kinds: map[string]string{FieldGetStarted: ChangeNone, FieldIceBreakers: ChangeRemove}},
		{name: "removed with prune", want: Profile{GetStarted: gs}, live: Profile{GetStarted: gs, Commands: []Commands{{Locale: DefaultLocale}}}, prune: true,
			kinds: map[string]string{FieldGetStarted: ChangeNone, FieldCommands: ChangeRemove}, del: []string{FieldCommands}},
		{name: "changed payload", want: Profile{GetStarted: &GetStarted{Payload: "START"}}, live: Profile{GetStarted: gs},
			kinds: map[string]string{FieldGetStarted: ChangeUpdate}, set: []string{FieldGetStarted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := PlanProfile(tt.want, tt.live, tt.prune)
			kinds := map[string]string{}
			for _, c := range plan.Changes {
				kinds[c.Field] = c.Kind
			}
			if !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, tt.kinds)
			}
			if !reflect.DeepEqual(plan.SetFields, tt.set) || !reflect.DeepEqual(plan.Delete, tt.del) {
				t.Errorf("set %v delete %v, want set %v delete %v", plan.SetFields, plan.Delete, tt.set, tt.del)
			}
			if got, want := plan.Empty(), len(tt.set)+len(tt.del) == 0; got != want {
				t.Errorf("Empty() = %v, want %v", got, want)
			}
			for _, f := range ProfileFields {
				if plan.Set.Has(f) != contains(tt.set, f) {
					t.Errorf("plan.Set has %s = %v", f, plan.Set.Has(f))
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestProfilePostbacks(t *testing.T) {
	p := Profile{
		GetStarted:  &GetStarted{Payload: "GET_STARTED"},
		IceBreakers: []IceBreakers{{Locale: DefaultLocale, CallToActions: []IceBreaker{{Question: "q", Payload: "HOURS"}}}},
		PersistentMenu: menu(MenuItem{Type: MenuPostback, Title: "a", Payload: "AGENT"},
			MenuItem{Type: MenuWebURL, Title: "w", URL: "https://x.example"},
			MenuItem{Type: MenuPostback, Title: "h", Payload: "HOURS"}),
	}
	if got, want := p.Postbacks(), []string{"GET_STARTED", "HOURS", "AGENT"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Postbacks = %v, want %v", got, want)
	}
}

func TestClientUserProfile(t *testing.T) {
	g := newGraph(t)
	g.Script(fakegraph.Match{}, body(`{"first_name":"Anna","last_name":"Berg","profile_pic":"https://pic.example/a","locale":"sv_SE","timezone":1,"gender":"female","id":"2400000000000001"}`))
	var calls []Call
	c := client(g, nil, func(o *Options) { o.Observe = func(c Call) { calls = append(calls, c) } })
	p, err := c.UserProfile(context.Background(), testUser)
	if err != nil {
		t.Fatal(err)
	}
	want := UserProfile{FirstName: "Anna", LastName: "Berg", ProfilePic: "https://pic.example/a", Locale: "sv_SE", Timezone: 1, Gender: "female"}
	if p != want {
		t.Errorf("UserProfile = %+v, want %+v", p, want)
	}
	req := g.Calls()[0]
	if req.Path != "/"+testPSID || req.Query.Get("fields") != "first_name,last_name,profile_pic,locale,timezone,gender" {
		t.Errorf("request = %+v", req)
	}
	if len(calls) != 1 || calls[0].Endpoint != "user_profile" {
		t.Errorf("observed %+v, want endpoint user_profile (never the PSID)", calls)
	}
	if _, err := c.UserProfile(context.Background(), Recipient{PageID: testPage, UserID: "../me"}); err == nil {
		t.Error("a user ID with a slash was accepted")
	}
}

func TestUserProfileCache(t *testing.T) {
	clock := fakeclock.New(fakeclock.Start)
	fetches := map[string]int{}
	refuse := map[string]bool{"refused": true}
	fetch := func(_ context.Context, to Recipient) (UserProfile, error) {
		fetches[to.UserID]++
		if refuse[to.UserID] {
			return UserProfile{}, &GraphError{HTTPStatus: 400, Code: 100, Endpoint: "user_profile"}
		}
		return UserProfile{FirstName: strings.ToUpper(to.UserID)}, nil
	}
	c := NewUserProfileCache(fetch, time.Hour, 2, clock.Now)
	get := func(id string) (UserProfile, error) {
		return c.Get(context.Background(), Recipient{PageID: "p", UserID: id})
	}
	if p, err := get("anna"); err != nil || p.FirstName != "ANNA" {
		t.Fatalf("get = %+v, %v", p, err)
	}
	get("anna")
	if fetches["anna"] != 1 {
		t.Errorf("anna fetched %d times within the TTL, want 1", fetches["anna"])
	}
	if p, err := get("refused"); err == nil || p != (UserProfile{}) {
		t.Errorf("refused = %+v, %v; want empty profile and the error", p, err)
	}
	if p, err := get("refused"); err != nil || p != (UserProfile{}) || fetches["refused"] != 1 {
		t.Errorf("refused again = %+v, %v after %d fetches; want the cached empty profile", p, err, fetches["refused"])
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
	get("bo") // full: evicts the entry that expires first (anna)
	if c.Len() != 2 {
		t.Errorf("Len = %d after eviction, want 2", c.Len())
	}
	clock.Advance(time.Hour)
	get("bo")
	if fetches["bo"] != 2 {
		t.Errorf("bo fetched %d times, want 2 (once more after the TTL)", fetches["bo"])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cc := NewUserProfileCache(func(ctx context.Context, _ Recipient) (UserProfile, error) { return UserProfile{}, ctx.Err() }, time.Hour, 10, nil)
	if _, err := cc.Get(ctx, Recipient{UserID: "x"}); !errors.Is(err, context.Canceled) || cc.Len() != 0 {
		t.Errorf("canceled lookup: err %v, %d entries; want the error and nothing cached", err, cc.Len())
	}
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		err     error
		class   string
		outside bool
	}{
		{&GraphError{HTTPStatus: 400, Code: 10, Subcode: 2018278}, ClassOutsideWindow, true},
		{&GraphError{HTTPStatus: 400, Code: 10, Subcode: 2534022}, ClassOutsideWindow, true},
		{&GraphError{HTTPStatus: 400, Code: 10, Subcode: 2018300}, ClassNotThreadOwner, false},
		{&GraphError{HTTPStatus: 400, Code: 551, Subcode: 1545041}, ClassUnreachable, false},
		{&GraphError{HTTPStatus: 400, Code: 200, Subcode: 1545041}, ClassUnreachable, false},
		{&GraphError{HTTPStatus: 500, Code: 2}, ClassTransient, false},
		{errors.New("dial tcp: refused"), ClassTransient, false},
		{&GraphError{HTTPStatus: 400, Code: 100}, ClassOther, false},
	}
	for _, tt := range tests {
		wrapped := errors.Join(errors.New("reply"), tt.err)
		if got := Classify(wrapped); got != tt.class {
			t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.class)
		}
		if got := IsOutsideWindow(wrapped); got != tt.outside {
			t.Errorf("IsOutsideWindow(%v) = %v", tt.err, got)
		}
	}
	if ge := (&GraphError{Code: 10, Subcode: 2018278}); ge.Retryable() {
		t.Error("an outside-window error is retryable")
	}
}
