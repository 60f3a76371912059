package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeAdmin implements the gateway's /-/deadletters endpoints over a list
// of dead letters held in memory, as the contract in the gateway's
// documentation says they answer.
type fakeAdmin struct {
	mu        sync.Mutex
	dead      []map[string]any // each with an "id"
	nextSeq   int
	forbidden bool // answer every request 403, as to a remote caller
	full      bool // answer replays 503, as when the store is full
	requests  []string
}

func newFakeAdmin() *fakeAdmin {
	graphErr := map[string]any{"http_status": 400, "code": 190, "subcode": 460, "type": "OAuthException", "fbtrace_id": "AbCdEf123"}
	return &fakeAdmin{nextSeq: 100, dead: []map[string]any{
		{"id": 7, "seq": 7, "page_id": "111", "user": "3f9a1c0b2e7d", "kind": "message", "mid": "m_7",
			"accepted": "2026-11-30T10:00:00Z", "failed_at": "2026-11-30T10:15:02Z", "rule": "chat-with-agent",
			"step": 1, "step_kind": "pass_thread_control", "attempts": 1, "error": "graph api: (#190) Error validating\naccess token",
			"graph": graphErr, "replay_of": 0},
		{"id": 12, "seq": 12, "page_id": "111", "user": "9c2e5d7a1b40", "kind": "postback", "mid": "",
			"accepted": "2026-11-30T11:00:00Z", "failed_at": "2026-11-30T12:15:00.123456+01:00", "rule": "",
			"step": 0, "step_kind": "", "attempts": 0, "error": "panic while handling the event", "graph": nil, "replay_of": 3},
	}}
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if f.forbidden {
		answer(http.StatusForbidden, map[string]string{"error": r.URL.Path + " answers only callers on this machine (127.0.0.1 or ::1); start serve with --allow-remote-admin to allow others"})
		return
	}
	find := func(idText string) int {
		id, err := strconv.Atoi(idText)
		if err != nil {
			return -1
		}
		return slices.IndexFunc(f.dead, func(d map[string]any) bool { return d["id"] == id })
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/-/deadletters":
		answer(http.StatusOK, map[string]any{"dead_letters": f.dead, "count": len(f.dead)})
	case r.Method == http.MethodPost && r.URL.Path == "/-/deadletters/replay":
		if f.full {
			answer(http.StatusServiceUnavailable, map[string]string{"error": "store full"})
			return
		}
		var done []map[string]any
		for _, d := range f.dead {
			f.nextSeq++
			done = append(done, map[string]any{"id": d["id"], "seq": f.nextSeq})
		}
		f.dead = nil
		answer(http.StatusOK, map[string]any{"replayed": done, "count": len(done)})
	case r.Method == http.MethodDelete && r.URL.Path == "/-/deadletters":
		n := len(f.dead)
		f.dead = nil
		answer(http.StatusOK, map[string]any{"dropped": n})
	case strings.HasPrefix(r.URL.Path, "/-/deadletters/"):
		rest := strings.TrimPrefix(r.URL.Path, "/-/deadletters/")
		idText, action, _ := strings.Cut(rest, "/")
		i := find(idText)
		switch {
		case r.Method == http.MethodPost && action == "replay":
			if i < 0 {
				answer(http.StatusNotFound, map[string]string{"error": "no dead letter " + idText})
				return
			}
			if f.full {
				answer(http.StatusServiceUnavailable, map[string]string{"error": "store full"})
				return
			}
			f.nextSeq++
			answer(http.StatusOK, map[string]any{"replayed": f.dead[i]["id"], "seq": f.nextSeq})
			f.dead = slices.Delete(f.dead, i, i+1)
		case r.Method == http.MethodDelete && action == "":
			if i < 0 {
				answer(http.StatusNotFound, map[string]string{"error": "no dead letter " + idText})
				return
			}
			answer(http.StatusOK, map[string]any{"dropped": f.dead[i]["id"]})
			f.dead = slices.Delete(f.dead, i, i+1)
		default:
			answer(http.StatusNotFound, map[string]string{"error": "not found"})
		}
	default:
		answer(http.StatusNotFound, map[string]string{"error": "not found"})
	}
}

// runDeadLetters runs `threadgate deadletters ARGS` with the environment
// env and returns its exit code and output in the golden files' form, with
// addr written ADDR.
func runDeadLetters(env map[string]string, addr string, args ...string) string {
	var out, errOut bytes.Buffer
	code := deadLetters(args, func(k string) string { return env[k] }, &out, &errOut)
	s := fmt.Sprintf("$ threadgate deadletters %s\nexit %d\n--- stdout\n%s--- stderr\n%s",
		strings.Join(args, " "), code, out.String(), errOut.String())
	if addr != "" {
		s = strings.ReplaceAll(s, addr, "ADDR")
	}
	return s
}

