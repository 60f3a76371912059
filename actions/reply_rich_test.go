package actions

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/internal/golden"

	"github.com/threadgate/threadgate/messenger"
)

func TestDecodeRichReply(t *testing.T) {
	card := "{title: t}"
	runDecodeCases(t, []decodeCase{
		{name: "image", src: `reply: {image: "https://cdn.example/a.png"}`},
		{name: "file with quick replies", src: `reply: {file: "https://cdn.example/a.pdf", quick_replies: [{title: ok, payload: OK}]}`},
		{name: "ten cards", src: "reply: {cards: [" + strings.TrimSuffix(strings.Repeat(card+",", 10), ",") + "]}"},
		{name: "eleven cards", src: "reply: {cards: [" + strings.TrimSuffix(strings.Repeat(card+",", 11), ",") + "]}",
			want: []string{"1:16: reply.cards: 11 cards, at most 10 are allowed"}},
		{name: "text and image", src: `reply: {text: hi, image: "https://cdn.example/a.png"}`,
			want: []string{"1:19: reply: text and image cannot be sent in one message, expected one of text, image, video, audio, file or cards (use two replies)"}},
		{name: "media URL", src: `reply: {video: "cdn.example/a.mp4"}`,
			want: []string{`1:16: reply.video: expected an http:// or https:// address, got "cdn.example/a.mp4"`}},
		{name: "buttons without text", src: `reply: {image: "https://cdn.example/a.png", buttons: [{title: a, payload: b}]}`,
			want: []string{"1:8: reply: buttons go with a text (a button template); a card has buttons of its own"}},
		{name: "card limits", src: `
reply:
  cards:
    - title: "` + strings.Repeat("x", 81) + `"
      subtitle: s
      image_url: "https://cdn.example/a.png"
      default_action: "https://acme.example"
      buttons:
        - {title: a, payload: A}
        - {title: b, payload: B}
        - {title: c, payload: C}
        - {title: d, payload: D}
    - subtitle: no title
      colour: red
`, want: []string{
			"4:14: reply.cards[0].title: the text is 81 characters long, the limit is 80",
			"9:9: reply.cards[0].buttons: 4 buttons, at most 3 are allowed",
			"13:7: reply.cards[1]: title is required",
			`14:7: reply.cards[1]: unknown key "colour", expected one of: title, subtitle, image_url, default_action, buttons`,
		}},
	})
}

