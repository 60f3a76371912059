package reload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/ruletest"
)

// testToken is the Page access token of the gateway under test; the fake
// Graph API refuses any other.
const testToken = "reload-test-token"

// twoRuleFile answers every message with two replies, from two rules,
// both naming the version: an event evaluated against a mix of two
// versions would show two different names.
func twoRuleFile(version string) string {
	return fmt.Sprintf(`version: 1
apps:
  zendesk: 200646160103180
rules:
  - name: first
    do: [reply: "first %[1]s"]
    continue: true
  - name: second-%[1]s
    do: [reply: "second %[1]s"]
  - name: agent
    match: {text: chat with agent}
    do: [pass_thread_control: zendesk]
`, version)
}

// adminServer runs a gateway whose rules come from a Manager of a file in
// a temp dir, with the admin endpoints mounted; the gateway sends through
// a real Graph API client to a fake Graph API.
type adminServer struct {
	path    string
	manager *Manager
	graph   *fakegraph.Server
	srv     *httptest.Server
	router  http.Handler
}

func newAdminServer(t *testing.T, opts AdminOptions) *adminServer {
	t.Helper()
	dir := t.TempDir()
	// The fake is started first so that it closes last, after the
	// gateway has drained.
	a := &adminServer{path: filepath.Join(dir, "rules.yaml"), graph: fakegraph.New(t, fakegraph.Options{Tokens: []string{testToken}})}
	if err := os.WriteFile(a.path, []byte(twoRuleFile("v0")), 0o644); err != nil {
		t.Fatal(err)
	}
	a.manager = NewManager(a.path, Options{})
	if err := a.manager.Reload(); err != nil {
		t.Fatal(err)
	}
	client := messenger.NewClient(messenger.Options{
		BaseURL:     a.graph.BaseURL(),
		Tokens:      messenger.StaticToken(testToken),
		BaseBackoff: time.Millisecond,
		MaxBackoff:  2 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	gw := gateway.New(gateway.Config{Rules: a.manager.Rules, Platform: client, QueueSize: 100000, Workers: 8})
	ctx, cancel := context.WithCancel(context.Background())
	gw.Start(ctx)
	router := gw.Router()
	MountAdmin(router, a.manager, opts)
	a.router = router
	a.srv = httptest.NewServer(router)
	t.Cleanup(func() {
		a.srv.Close()
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		_ = gw.Drain(dctx)
		cancel()
	})
	return a
}

func (a *adminServer) write(t *testing.T, content string) {
	t.Helper()
	tmp := a.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, a.path); err != nil {
		t.Error(err)
	}
}

func (a *adminServer) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func webhook(user, mid, text string) string {
	return fmt.Sprintf(`{"object":"page","entry":[{"id":"111","time":1,"messaging":[{"sender":{"id":%q},"recipient":{"id":"111"},"timestamp":1,"message":{"mid":%q,"text":%q}}]}]}`, user, mid, text)
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(fakeclock.Start)
	a := newAdminServer(t, AdminOptions{Now: clock.Now})

	code, body := a.do(t, "GET", "/-/rules", "")
	var st Status
	if err := json.Unmarshal(body, &st); err != nil || code != 200 {
		t.Fatalf("GET /-/rules = %d %s", code, body)
	}
	if st.Path != a.path || st.RuleCount != 3 || st.Hash != a.manager.Current().Hash || !st.LastAttemptOK || st.LastError == nil || st.LoadedAt.IsZero() {
		t.Errorf("status %+v", st)
	}

	// A broken file: 422 with every error; the old rules and /readyz stay.
	a.write(t, "version: 1\nrules:\n  - name: x\n    do: [replie: hi]\n  - name: x\n    do: [reply: hi]\n")
	code, body = a.do(t, "POST", "/-/reload", "")
	if err := json.Unmarshal(body, &st); err != nil || code != http.StatusUnprocessableEntity {
		t.Fatalf("POST /-/reload of a broken file = %d %s", code, body)
	}
	if len(st.LastError) != 2 || !strings.HasPrefix(st.LastError[0], a.path+":4:10: ") || !strings.HasPrefix(st.LastError[1], a.path+":5:11: ") || st.RuleCount != 3 || st.LastAttemptOK {
		t.Errorf("status after a broken file: %+v", st)
	}
	if code, body := a.do(t, "GET", "/readyz", ""); code != 200 {
		t.Errorf("/readyz = %d %s after a failed reload, want 200", code, body)
	}

	a.write(t, twoRuleFile("v1"))
	if code, body = a.do(t, "POST", "/-/reload", ""); code != 200 {
		t.Fatalf("POST /-/reload = %d %s", code, body)
	}
	if err := json.Unmarshal(body, &st); err != nil || len(st.LastError) != 0 || st.Hash != a.manager.Current().Hash {
		t.Errorf("status after a good reload: %s", body)
	}

	// Explain: the same as the CLI's JSON, and nothing is sent.
	code, body = a.do(t, "POST", "/-/explain", `{"message": "Chat with AGENT!"}`)
	var x ruletest.Explanation
	if err := json.Unmarshal(body, &x); err != nil || code != 200 {
		t.Fatalf("POST /-/explain = %d %s", code, body)
	}
	if len(x.Fired) != 2 || x.Fired[0].Rule != "first" || x.Fired[1].Rule != "second-v1" || x.Fired[1].Actions[0].Fields["text"] != "second v1" ||
		x.Rules == nil || x.Rules.Path != a.path || x.NotTried != 1 || !x.Event.At.Equal(fakeclock.Start) {
		t.Errorf("explanation %s", body)
	}
	if calls := a.graph.Calls(); len(calls) != 0 {
		t.Errorf("explain made %d Graph API calls, the first to %s", len(calls), calls[0].Path)
	}
	for _, bad := range []struct{ body, want string }{
		{``, "the body is empty"},
		{`{"mesage": "hi"}`, `unknown field`},
		{`{"postback": "X", "message": "hi"}`, "postback: an event is either a message"},
		{`{"message": "hi"} {}`, "more than one JSON value"},
	} {
		code, body := a.do(t, "POST", "/-/explain", bad.body)
		if code != http.StatusBadRequest || !strings.Contains(string(body), bad.want) {
			t.Errorf("POST /-/explain %q = %d %s, want 400 with %q", bad.body, code, body, bad.want)
		}
	}
}

// TestAdminLoopbackOnly checks that every endpoint refuses other machines,
// whatever X-Forwarded-For says, unless allowed.
func TestAdminLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		a := newAdminServer(t, AdminOptions{AllowRemote: allow})
		for _, tc := range []struct{ method, path, body string }{
			{"POST", "/-/reload", ""},
			{"POST", "/-/explain", `{"message": "hi"}`},
			{"GET", "/-/rules", ""},
		} {
			for _, remote := range []string{"203.0.113.7:4000", "[2001:db8::1]:4000", "127.0.0.1:4000", "[::1]:4000"} {
				req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
				req.RemoteAddr = remote
				req.Header.Set("X-Forwarded-For", "127.0.0.1")
				rec := httptest.NewRecorder()
				a.router.ServeHTTP(rec, req)
				local := strings.HasPrefix(remote, "127.") || strings.HasPrefix(remote, "[::1]")
				want := 200
				if !allow && !local {
					want = http.StatusForbidden
				}
				if rec.Code != want {
					t.Errorf("allow=%v %s %s from %s = %d %s, want %d", allow, tc.method, tc.path, remote, rec.Code, rec.Body, want)
				}
			}
		}
	}
}