func TestDeadLettersGolden(t *testing.T) {
	tests := []struct {
		golden    string
		args      []string
		forbidden bool
		full      bool
		empty     bool
		// wantRequests are the requests the fake must have received.
		wantRequests []string
	}{
		{golden: "deadletters-list.golden", args: []string{"list"}, wantRequests: []string{"GET /-/deadletters"}},
		{golden: "deadletters-list-empty.golden", args: []string{"list"}, empty: true},
		{golden: "deadletters-list-json.golden", args: []string{"list", "--json"}},
		{golden: "deadletters-replay.golden", args: []string{"replay", "7", "99", "12"},
			wantRequests: []string{"POST /-/deadletters/7/replay", "POST /-/deadletters/99/replay", "POST /-/deadletters/12/replay"}},
		{golden: "deadletters-replay-all.golden", args: []string{"replay", "--all"}, wantRequests: []string{"POST /-/deadletters/replay"}},
		{golden: "deadletters-replay-full.golden", args: []string{"replay", "7", "12"}, full: true, wantRequests: []string{"POST /-/deadletters/7/replay"}},
		{golden: "deadletters-drop.golden", args: []string{"drop", "12"}, wantRequests: []string{"DELETE /-/deadletters/12"}},
		{golden: "deadletters-drop-all.golden", args: []string{"drop", "--all"}, wantRequests: []string{"DELETE /-/deadletters"}},
		{golden: "deadletters-forbidden.golden", args: []string{"list"}, forbidden: true},
		{golden: "deadletters-usage-nothing.golden", args: []string{"replay"}, wantRequests: []string{}},
		{golden: "deadletters-usage-both.golden", args: []string{"drop", "7", "--all"}, wantRequests: []string{}},
		{golden: "deadletters-usage-bad-id.golden", args: []string{"drop", "seven"}, wantRequests: []string{}},
		{golden: "deadletters-usage-command.golden", args: []string{"show"}, wantRequests: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			fake := newFakeAdmin()
			fake.forbidden, fake.full = tt.forbidden, tt.full
			if tt.empty {
				fake.dead = nil
			}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			args := append(slices.Clone(tt.args), "--addr", addr)
			golden(t, tt.golden, runDeadLetters(nil, addr, args...))
			if tt.wantRequests != nil && !slices.Equal(fake.requests, tt.wantRequests) && !(len(tt.wantRequests) == 0 && len(fake.requests) == 0) {
				t.Errorf("requests = %q, want %q", fake.requests, tt.wantRequests)
			}
		})
	}
}

// TestDeadLettersAddrFromEnvironment checks that without --addr the command
// finds the gateway where serve listens by default: THREADGATE_ADDR, else
// :$PORT, with an unspecified host meaning this machine.
func TestDeadLettersAddrFromEnvironment(t *testing.T) {
	srv := httptest.NewServer(newFakeAdmin())
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, env := range []map[string]string{
		{"THREADGATE_ADDR": ":" + port},
		{"THREADGATE_ADDR": "0.0.0.0:" + port},
		{"PORT": port},
		{"THREADGATE_ADDR": srv.URL, "PORT": "1"},
	} {
		var out, errOut bytes.Buffer
		if code := deadLetters([]string{"list"}, func(k string) string { return env[k] }, &out, &errOut); code != exitOK {
			t.Errorf("env %v: exit %d, stderr %s", env, code, errOut.String())
		} else if !strings.Contains(out.String(), "2 dead letters") {
			t.Errorf("env %v: stdout %s", env, out.String())
		}
	}
}

// TestDeadLettersGatewayNotRunning checks the words when nothing listens
// at the address.
func TestDeadLettersGatewayNotRunning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	got := runDeadLetters(nil, addr, "list", "--addr", addr)
	for _, want := range []string{"exit 1", "no gateway answers at http://ADDR", "Is threadgate serve running on this machine?", "--addr HOST:PORT"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// TestDeadLettersUsage checks that the command is listed in threadgate's
// usage and that "deadletters -h" prints its own.
func TestDeadLettersUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "threadgate deadletters list|replay|drop") {
		t.Errorf("threadgate -h: exit %d, does not list deadletters:\n%s", code, out.String())
	}
	golden(t, "deadletters-help.golden", runDeadLetters(nil, "", "-h"))
}
