package sandbox

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/messenger"
)

// DELETE messenger_profile clears the fields named and keeps the others;
// an unknown field is refused and changes nothing.
func TestEmulatorDeletesProfileFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx, page := context.Background(), h.emu.PageID()
	want := messenger.Profile{
		GetStarted: &messenger.GetStarted{Payload: "GET_STARTED"},
		Greeting:   []messenger.Greeting{{Locale: messenger.DefaultLocale, Text: "Hi!"}},
	}
	if err := h.client.SetProfile(ctx, page, want); err != nil {
		t.Fatal(err)
	}
	if err := h.client.DeleteProfileFields(ctx, page, []string{messenger.FieldGreeting}); err != nil {
		t.Fatal(err)
	}
	if err := h.client.DeleteProfileFields(ctx, page, []string{messenger.FieldGetStarted, "nonsense"}); err == nil || !strings.Contains(err.Error(), "unknown field nonsense") {
		t.Errorf("deleting an unknown field: %v, want it refused", err)
	}
	got, err := h.client.GetProfile(ctx, page, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (messenger.Profile{GetStarted: want.GetStarted}); !reflect.DeepEqual(got, want) {
		t.Errorf("profile after the deletes = %+v, want %+v", got, want)
	}
}
