package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

// fakeProfileGraph is a Graph API that holds one Page's Messenger profile
// and records the calls made to it.
type fakeProfileGraph struct {
	mu      sync.Mutex
	profile map[string]json.RawMessage
	calls   []string
	refuse  bool // answer POST with a Graph error
}

func newFakeProfileGraph(t *testing.T, live string) (*fakeProfileGraph, *httptest.Server) {
	t.Helper()
	g := &fakeProfileGraph{profile: map[string]json.RawMessage{}}
	if live != "" {
		if err := json.Unmarshal([]byte(live), &g.profile); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		defer g.mu.Unlock()
		if r.URL.Path != "/v26.0/me/messenger_profile" || r.URL.Query().Get("access_token") != "tok" {
			http.Error(w, `{"error":{"message":"unexpected call","code":100}}`, http.StatusBadRequest)
			return
		}
		call := r.Method + " " + r.URL.Path
		if len(body) > 0 {
			call += " " + compactJSON(t, body)
		}
		g.calls = append(g.calls, call)
		switch r.Method {
		case http.MethodGet:
			data, _ := json.Marshal(g.profile)
			fmt.Fprintf(w, `{"data":[%s]}`, data)
		case http.MethodPost:
			if g.refuse {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":{"message":"(#100) Invalid keys","type":"OAuthException","code":100}}`)
				return
			}
			var set map[string]json.RawMessage
			json.Unmarshal(body, &set)
			for k, v := range set {
				g.profile[k] = v
			}
			io.WriteString(w, `{"result":"success"}`)
		case http.MethodDelete:
			var del struct{ Fields []string }
			json.Unmarshal(body, &del)
			for _, f := range del.Fields {
				delete(g.profile, f)
			}
			io.WriteString(w, `{"result":"success"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return g, srv
}

func compactJSON(t *testing.T, b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("request body %q: %v", b, err)
	}
	return buf.String()
}

func (g *fakeProfileGraph) recorded() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

const (
	liveEqual = `{"get_started":{"payload":"GET_STARTED"},"greeting":[{"locale":"default","text":"Hi {{user_first_name}}!"}],
	  "persistent_menu":[{"locale":"default","composer_input_disabled":false,"call_to_actions":[
	    {"type":"postback","title":"Talk to a person","payload":"TALK_TO_AGENT"},{"type":"web_url","title":"Help center","url":"https://help.acme.example"}]}]}`
	liveDifferent = `{"get_started":{"payload":"GET_STARTED"},"greeting":[{"locale":"default","text":"Hello!"}],
	  "ice_breakers":[{"locale":"default","call_to_actions":[{"question":"Hours?","payload":"HOURS"}]}]}`
)

func runProfile(t *testing.T, url string, args ...string) string {
	t.Helper()
	env := map[string]string{"PAGE_ACCESS_TOKEN": "tok", "GRAPH_API_URL": url + "/v26.0"}
	var out, errOut bytes.Buffer
	code := profileCmd(args, func(k string) string { return env[k] }, &out, &errOut)
	return fmt.Sprintf("$ threadgate profile %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
}

// TestProfileDiff prints the plan against an empty, an equal and a
// different live profile, and makes no change.
func TestProfileDiff(t *testing.T) {
	for _, tt := range []struct{ golden, live string }{
		{"profile-diff-empty.golden", ""},
		{"profile-diff-equal.golden", liveEqual},
		{"profile-diff-different.golden", liveDifferent},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			g, srv := newFakeProfileGraph(t, tt.live)
			golden(t, tt.golden, runProfile(t, srv.URL, "diff", "--rules", "testdata/profile.yaml"))
			for _, c := range g.recorded() {
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
	const get = "GET /v26.0/me/messenger_profile"
	tests := []struct {
		name  string
		live  string
		args  []string
		calls []string
	}{
		{"equal: no change", liveEqual, nil, []string{get}},
		{"different: set what differs, keep the rest", liveDifferent, nil, []string{get,
			`POST /v26.0/me/messenger_profile {"greeting":[{"locale":"default","text":"Hi {{user_first_name}}!"}],"persistent_menu":[{"locale":"default","composer_input_disabled":false,"call_to_actions":[{"type":"postback","title":"Talk to a person","payload":"TALK_TO_AGENT"},{"type":"web_url","title":"Help center","url":"https://help.acme.example"}]}]}`}},
		{"different with prune: delete too", liveDifferent, []string{"--prune"}, []string{get,
			`POST /v26.0/me/messenger_profile {"greeting":[{"locale":"default","text":"Hi {{user_first_name}}!"}],"persistent_menu":[{"locale":"default","composer_input_disabled":false,"call_to_actions":[{"type":"postback","title":"Talk to a person","payload":"TALK_TO_AGENT"},{"type":"web_url","title":"Help center","url":"https://help.acme.example"}]}]}`,
			`DELETE /v26.0/me/messenger_profile {"fields":["ice_breakers"]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, srv := newFakeProfileGraph(t, tt.live)
			args := append([]string{"apply", "--rules", "testdata/profile.yaml"}, tt.args...)
			out := runProfile(t, srv.URL, args...)
			if !strings.Contains(out, "exit 0") {
				t.Fatalf("apply failed:\n%s", out)
			}
			if got := g.recorded(); !reflect.DeepEqual(got, tt.calls) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.calls, "\n"))
			}
			// A second apply finds nothing left to do (but what prune keeps).
			again := runProfile(t, srv.URL, args...)
			if len(tt.args) > 0 || tt.live == liveEqual {
				if !strings.Contains(again, "no changes") {
					t.Errorf("second apply still has changes:\n%s", again)
				}
			}
		})
	}
	golden(t, "profile-apply.golden", func() string {
		_, srv := newFakeProfileGraph(t, liveDifferent)
		return runProfile(t, srv.URL, "apply", "--rules", "testdata/profile.yaml", "--prune")
	}())
}

func TestProfileUsage(t *testing.T) {
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
	g, srv := newFakeProfileGraph(t, "")
	client := messenger.NewClient(messenger.Options{BaseURL: srv.URL + "/v26.0", Tokens: messenger.StaticToken("tok"),
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
	calls := func() int { return len(g.recorded()) }

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

	g.mu.Lock()
	g.refuse = true
	g.mu.Unlock()
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
	g.mu.Lock()
	g.refuse = false
	g.mu.Unlock()
	if err := s.Sync(ctx, load("Hallo")); err != nil || calls() != n+2 {
		t.Errorf("a changed profile after a refusal: %d calls, %v; want GET and POST", calls()-n, err)
	}
}