// TestRichReplyJSON renders replies and compares the Send API message
// with golden files under testdata/reply: the exact platform JSON.
func TestRichReplyJSON(t *testing.T) {
	d := &Data{User: messenger.UserProfile{FirstName: "Anna"}, Vars: map[string]any{}, Groups: map[string]string{}}
	tests := []struct{ name, src string }{
		{"image", `reply: {image: "https://cdn.example/a.png"}`},
		{"video", `reply: {video: "https://cdn.example/a.mp4"}`},
		{"audio", `reply: {audio: "https://cdn.example/a.mp3", quick_replies: [{title: More, payload: MORE}]}`},
		{"file", `reply: {file: "https://cdn.example/a.pdf"}`},
		{"cards", `
reply:
  cards:
    - title: "For you, {{ .User.FirstName }}"
      subtitle: Our best seller
      image_url: "https://cdn.example/shoe.png"
      default_action: "https://shop.example/shoe"
      buttons:
        - {title: Buy, url: "https://shop.example/buy"}
        - {title: Ask a person, payload: TALK_TO_AGENT}
    - title: Gift cards
`},
		{"greeting-by-name", `reply: "Hi {{ or .User.FirstName \"there\" }}!"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := plan(t, tt.src, d)
			if err != nil {
				t.Fatal(err)
			}
			calls, err := execute(t, s, nil)
			if err != nil || len(calls) != 1 || calls[0].Msg == nil {
				t.Fatalf("execute = %v, %v; want one message", calls, err)
			}
			got, err := json.MarshalIndent(calls[0].Msg, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			goldenFile(t, filepath.Join("testdata", "reply", tt.name+".json"), string(got)+"\n")
		})
	}
}

func goldenFile(t *testing.T, path, got string) {
	t.Helper()
	golden.Check(t, path, got, *update)
}

func TestRichReplyFields(t *testing.T) {
	s, err := plan(t, `reply: {cards: [{title: "Hi {{ .User.FirstName }}", buttons: [{title: a, payload: A}]}]}`, &Data{User: messenger.UserProfile{FirstName: "Bo"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"cards": []any{map[string]any{"title": "Hi Bo", "buttons": []any{map[string]any{"title": "a", "payload": "A"}}}}}
	if got := s.Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v, want %v", got, want)
	}
	s, err = plan(t, `reply: {image: "https://cdn.example/a.png"}`, &Data{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Fields(); !reflect.DeepEqual(got, map[string]any{"image": "https://cdn.example/a.png"}) {
		t.Errorf("Fields = %v", got)
	}
}

// TestUserFallback renders a greeting for a user whose profile the
// platform refused (an empty .User): the template's fallback is used.
func TestUserFallback(t *testing.T) {
	s, err := plan(t, `reply: "Hi {{ or .User.FirstName \"there\" }}!"`, &Data{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Fields()["text"]; got != "Hi there!" {
		t.Errorf("text = %q, want the fallback", got)
	}
}

func TestReadsUser(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{`reply: "Hi {{ .User.FirstName }}"`, true},
		{`reply: "Hi {{ or $.User.FirstName \"there\" }}"`, true},
		{`reply: "Hi {{ .Text }}"`, false},
		{`reply: "Hi"`, false},
		{`reply: {cards: [{title: t, subtitle: "{{ .User.LastName }}"}]}`, true},
		{`reply: {image: "https://cdn.example/a.png"}`, false},
		{`echo: "[{{ .User.FirstName }}] "`, true},
		{`pass_thread_control: {target: zendesk, metadata: "{{ .User.Locale }}"}`, true},
		{`take_thread_control: {metadata: "{{ .User.Locale }}"}`, true},
		{`sender_action: typing_on`, false},
		// The whole data handed on may be read anywhere: the profile is
		// asked for, as for .Transcript.
		{`reply: '{{ $d := . }}{{ $d.User.FirstName }}'`, true},
		{`reply: '{{ with $ }}{{ .User.FirstName }}{{ end }}'`, true},
		{`reply: '{{ printf "%v" . }}'`, true},
		{`reply: '{{ range .Groups }}{{ $.User.FirstName }}{{ end }}'`, true},
		{`reply: '{{ with .Text }}{{ . }}{{ end }}'`, false},
	}
	for _, tt := range tests {
		a, errs := decode(t, tt.src, testCompiler())
		if len(errs) > 0 {
			t.Fatalf("%s: %v", tt.src, errs)
		}
		if got := Reads([]Action{a}, FieldUser); got != tt.want {
			t.Errorf("ReadsUser(%s) = %v, want %v", tt.src, got, tt.want)
		}
	}
}

// TestReadsTranscript tells the templates that read .Transcript, in any
// branch and through $ or a variable, from those that do not: the
// conversation keeps the transcript only for rules that read it.
func TestReadsTranscript(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{`reply: '{{ .Transcript | join " / " }}'`, true},
		{`reply: '{{ range .Transcript }}{{ . }} {{ end }}'`, true},
		{`reply: '{{ with .Transcript }}{{ index . 0 }}{{ end }}'`, true},
		{`reply: '{{ len $.Transcript }}'`, true},
		{`reply: '{{ range .Groups }}{{ $.Transcript }}{{ end }}'`, true},
		{`reply: '{{ if .Text }}hi{{ else }}{{ .Transcript }}{{ end }}'`, true},
		{`reply: '{{ if .Text }}{{ if .Payload }}{{ with .Vars.tags }}{{ $.Transcript }}{{ end }}{{ end }}{{ end }}'`, true},
		{`reply: '{{ with .Vars.brand }}{{ .Transcript }}{{ end }}'`, false}, // a var's key
		{`reply: '{{ $d := . }}{{ $d.Transcript }}'`, true},
		{`reply: '{{ printf "%v" . }}'`, true},
		{`reply: '{{ . }}'`, true},
		{`reply: '{{ with $ }}{{ .Text }}{{ end }}'`, true},
		{`reply: '{{ .Text }} {{ .Vars.brand }} {{ .User.FirstName }}'`, false},
		{`reply: '{{ range .Groups }}{{ . }}{{ end }}'`, false},
		{`reply: '{{ with .Text }}{{ . }}{{ end }}'`, false},
		{`reply: '{{ range $k, $v := .Groups }}{{ $k }}={{ $v }}{{ end }}'`, false},
		{`reply: 'Transcript'`, false},
		{`reply: {cards: [{title: t, subtitle: '{{ .Transcript | join ", " }}'}]}`, true},
		{`reply: {cards: [{title: '{{ .Text }}'}]}`, false},
		{`reply: {image: "https://cdn.example/a.png"}`, false},
		{`echo: '{{ len .Transcript }} '`, true},
		{`echo: '> '`, false},
		{`pass_thread_control: {target: zendesk, metadata: '{{ .Transcript | join " / " }}'}`, true},
		{`pass_thread_control: {target: zendesk, metadata: '{{ .Text }}'}`, false},
		{`take_thread_control: {metadata: '{{ .Transcript | join " / " }}'}`, true},
		{`sender_action: typing_on`, false},
	}
	for _, tt := range tests {
		a, errs := decode(t, tt.src, testCompiler())
		if len(errs) > 0 {
			t.Fatalf("%s: %v", tt.src, errs)
		}
		if got := Reads([]Action{a}, FieldTranscript); got != tt.want {
			t.Errorf("ReadsTranscript(%s) = %v, want %v", tt.src, got, tt.want)
		}
	}
	if Reads(nil, FieldTranscript) {
		t.Error("Reads(nil, FieldTranscript) = true")
	}
}
