package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/threadgate/threadgate/internal/loopback"

	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/reload"
)

func TestParseServeWatchFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		watch   reload.WatchMode
		remote  bool
		wantErr string
	}{
		{name: "default", watch: reload.WatchFS},
		{name: "poll", args: []string{"--watch=poll", "--watch-interval=2s"}, watch: reload.WatchPoll},
		{name: "env", env: map[string]string{"THREADGATE_WATCH": "off"}, watch: reload.WatchOff},
		{name: "flag wins over env", args: []string{"--watch", "fs"}, env: map[string]string{"THREADGATE_WATCH": "off"}, watch: reload.WatchFS},
		{name: "remote admin", args: []string{"--allow-remote-admin"}, watch: reload.WatchFS, remote: true},
		{name: "unknown mode", args: []string{"--watch=inotify"}, wantErr: `--watch: unknown watch mode "inotify", expected fs, poll or off`},
		{name: "negative interval", args: []string{"--watch-interval=-1s"}, wantErr: "--watch-interval: -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServe(tt.args, env(tt.env), io.Discard, false)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Watch != tt.watch || c.AllowRemoteAdmin != tt.remote {
				t.Errorf("Watch = %q, AllowRemoteAdmin = %v", c.Watch, c.AllowRemoteAdmin)
			}
		})
	}
}

func TestSchemaCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run([]string{"schema"}, &out, io.Discard); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "rules", "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Error("threadgate schema differs from rules/schema.json (run go test ./rules -update)")
	}
	if code := run([]string{"schema", "extra"}, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("schema with an argument: exit %d", code)
	}
}

// getJSON fetches a URL and decodes its JSON body into v.
func getJSON(t *testing.T, method, url string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func replyRules(text string) string {
	return "version: 1\nrules:\n  - name: answer\n    do: [reply: \"" + text + "\"]\n"
}

// TestServeReloads runs the real server on a rules file in a temp dir and
// changes the file: a good version is picked up by the directory watch, a
// broken one is refused while /readyz stays 200, /-/rules and the metrics
// say so, and SIGHUP and POST /-/reload reload. Not parallel: the SIGHUP
// goes to the whole test process.
func TestServeReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, []byte(replyRules("v1")), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := loopback.FreeAddr(t)
	cfg, err := parseServe([]string{"--addr", addr, "--rules", path}, env(nil), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, cfg)
	base := srv.base

	var st reload.Status
	hash := func() string { getJSON(t, "GET", base+"/-/rules", &st); return st.Hash }
	first := hash()
	if st.Path != path || st.RuleCount != 1 || st.Watch != reload.WatchFS {
		t.Fatalf("status %+v", st)
	}

	// A good change, saved by rename as editors do.
	tmp := filepath.Join(dir, ".rules.yaml.tmp")
	os.WriteFile(tmp, []byte(replyRules("v2")+"  - name: second\n    do: [reply: x]\n"), 0o644)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the new rules", func() bool { return hash() != first && st.RuleCount == 2 })
	second := st.Hash

	// A broken change: refused, the old rules stay, readiness too.
	os.WriteFile(path, []byte("version: 1\nrules:\n  - name: answer\n    do: [replie: x]\n"), 0o644)
	poll.Until(t, "the refusal", func() bool { hash(); return !st.LastAttemptOK })
	if st.Hash != second || len(st.LastError) != 1 || !strings.HasPrefix(st.LastError[0], path+":4:10: ") {
		t.Errorf("status after a broken file: %+v", st)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d after a refused file", code)
	}
	_, metrics := get(t, base+"/metrics")
	if !strings.Contains(metrics, "threadgate_rules_last_reload_successful 0") || !strings.Contains(metrics, `threadgate_rules_info{hash="`+second+`"} 1`) {
		t.Errorf("metrics after a refused file:\n%s", grep(metrics, "threadgate_rules"))
	}
	if !strings.Contains(srv.log(), path+":4:10: ") {
		t.Errorf("the log does not name the error's position:\n%s", srv.log())
	}

	// POST /-/reload reports the same errors at once.
	var reloaded reload.Status
	if code := getJSON(t, "POST", base+"/-/reload", &reloaded); code != http.StatusUnprocessableEntity || len(reloaded.LastError) != 1 {
		t.Errorf("POST /-/reload = %d %+v", code, reloaded)
	}

	// Fixed: picked up; then SIGHUP reloads the same content again.
	os.WriteFile(path, []byte(replyRules("v3")), 0o644)
	poll.Until(t, "the fixed rules", func() bool { hash(); return st.LastAttemptOK && st.RuleCount == 1 })
	_, metrics = get(t, base+"/metrics")
	if !strings.Contains(metrics, "threadgate_rules_last_reload_successful 1") || !strings.Contains(metrics, "threadgate_rules_loaded 1") {
		t.Errorf("metrics after the fix:\n%s", grep(metrics, "threadgate_rules"))
	}
	loadedAt := st.LoadedAt
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the SIGHUP reload", func() bool { hash(); return st.LoadedAt.After(loadedAt) })

	// Explain on the running gateway.
	req, _ := http.NewRequest("POST", base+"/-/explain", strings.NewReader(`{"message": "hi"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"text":"v3"`) {
		t.Errorf("POST /-/explain = %d %s", resp.StatusCode, b)
	}
}
