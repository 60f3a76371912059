package rules

import (
	"strings"
	"testing"

	"github.com/threadgate/threadgate/engine"
)

func TestAttachmentMatch(t *testing.T) {
	t.Parallel()
	att := func(types ...string) *engine.Event {
		return &engine.Event{Kind: engine.KindMessage, Attachments: types}
	}
	tests := []struct {
		name  string
		value string
		ev    *engine.Event
		want  bool
	}{
		{"image", `image`, att("image"), true},
		{"other type", `image`, att("video"), false},
		{"no attachment", `image`, att(), false},
		{"list", `[video, audio, file]`, att("file"), true},
		{"any of several attachments", `location`, att("image", "location"), true},
		// Until Aug 30 2026 a sticker arrives as both image and sticker.
		{"sticker during the transition", `sticker`, att("image", "sticker"), true},
		{"sticker after the transition", `image`, att("sticker"), false},
		{"fallback (shared link)", `fallback`, att("fallback"), true},
		{"not on postbacks", `image`, &engine.Event{Kind: engine.KindPostback, Attachments: []string{"image"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compileMatch(t, "attachment", tt.value)
			if got := c.Holds(subject(tt.ev)); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
	for _, ty := range attachmentTypes {
		compileMatch(t, "attachment", ty)
	}
	got := compileMatchErrors(t, "attachment", `[image, gif, Image]`)
	if len(got) != 2 || !strings.Contains(got[0], `unknown attachment type "gif", expected one of: image, video, audio, file, location, fallback, sticker`) {
		t.Errorf("errors = %q", got)
	}
}
