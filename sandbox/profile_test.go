package sandbox

import (
	"context"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/messenger"
)

// TestMessengerProfile sets, reads and deletes the Page's profile with the
// gateway's real Graph client, and checks what the page's state shows.
func TestMessengerProfile(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	page := h.emu.PageID()
	got, err := h.client.GetProfile(ctx, page, nil)
	if err != nil || !reflect.DeepEqual(got, messenger.Profile{}) {
		t.Fatalf("a new Page's profile = %+v, %v; want empty", got, err)
	}
	want := messenger.Profile{
		GetStarted:  &messenger.GetStarted{Payload: "GET_STARTED"},
		Greeting:    []messenger.Greeting{{Locale: "default", Text: "Hi {{user_first_name}}!"}},
		IceBreakers: []messenger.IceBreakers{{Locale: "default", CallToActions: []messenger.IceBreaker{{Question: "Hours?", Payload: "HOURS"}}}},
		PersistentMenu: []messenger.PersistentMenu{{Locale: "default", CallToActions: []messenger.MenuItem{
			{Type: "postback", Title: "Talk to a person", Payload: "TALK_TO_AGENT"},
			{Type: "web_url", Title: "Help", URL: "https://help.example.com"}}}},
	}
	if err := h.client.SetProfile(ctx, page, want); err != nil {
		t.Fatal(err)
	}
	if got, err = h.client.GetProfile(ctx, page, nil); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("profile after POST = %+v, %v\nwant %+v", got, err, want)
	}
	if s := h.state(); !reflect.DeepEqual(s.Profile, want) {
		t.Errorf("state's profile = %+v", s.Profile)
	}
	if err := h.client.DeleteProfileFields(ctx, page, []string{messenger.FieldIceBreakers, messenger.FieldGreeting}); err != nil {
		t.Fatal(err)
	}
	got, _ = h.client.GetProfile(ctx, page, nil)
	if got.IceBreakers != nil || got.Greeting != nil || got.GetStarted == nil || got.PersistentMenu == nil {
		t.Errorf("after DELETE = %+v, want only get_started and persistent_menu", got)
	}

	// The platform's limits.
	tooMany := make([]messenger.MenuItem, 21)
	for i := range tooMany {
		tooMany[i] = messenger.MenuItem{Type: "postback", Title: "x", Payload: "X"}
	}
	for _, bad := range []messenger.Profile{
		{Greeting: []messenger.Greeting{{Locale: "default", Text: string(make([]byte, 161))}}},
		{PersistentMenu: []messenger.PersistentMenu{{Locale: "default", CallToActions: tooMany}}},
		{PersistentMenu: []messenger.PersistentMenu{{Locale: "default", CallToActions: []messenger.MenuItem{{Type: "nested", Title: "More"}}}}},
	} {
		var ge *messenger.GraphError
		if err := h.client.SetProfile(ctx, page, bad); !errors.As(err, &ge) || ge.Code != 100 {
			t.Errorf("SetProfile(%+v) = %v, want a (#100) error", bad, err)
		}
	}
}

