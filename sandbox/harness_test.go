package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/examples"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

const (
	testToken  = "sandbox-test-token"
	zendeskID  = "200646160103180"
	waitLimit  = poll.Timeout // for the browser's waits
	backPhrase = "You're back with the bot."
)

var testSecret = []byte("sandbox-test-secret")

// harness runs the real gateway, with a real Graph API client pointed at
// the emulator, and the emulator, on one httptest server.
type harness struct {
	t      *testing.T
	url    string
	emu    *Emulator
	gw     *gateway.Gateway
	client *messenger.Client
	file   *rules.File
}

type harnessOptions struct {
	rules         []byte // default: examples/rules.yaml
	emuSecret     []byte // default testSecret
	gatewaySecret []byte // default testSecret
	now           func() time.Time
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	if o.rules == nil {
		o.rules = examples.DefaultRules
	}
	if o.emuSecret == nil {
		o.emuSecret = testSecret
	}
	if o.gatewaySecret == nil {
		o.gatewaySecret = testSecret
	}
	f, err := rules.Parse("rules.yaml", o.rules)
	if err != nil {
		t.Fatalf("parsing rules: %v", err)
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	discard := slog.New(slog.DiscardHandler)
	emu := New(Options{
		Token:      testToken,
		AppSecret:  o.emuSecret,
		Apps:       func() map[string]string { return f.Apps },
		WebhookURL: base + "/webhook",
		Now:        o.now,
		RulesInfo:  func() any { return map[string]string{"hash": f.Hash, "path": f.Path} },
	})
	client := messenger.NewClient(messenger.Options{
		BaseURL:     emu.GraphURL(base),
		Tokens:      messenger.StaticToken(testToken),
		AppSecret:   o.emuSecret,
		Logger:      discard,
		MaxAttempts: 1,
		Now:         o.now,
	})
	gw := gateway.New(gateway.Config{
		Rules:     func() *engine.Set { return f.Set },
		Platform:  client,
		Secrets:   [][]byte{o.gatewaySecret},
		AppID:     emu.BotAppID(),
		OnHandled: emu.Record,
		Explain:   true,
		Logger:    discard,
		Now:       o.now,
	})
	r := gw.Router()
	emu.Mount(r)
	srv.Config.Handler = r
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	gw.Start(ctx)
	t.Cleanup(func() {
		emu.Close()
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		if err := gw.Drain(dctx); err != nil {
			t.Errorf("draining the gateway: %v", err)
		}
		cancel()
		srv.Close()
	})
	return &harness{t: t, url: base, emu: emu, gw: gw, client: client, file: f}
}

// applyProfile sets the rules file's profile on the emulated Page with the
// gateway's Graph client, as threadgate profile apply does.
func (h *harness) applyProfile() {
	h.t.Helper()
	want, ok := h.file.Profiles().For("")
	if !ok {
		h.t.Fatal("the rules file has no profile")
	}
	live, err := h.client.GetProfile(context.Background(), h.emu.PageID(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.client.ApplyProfilePlan(context.Background(), h.emu.PageID(), messenger.PlanProfile(want, live, false)); err != nil {
		h.t.Fatalf("applying the profile: %v", err)
	}
}

// do sends a JSON request and decodes the JSON answer.
func (h *harness) do(method, path string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		h.t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

// say makes the user write text and checks that the gateway accepted it;
// it returns the channel the bot got it on.
func (h *harness) say(user, text string) string {
	h.t.Helper()
	return h.inject("/sandbox/api/users/"+user+"/messages", map[string]string{"text": text})
}

func (h *harness) inject(path string, body any) string {
	h.t.Helper()
	status, out := h.do(http.MethodPost, path, body)
	if status != http.StatusOK {
		h.t.Fatalf("POST %s: HTTP %d %v", path, status, out)
	}
	if wh, ok := out["webhook"].(map[string]any); ok && wh["status"] != float64(200) {
		h.t.Fatalf("POST %s: the gateway answered %v", path, wh)
	}
	ch, _ := out["channel"].(string)
	return ch
}

// agent makes an agent app act and checks it was accepted.
func (h *harness) agent(app, action string, body map[string]string) map[string]any {
	h.t.Helper()
	status, out := h.do(http.MethodPost, "/sandbox/api/agents/"+app+"/"+action, body)
	if status != http.StatusOK {
		h.t.Fatalf("agent %s %s: HTTP %d %v", app, action, status, out)
	}
	return out
}

func (h *harness) state() State {
	h.emu.mu.Lock()
	defer h.emu.mu.Unlock()
	return h.emu.state(nil)
}

// waitFor waits until cond holds for the emulator's state and returns
// that state; when it times out, the failure shows the state last seen.
func (h *harness) waitFor(what string, cond func(State) bool) State {
	h.t.Helper()
	var s State
	poll.UntilNil(h.t, what, func() error {
		if s = h.state(); cond(s) {
			return nil
		}
		return stateDump(s)
	})
	return s
}

// stateDump is the error of a wait: the state it saw, formatted only when
// the wait fails.
type stateDump State

func (d stateDump) Error() string { return "state:\n" + dumpState(State(d)) }

func dumpState(s State) string {
	var b strings.Builder
	for _, th := range s.Threads {
		fmt.Fprintf(&b, "thread %s owner=%s\n", th.User, th.Owner)
		for _, it := range th.Items {
			fmt.Fprintf(&b, "  %s %s: %q\n", it.From, it.App, it.Text)
		}
	}
	for _, l := range s.Log {
		fmt.Fprintf(&b, "log %d %s %s: %s %s\n", l.Seq, l.Kind, l.User, l.Summary, l.Error)
	}
	return b.String()
}

func threadOf(s State, user string) *Thread {
	for i := range s.Threads {
		if s.Threads[i].User == user {
			return &s.Threads[i]
		}
	}
	return nil
}

// said reports whether the thread has a message from `from` with the text.
func said(s State, user, from, text string) bool {
	th := threadOf(s, user)
	if th == nil {
		return false
	}
	for _, it := range th.Items {
		if it.From == from && it.Text == text {
			return true
		}
	}
	return false
}

// report returns the gateway's report on the user's event that matches.
func report(s State, user string, match func(*ReportLog) bool) *ReportLog {
	for _, l := range s.Log {
		if l.Kind == LogReport && l.User == user && match(l.Report) {
			return l.Report
		}
	}
	return nil
}

// webhooks returns the delivered webhooks of the user with the event kind.
func webhooks(s State, user, kind string) []*WebhookLog {
	var out []*WebhookLog
	for _, l := range s.Log {
		if l.Kind == LogWebhook && l.User == user && l.Webhook.Event == kind && l.Webhook.Status != 0 {
			out = append(out, l.Webhook)
		}
	}
	return out
}

func ownerIs(user, owner string) func(State) bool {
	return func(s State) bool {
		th := threadOf(s, user)
		return th != nil && th.Owner == owner
	}
}

// decodeEvent decodes a logged webhook body and returns its only event and
// whether it was on standby.
func decodeEvent(t *testing.T, body []byte) (*messenger.Event, bool) {
	t.Helper()
	w, err := messenger.Decode(body)
	if err != nil {
		t.Fatalf("the emulator sent an undecodable webhook: %v\n%s", err, body)
	}
	ev := w.Events()
	if w.Object != "page" || len(ev) != 1 {
		t.Fatalf("want one event of object page, got %s", body)
	}
	return ev[0].Event, ev[0].Standby
}