// TestReloadUnderLoad posts webhooks from many goroutines while the rules
// file is replaced and reloaded in a loop (good versions and broken ones):
// every request is answered 200, every event is handled, each event's two
// replies come from one version of the file, and more than one version
// answered. The posters post at least minEvents events, and go on until
// three versions have answered (at most maxEvents events), so a gateway
// that kept the first rules it saw, or a manager that never swapped, fails
// the test.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	a := newAdminServer(t, AdminOptions{})
	const posters, minEvents, maxEvents, wantVersions = 8, 800, 4000, 3

	// answered counts the versions whose first reply reached the Graph
	// API so far.
	answered := func() int {
		seen := map[string]bool{}
		for _, c := range a.graph.CallsTo(fakegraph.PathMessages) {
			if text := c.Text(); strings.HasPrefix(text, "first ") {
				seen[text] = true
			}
		}
		return len(seen)
	}

	stop := make(chan struct{})
	var reloads atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			content := twoRuleFile(fmt.Sprintf("v%d", i))
			if i%5 == 0 {
				content = "version: 1\nrules: [oops\n"
			}
			a.write(t, content)
			_ = a.manager.Reload()
			reloads.Add(1)
		}
	})
	var failed, events atomic.Int64
	var posted sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for p := range posters {
		posted.Go(func() {
			for i := 0; ; i++ {
				if i%10 == 0 && events.Load() >= minEvents && answered() >= wantVersions {
					return
				}
				if events.Add(1) > maxEvents {
					events.Add(-1)
					return
				}
				user := fmt.Sprintf("u%d-%d", p, i)
				resp, err := client.Post(a.srv.URL+"/webhook", "application/json", strings.NewReader(webhook(user, "m-"+user, "ping")))
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		})
	}
	posted.Wait()
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d webhook requests failed during reloads", n)
	}
	n := events.Load()
	// Each event is one user's: the user's texts are that event's replies,
	// in the order sent.
	replies := map[string][]string{}
	for _, c := range a.graph.WaitCalls(t, fakegraph.PathMessages, int(2*n)) {
		replies[c.User] = append(replies[c.User], c.Text())
	}
	if len(replies) != int(n) {
		t.Fatalf("%d users got replies, want %d: one per event", len(replies), n)
	}
	versions := map[string]bool{}
	for user, texts := range replies {
		if len(texts) != 2 || !strings.HasPrefix(texts[0], "first ") || texts[1] != "second "+strings.TrimPrefix(texts[0], "first ") {
			t.Fatalf("user %s got %q: a mix of two versions", user, texts)
		}
		versions[texts[0]] = true
	}
	if len(versions) < 2 {
		t.Fatalf("%d events answered by %d version of the rules during %d reloads, want more than one: the reloaded rules never answered", n, len(versions), reloads.Load())
	}
	t.Logf("%d events answered by %d versions during %d reloads", n, len(versions), reloads.Load())
}
