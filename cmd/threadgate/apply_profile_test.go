package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/internal/loopback"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
)

// profileRules is a rules file whose profile greets with greeting.
func profileRules(greeting, reply string) string {
	return `version: 1
profile:
  get_started: GET_STARTED
  greeting: "` + greeting + `"
rules:
  - name: start
    match: {postback: GET_STARTED}
    do: [reply: "` + reply + `"]
`
}

// TestServeApplyProfile runs serve --apply-profile against the fake Graph
// API: the profile is applied at start, not again for a reload that leaves
// it as it was, once more when it changes, and a refusal is shown at
// GET /-/rules and not tried again until the profile changes.
func TestServeApplyProfile(t *testing.T) {
	const token, secret = "EAAB-profile-token", "profile-secret"
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{token}, AppSecret: []byte(secret)})
	profileCalls := func(method string) int {
		n := 0
		for _, c := range graph.CallsTo("/me/messenger_profile") {
			if c.Method == method {
				n++
			}
		}
		return n
	}
	live := fakegraph.Answer{Status: 200, Body: `{"data":[]}`}
	ok := fakegraph.Answer{Status: 200, Body: `{"result":"success"}`}
	graph.Script(fakegraph.Match{Path: "/me/messenger_profile"}, live, ok)

	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	write := func(content string) {
		t.Helper()
		tmp := filepath.Join(dir, ".rules.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(profileRules("Hello!", "v1"))
	addr := loopback.FreeAddr(t)
	cfg, err := parseServe([]string{"--addr", addr, "--rules", path, "--apply-profile"},
		env(map[string]string{"PAGE_ACCESS_TOKEN": token, "APP_SECRET": secret, "GRAPH_API_URL": graph.BaseURL()}), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, cfg)
	base := srv.base
	status := func() (hash string, profile map[string]any) {
		var st struct {
			Hash    string         `json:"hash"`
			Profile map[string]any `json:"profile"`
		}
		resp, err := http.Get(base + "/-/rules")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st.Hash, st.Profile
	}

	// At start: read the live profile, set what differs.
	poll.Until(t, "the profile applied at start", func() bool { return profileCalls(http.MethodPost) == 1 })
	post := graph.CallsTo("/me/messenger_profile")[1]
	if !strings.Contains(string(post.RawBody), `"get_started":{"payload":"GET_STARTED"}`) || !strings.Contains(string(post.RawBody), `"text":"Hello!"`) {
		t.Errorf("POST messenger_profile body = %s", post.RawBody)
	}

	// A reload that changes the rules but not the profile: no call.
	first, _ := status()
	write(profileRules("Hello!", "v2"))
	poll.Until(t, "the reload of v2", func() bool { h, _ := status(); return h != first })
	// The sync runs after the swap; a later profile change is synced after
	// it, so if this reload had made calls they would come first.
	graph.Script(fakegraph.Match{Path: "/me/messenger_profile"}, live, fakegraph.GraphError{Status: 400, Code: 100, Message: "Invalid parameter", FBTraceID: "TraceProfile1"}.Answer())
	second, _ := status()
	write(profileRules("Welcome!", "v2"))
	poll.Until(t, "the changed profile tried", func() bool { return profileCalls(http.MethodPost) == 2 })
	if got := profileCalls(http.MethodGet); got != 2 {
		t.Errorf("%d GET messenger_profile, want 2 (at start, and for the changed profile only)", got)
	}
	// The refusal shows at GET /-/rules.
	poll.Until(t, "the refusal at /-/rules", func() bool {
		h, p := status()
		errs, _ := p["errors"].([]any)
		return h != second && len(errs) == 1 && strings.Contains(errs[0].(string), "code 100")
	})
	// The same refused profile is not tried again by the next reload. Syncs
	// run one after the other: once the next change of the profile is
	// applied, the sync of v3 is over, and it made no call.
	third, _ := status()
	write(profileRules("Welcome!", "v3"))
	poll.Until(t, "the reload of v3", func() bool { h, _ := status(); return h != third })
	graph.Script(fakegraph.Match{Path: "/me/messenger_profile"}, live, ok)
	write(profileRules("Bye!", "v3"))
	poll.Until(t, "the next change applied", func() bool { return profileCalls(http.MethodPost) == 3 })
	if got := profileCalls(http.MethodGet); got != 3 {
		t.Errorf("%d GET messenger_profile, want 3: the refused profile was tried again by a reload that did not change it", got)
	}
	if strings.Contains(srv.log(), token) {
		t.Error("the token reached the logs")
	}
}
