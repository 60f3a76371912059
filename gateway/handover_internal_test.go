package gateway

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
)

func TestCurrentOwner(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		st   ThreadState
		now  time.Time
		want string
	}{
		{"unknown stays unknown", ThreadState{}, t0, OwnerUnknown},
		{"idle stays idle", ThreadState{Owner: OwnerIdle, OwnerSince: t0}, t0.Add(48 * time.Hour), OwnerIdle},
		{"fresh owner", ThreadState{Owner: "42", OwnerSince: t0}, t0.Add(23 * time.Hour), "42"},
		{"owner expires after 24h", ThreadState{Owner: "42", OwnerSince: t0}, t0.Add(24 * time.Hour), OwnerIdle},
		{"a user message restarts the 24h", ThreadState{Owner: "42", OwnerSince: t0, LastUserMessage: t0.Add(20 * time.Hour)}, t0.Add(30 * time.Hour), "42"},
		{"our own thread expires too", ThreadState{Owner: OwnerSelf, OwnerSince: t0, LastUserMessage: t0.Add(time.Hour)}, t0.Add(25 * time.Hour), OwnerIdle},
		{"an agent's message does not restart it", ThreadState{Owner: "42", OwnerSince: t0, LastActivity: t0.Add(20 * time.Hour)}, t0.Add(25 * time.Hour), OwnerIdle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := currentOwner(tt.st, tt.now); got != tt.want {
				t.Errorf("currentOwner = %q, want %q", got, tt.want)
			}
		})
	}
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
		{"a long message is cut", []string{"a"}, long, 1, long[:2*maxTranscriptRunes], long[:2*maxTranscriptRunes]},
		{"old messages make room", []string{strings.Repeat("x", 500), "b"}, strings.Repeat("y", 400), 2, "b", strings.Repeat("y", 400)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendTranscript(append([]string(nil), tt.in...), tt.add)
			total := 0
			for _, m := range got {
				total += utf8.RuneCountInString(m)
			}
			if len(got) != tt.wantLen || got[0] != tt.wantFirst || got[len(got)-1] != tt.wantLast || total > maxTranscriptRunes {
				t.Errorf("got %d messages (%d characters), first %.10q, last %.10q; want %d, first %.10q, last %.10q",
					len(got), total, got[0], got[len(got)-1], tt.wantLen, tt.wantFirst, tt.wantLast)
			}
		})
	}
}

func TestReturnTimersHeap(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rt := newReturnTimers()
	conv := func(u string) Conversation { return Conversation{PageID: "p", UserID: u} }
	rt.watch(conv("c"), t0.Add(3*time.Minute))
	rt.watch(conv("a"), t0.Add(1*time.Minute))
	rt.watch(conv("b"), t0.Add(2*time.Minute))
	rt.watch(conv("a"), t0) // already watched: ignored
	if rt.Len() != 3 {
		t.Fatalf("Len = %d, want 3", rt.Len())
	}
	got := rt.due(t0.Add(2*time.Minute), 10)
	if len(got) != 2 || got[0].conv.UserID != "a" || got[1].conv.UserID != "b" || !got[0].since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("due = %v, want a then b", got)
	}
	if got := rt.due(t0.Add(time.Hour), 0); len(got) != 0 {
		t.Errorf("max 0 gave %v", got)
	}
	rt.watch(conv("a"), t0.Add(time.Hour)) // popped, so watched again
	if got := rt.due(t0.Add(time.Hour), 1); len(got) != 1 || got[0].conv.UserID != "c" {
		t.Errorf("bounded due = %v, want c alone", got)
	}
	if rt.Len() != 1 {
		t.Errorf("Len = %d, want 1", rt.Len())
	}
}

func TestIsHumanEcho(t *testing.T) {
	set := engine.NewSet(nil, map[string]string{"zendesk": "200646160103180"}, nil, engine.Handover{})
	echo := func(app string, standby bool) messenger.Incoming {
		return messenger.Incoming{Standby: standby, Event: &messenger.Event{Message: &messenger.InboundMessage{IsEcho: true, AppID: messenger.ID(app)}}}
	}
	tests := []struct {
		name  string
		appID string
		in    messenger.Incoming
		want  bool
	}{
		{"ours", "1001", echo("1001", false), false},
		{"page inbox", "1001", echo(PageInboxAppID, false), true},
		{"unknown app", "1001", echo("555", false), true},
		{"no app_id", "1001", echo("", false), true},
		{"no APP_ID: page inbox", "", echo(PageInboxAppID, false), true},
		{"no APP_ID: instagram inbox", "", echo(InstagramInboxAppID, false), true},
		{"no APP_ID: an app of the rules file", "", echo("200646160103180", false), true},
		{"no APP_ID: an unknown app (maybe us)", "", echo("1001", false), false},
		{"no APP_ID: no app_id", "", echo("", false), false},
		{"no APP_ID: on standby", "", echo("1001", true), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(Config{AppID: tt.appID})
			if got := g.isHumanEcho(set, tt.in); got != tt.want {
				t.Errorf("isHumanEcho = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFmtWait(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Hour:                      "2h",
		90 * time.Minute:                   "1h30m",
		45 * time.Second:                   "45s",
		time.Hour + 30*time.Second:         "1h0m30s",
		2*time.Hour + 400*time.Millisecond: "2h",
	} {
		if got := fmtWait(d); got != want {
			t.Errorf("fmtWait(%v) = %q, want %q", d, got, want)
		}
	}
}
