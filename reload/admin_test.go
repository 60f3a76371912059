package reload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/threadgate/threadgate/messenger"

	"github.com/threadgate/threadgate/rules/ruletest"
)

// recordingPlatform records the texts sent to each user.
type recordingPlatform struct {
	mu    sync.Mutex
	texts map[string][]string
	sent  atomic.Int64
}

func (p *recordingPlatform) SendMessage(_ context.Context, to messenger.Recipient, msg *messenger.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.texts == nil {
		p.texts = map[string][]string{}
	}
	p.texts[to.UserID] = append(p.texts[to.UserID], msg.Text)
	p.sent.Add(1)
	return nil
}
func (p *recordingPlatform) SenderAction(context.Context, messenger.Recipient, string) error {
	return nil
}
func (p *recordingPlatform) PassThreadControl(context.Context, messenger.Recipient, string, string) error {
	return nil
}
func (p *recordingPlatform) TakeThreadControl(context.Context, messenger.Recipient, string) error {
	return nil
}
func (p *recordingPlatform) RequestThreadControl(context.Context, messenger.Recipient, string) error {
	return nil
}
func (p *recordingPlatform) ReleaseThreadControl(context.Context, messenger.Recipient) error {
	return nil
}

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
// a temp dir, with the admin endpoints mounted.
type adminServer struct {
	path     string
	manager  *Manager
	platform *recordingPlatform
	srv      *httptest.Server
	router   http.Handler
}

func newAdminServer(t *testing.T, opts AdminOptions) *adminServer {
	t.Helper()
	dir := t.TempDir()
	a := &adminServer{path: filepath.Join(dir, "rules.yaml"), platform: &recordingPlatform{}}
	if err := os.WriteFile(a.path, []byte(twoRuleFile("v0")), 0o644); err != nil {
		t.Fatal(err)
	}
	a.manager = NewManager(a.path, Options{})
	if err := a.manager.Reload(); err != nil {
		t.Fatal(err)
	}
	gw := gateway.New(gateway.Config{Rules: a.manager.Rules, Platform: a.platform, QueueSize: 100000, Workers: 8})
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
	a := newAdminServer(t, AdminOptions{Now: func() time.Time { return time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC) }})

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
		x.Rules == nil || x.Rules.Path != a.path || x.NotTried != 1 || !x.Event.At.Equal(time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("explanation %s", body)
	}
	if n := a.platform.sent.Load(); n != 0 {
		t.Errorf("explain sent %d messages", n)
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
	a := newAdminServer(t, AdminOptions{})
	const posters, minEvents, maxEvents, wantVersions = 8, 800, 4000, 3

	// answered counts the versions that answered an event so far.
	answered := func() int {
		a.platform.mu.Lock()
		defer a.platform.mu.Unlock()
		seen := map[string]bool{}
		for _, texts := range a.platform.texts {
			if len(texts) > 0 {
				seen[texts[0]] = true
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
	deadline := time.Now().Add(20 * time.Second)
	for a.platform.sent.Load() < 2*n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d replies sent", a.platform.sent.Load(), 2*n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.platform.mu.Lock()
	defer a.platform.mu.Unlock()
	versions := map[string]bool{}
	for user, texts := range a.platform.texts {
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
