package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

// pathProfile is the path of the Messenger Profile API.
const pathProfile = "/me/messenger_profile"

// profileGraph starts a fake Graph API that accepts the token "tok" and
// gives the calls to the Messenger Profile API the answers, in turn.
func profileGraph(t *testing.T, answers ...fakegraph.Answer) *fakegraph.Server {
	t.Helper()
	g := fakegraph.New(t, fakegraph.Options{Tokens: []string{"tok"}})
	g.Script(fakegraph.Match{Path: pathProfile}, answers...)
	return g
}

// liveProfile is the answer to GET /me/messenger_profile for a Page whose
// profile is the JSON object profile, or has none when profile is "".
func liveProfile(profile string) fakegraph.Answer {
	if profile == "" {
		return fakegraph.Answer{Body: `{"data":[]}`}
	}
	return fakegraph.Answer{Body: `{"data":[` + profile + `]}`}
}

// profileSaved is the answer to a POST or DELETE that changed the profile.
var profileSaved = fakegraph.Answer{Body: `{"result":"success"}`}

// profileCalls returns the calls the server received, each as "METHOD
// /VERSION/PATH BODY" with the body compacted.
func profileCalls(t *testing.T, g *fakegraph.Server) []string {
	t.Helper()
	var out []string
	for _, c := range g.Calls() {
		call := c.Method + " /" + c.Version + c.Path
		if len(c.RawBody) > 0 {
			call += " " + compactJSON(t, c.RawBody)
		}
		out = append(out, call)
	}
	return out
}

func compactJSON(t *testing.T, b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("request body %q: %v", b, err)
	}
	return buf.String()
}

const (
	liveEqual = `{"get_started":{"payload":"GET_STARTED"},"greeting":[{"locale":"default","text":"Hi {{user_first_name}}!"}],
	  "persistent_menu":[{"locale":"default","composer_input_disabled":false,"call_to_actions":[
	    {"type":"postback","title":"Talk to a person","payload":"TALK_TO_AGENT"},{"type":"web_url","title":"Help center","url":"https://help.acme.example"}]}]}`
	liveDifferent = `{"get_started":{"payload":"GET_STARTED"},"greeting":[{"locale":"default","text":"Hello!"}],
	  "ice_breakers":[{"locale":"default","call_to_actions":[{"question":"Hours?","payload":"HOURS"}]}]}`
	// liveApplied is liveDifferent after an apply without --prune: the
	// file's fields set, the ice breakers kept.
	liveApplied = `{"get_started":{"payload":"GET_STARTED"},"greeting":[{"locale":"default","text":"Hi {{user_first_name}}!"}],
	  "persistent_menu":[{"locale":"default","composer_input_disabled":false,"call_to_actions":[
	    {"type":"postback","title":"Talk to a person","payload":"TALK_TO_AGENT"},{"type":"web_url","title":"Help center","url":"https://help.acme.example"}]}],
	  "ice_breakers":[{"locale":"default","call_to_actions":[{"question":"Hours?","payload":"HOURS"}]}]}`
)

func runProfile(t *testing.T, graph *fakegraph.Server, args ...string) string {
	t.Helper()
	env := map[string]string{"PAGE_ACCESS_TOKEN": "tok", "GRAPH_API_URL": graph.BaseURL()}
	var out, errOut bytes.Buffer
	code := profileCmd(args, func(k string) string { return env[k] }, &out, &errOut)
	return fmt.Sprintf("$ threadgate profile %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
}

// TestProfileDiff prints the plan against an empty, an equal and a
// different live profile, and makes no change.
func TestProfileDiff(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ golden, live string }{
		{"profile-diff-empty.golden", ""},
		{"profile-diff-equal.golden", liveEqual},
		{"profile-diff-different.golden", liveDifferent},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			g := profileGraph(t, liveProfile(tt.live))
			golden(t, tt.golden, runProfile(t, g, "diff", "--rules", "testdata/profile.yaml"))
			for _, c := range profileCalls(t, g) {
				if !strings.HasPrefix(c, "GET ") {
					t.Errorf("diff made a change: %s", c)
				}
			}
		})
	}
}