// TestUserProfile reads a user's profile: the sandbox's users have names,
// and an ID that never wrote to the Page is refused.
func TestUserProfile(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	user := "2400000000000777"
	h.say(user, "hello")
	p, err := h.client.UserProfile(context.Background(), messenger.Recipient{PageID: h.emu.PageID(), UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	if p != userProfileOf(user) || p.FirstName == "" || p.LastName == "" {
		t.Errorf("profile = %+v, want %+v", p, userProfileOf(user))
	}
	if s := h.state(); threadOf(s, user).Name != p.FirstName+" "+p.LastName {
		t.Errorf("thread name = %q", threadOf(s, user).Name)
	}
	if _, err := h.client.UserProfile(context.Background(), messenger.Recipient{PageID: h.emu.PageID(), UserID: "2400000000000999"}); err == nil {
		t.Error("the profile of an unknown user was given")
	}
	status, out := h.do(http.MethodGet, "/sandbox/api/users/"+user, nil)
	if status != http.StatusOK || out["first_name"] != p.FirstName {
		t.Errorf("GET /sandbox/api/users = %d %v", status, out)
	}
}

// TestRichMessages sends media and cards through the real gateway and
// checks what the conversation shows.
func TestRichMessages(t *testing.T) {
	data, err := os.ReadFile("testdata/playground.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{rules: data})
	user := "2400000000000555"
	h.say(user, "products")
	s := h.waitFor("the image and the cards", func(s State) bool {
		th := threadOf(s, user)
		return th != nil && len(th.Items) >= 3 && th.Items[2].Cards != nil
	})
	items := threadOf(s, user).Items
	if m := items[1].Media; m == nil || m.Type != "image" || m.URL != "https://cdn.example.com/shop.png" {
		t.Errorf("image item = %+v", items[1])
	}
	cards := items[2].Cards
	if len(cards) != 3 || cards[0].Title != "Running shoes" || cards[0].URL != "https://shop.example.com/shoes" ||
		len(cards[0].Buttons) != 2 || cards[0].Buttons[1].Payload != "TALK_TO_AGENT" {
		t.Errorf("cards = %+v", cards)
	}
	// A card's postback button hands the thread over, end to end.
	h.inject("/sandbox/api/users/"+user+"/postbacks", map[string]string{"payload": "TALK_TO_AGENT", "title": "Ask a person"})
	h.waitFor("zendesk owns the thread", ownerIs(user, "zendesk"))

	// The Send API's limits on rich messages.
	for _, msg := range []string{
		`{"attachment":{"type":"image","payload":{"url":"ftp://x"}}}`,
		`{"attachment":{"type":"template","payload":{"template_type":"generic","elements":[]}}}`,
		`{"attachment":{"type":"sticker","payload":{"url":"https://x.example/a.png"}}}`,
	} {
		q := signed(testToken, testSecret, time.Now())
		body := `{"recipient":{"id":"` + user + `"},"messaging_type":"RESPONSE","message":` + msg + `}`
		status, out, _ := graphCall(t, h, http.MethodPost, "/me/messages", q, body)
		if code, _, _, _ := graphErr(out); status != http.StatusBadRequest || code != 100 {
			t.Errorf("message %s: HTTP %d %v, want a (#100) error", msg, status, out)
		}
	}
}

// TestUserMessageAnswer checks that the answer to a user's message carries
// the item's real seq and time, and that echoes are named as such.
func TestUserMessageAnswer(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	status, out := h.do(http.MethodPost, "/sandbox/api/users/2400000000000111/messages", map[string]string{"text": "hello"})
	if status != http.StatusOK {
		t.Fatalf("HTTP %d %v", status, out)
	}
	item, _ := out["item"].(map[string]any)
	if seq, _ := item["seq"].(float64); seq <= 0 {
		t.Errorf("item seq = %v, want the real one", item["seq"])
	}
	if tm, _ := item["time"].(string); tm == "" || tm == "0001-01-01T00:00:00Z" {
		t.Errorf("item time = %v, want the real one", item["time"])
	}
	s := h.waitFor("the echo's report", func(s State) bool {
		for _, l := range s.Log {
			if l.Kind == LogReport && l.Echo {
				return true
			}
		}
		return false
	})
	for _, l := range s.Log {
		if l.Kind == LogWebhook && l.Webhook.Event == "message" && l.Echo != strings.HasPrefix(l.Summary, "platform echo") {
			t.Errorf("webhook log %q: echo marked %v", l.Summary, l.Echo)
		}
		if l.Kind == LogReport && l.Report.Kind == "echo" && (!l.Echo || l.Summary != "platform echo of a sent message: no rule runs on echoes") {
			t.Errorf("echo report = %+v", l)
		}
	}
}
