package rules

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/messenger"
)

// TestProfilePerPage decodes a per-Page profile section and compares the
// Graph API JSON of each Page's profile with a golden file.
func TestProfilePerPage(t *testing.T) {
	t.Parallel()
	f, err := Load("testdata/good/profile-pages.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps := f.Profiles()
	if !ps.Declared() || ps.Shared != nil {
		t.Fatalf("profiles = %+v, want per page", ps)
	}
	if got := ps.PageNames(); !reflect.DeepEqual(got, []string{"shop", "support"}) {
		t.Errorf("PageNames = %v", got)
	}
	if got := ps.Postbacks(); !reflect.DeepEqual(got, []string{"42", "GET_STARTED", "TALK_TO_AGENT"}) {
		t.Errorf("Postbacks = %v", got)
	}
	if _, ok := ps.For("nobody"); ok {
		t.Error("For(nobody) found a profile")
	}
	var b strings.Builder
	for _, name := range ps.PageNames() {
		p, _ := ps.For(name)
		out, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(name + ": " + string(out) + "\n")
	}
	golden(t, "testdata/good/profile-pages.profile.golden", b.String())
}

func TestProfileShared(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want messenger.Profile
	}{
		{
			name: "short forms are the default locale",
			yaml: `
  get_started: GET_STARTED
  greeting: "Hi {{user_first_name}}!"
  persistent_menu:
    - {title: "Talk to a person", payload: AGENT}
    - {title: "Help", url: "https://help.example"}`,
			want: messenger.Profile{
				GetStarted: &messenger.GetStarted{Payload: "GET_STARTED"},
				Greeting:   []messenger.Greeting{{Locale: "default", Text: "Hi {{user_first_name}}!"}},
				PersistentMenu: []messenger.PersistentMenu{{Locale: "default", CallToActions: []messenger.MenuItem{
					{Type: "postback", Title: "Talk to a person", Payload: "AGENT"},
					{Type: "web_url", Title: "Help", URL: "https://help.example"},
				}}},
			},
		},
		{
			name: "locales sorted with default first",
			yaml: `
  greeting: {fr_FR: Bonjour, default: Hello, de_DE: Hallo}`,
			want: messenger.Profile{Greeting: []messenger.Greeting{
				{Locale: "default", Text: "Hello"}, {Locale: "de_DE", Text: "Hallo"}, {Locale: "fr_FR", Text: "Bonjour"}}},
		},
		{
			name: "empty section",
			yaml: ` {}`,
			want: messenger.Profile{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\nprofile:" + tt.yaml + "\nrules:\n  - name: any\n    match: {event: postback}\n    do: [reply: hi]\n"
			f, err := Parse("p.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := f.Profiles().For("")
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("profile = %+v, %v\nwant %+v", got, ok, tt.want)
			}
		})
	}
	f, err := Parse("p.yaml", []byte("version: 1\nrules:\n  - name: any\n    do: [reply: hi]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Profiles().Declared() {
		t.Error("a file without profile declares one")
	}
}