// TestProfileApply checks the exact calls: only the fields that differ are
// set, and a field the file does not declare is deleted only with --prune.
func TestProfileApply(t *testing.T) {
	t.Parallel()
	const get = "GET /v26.0/me/messenger_profile"
	tests := []struct {
		name        string
		live, after string // the Page's profile before and after the apply
		args        []string
		calls       []string
	}{
		{"equal: no change", liveEqual, liveEqual, nil, []string{get}},
		{"different: set what differs, keep the rest", liveDifferent, liveApplied, nil, []string{get,
			`POST /v26.0/me/messenger_profile {"greeting":[{"locale":"default","text":"Hi {{user_first_name}}!"}],"persistent_menu":[{"locale":"default","composer_input_disabled":false,"call_to_actions":[{"type":"postback","title":"Talk to a person","payload":"TALK_TO_AGENT"},{"type":"web_url","title":"Help center","url":"https://help.acme.example"}]}]}`}},
		{"different with prune: delete too", liveDifferent, liveEqual, []string{"--prune"}, []string{get,
			`POST /v26.0/me/messenger_profile {"greeting":[{"locale":"default","text":"Hi {{user_first_name}}!"}],"persistent_menu":[{"locale":"default","composer_input_disabled":false,"call_to_actions":[{"type":"postback","title":"Talk to a person","payload":"TALK_TO_AGENT"},{"type":"web_url","title":"Help center","url":"https://help.acme.example"}]}]}`,
			`DELETE /v26.0/me/messenger_profile {"fields":["ice_breakers"]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The GET, the changes, and the second apply's GET.
			answers := []fakegraph.Answer{liveProfile(tt.live)}
			for range tt.calls[1:] {
				answers = append(answers, profileSaved)
			}
			g := profileGraph(t, append(answers, liveProfile(tt.after))...)
			args := append([]string{"apply", "--rules", "testdata/profile.yaml"}, tt.args...)
			out := runProfile(t, g, args...)
			if !strings.Contains(out, "exit 0") {
				t.Fatalf("apply failed:\n%s", out)
			}
			if got := profileCalls(t, g); !reflect.DeepEqual(got, tt.calls) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.calls, "\n"))
			}
			// A second apply, on the profile the first one left, finds
			// nothing left to do.
			if again := runProfile(t, g, args...); !strings.Contains(again, "no changes") {
				t.Errorf("second apply still has changes:\n%s", again)
			}
		})
	}
	golden(t, "profile-apply.golden", runProfile(t, profileGraph(t, liveProfile(liveDifferent), profileSaved, profileSaved),
		"apply", "--rules", "testdata/profile.yaml", "--prune"))
}

func TestProfileUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "usage: threadgate profile diff"},
		{[]string{"diff", "--rules", "testdata/profile.yaml"}, map[string]string{}, "set PAGE_ACCESS_TOKEN"},
		{[]string{"diff", "--rules", "testdata/bot.yaml"}, map[string]string{"PAGE_ACCESS_TOKEN": "tok"}, "has no profile section"},
	} {
		var out, errOut bytes.Buffer
		code := profileCmd(tt.args, func(k string) string { return tt.env[k] }, &out, &errOut)
		if code == exitOK || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("profile %v = exit %d, stderr %q; want a failure saying %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}

// TestProfileSync applies the profile once per change, and does not try a
// refused profile again until it changes.
func TestProfileSync(t *testing.T) {
	t.Parallel()
	g := profileGraph(t, liveProfile(""), profileSaved)
	client := messenger.NewClient(messenger.Options{BaseURL: g.BaseURL(), Tokens: messenger.StaticToken("tok"),
		Logger: slog.New(slog.DiscardHandler), BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	s := newProfileSync(client, "tok", nil, slog.New(slog.DiscardHandler))
	load := func(greeting string) *rules.File {
		t.Helper()
		f, err := rules.Parse("rules.yaml", []byte("version: 1\nprofile:\n  get_started: GO\n  greeting: "+greeting+
			"\nrules:\n  - name: go\n    match: {postback: GO}\n    do: [reply: hi]\n"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ctx := context.Background()
	calls := func() int { return len(g.Calls()) }

	if err := s.Sync(ctx, load("Hello")); err != nil {
		t.Fatal(err)
	}
	if n := calls(); n != 2 {
		t.Fatalf("first sync made %d calls, want GET and POST", n)
	}
	if st := s.Status(); len(st.Applied) != 1 || len(st.Errors) != 0 {
		t.Errorf("status = %+v", st)
	}
	if err := s.Sync(ctx, load("Hello")); err != nil || calls() != 2 {
		t.Errorf("a reload with the same profile made calls (%d) or failed (%v)", calls(), err)
	}

	// The Graph API refuses the next POST.
	hello := `{"get_started":{"payload":"GO"},"greeting":[{"locale":"default","text":"Hello"}]}`
	g.Script(fakegraph.Match{Path: pathProfile}, liveProfile(hello),
		fakegraph.GraphError{Code: 100, Message: "(#100) Invalid keys"}.Answer())
	if err := s.Sync(ctx, load("Bonjour")); err == nil {
		t.Fatal("a refused profile gave no error")
	}
	n := calls()
	if st := s.Status(); len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "code 100") {
		t.Errorf("status after a refusal = %+v", st)
	}
	if err := s.Sync(ctx, load("Bonjour")); err != nil || calls() != n {
		t.Errorf("the refused profile was tried again: %d calls, %v", calls()-n, err)
	}
	g.Script(fakegraph.Match{Path: pathProfile}, liveProfile(hello), profileSaved)
	if err := s.Sync(ctx, load("Hallo")); err != nil || calls() != n+2 {
		t.Errorf("a changed profile after a refusal: %d calls, %v; want GET and POST", calls()-n, err)
	}
}
