package fakegraph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/messenger"
)

const (
	token  = "fake-graph-test-token"
	secret = "fake-graph-test-secret"
	page   = "111222333444555"
	zendex = "200646160103180"
)

// client is a real Graph API client for the fake, with one attempt per call
// so that every answer reaches the test.
func client(g *fakegraph.Server, mod func(*messenger.Options)) *messenger.Client {
	o := messenger.Options{
		BaseURL:     g.BaseURL(),
		Tokens:      messenger.StaticToken(token),
		MaxAttempts: 1,
		Logger:      slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&o)
	}
	return messenger.NewClient(o)
}

func to(user string) messenger.Recipient { return messenger.Recipient{PageID: page, UserID: user} }

// raw makes a request without the messenger client and returns the status
// and the body.
func raw(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// graphErr returns the Graph error of err, or fails the test.
func graphErr(t *testing.T, err error) *messenger.GraphError {
	t.Helper()
	var ge *messenger.GraphError
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v, want a Graph API error", err)
	}
	return ge
}

// TestUsualAnswers makes every call the messenger client knows and checks
// what the fake recorded and that the client understood the answer.
func TestUsualAnswers(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{Tokens: []string{token}})
	c := client(g, nil)
	ctx := t.Context()
	g.SetThreadOwner("u2", zendex)
	tests := []struct {
		name   string
		call   func() error
		method string
		path   string
		user   string
		check  func(fakegraph.Call) string // "" when the call is as expected
	}{
		{"message", func() error { return c.SendMessage(ctx, to("u1"), &messenger.Message{Text: "hello"}) },
			"POST", fakegraph.PathMessages, "u1", func(c fakegraph.Call) string {
				if c.Text() != "hello" || c.Header.Get("Content-Type") != "application/json" {
					return fmt.Sprintf("text %q, Content-Type %q", c.Text(), c.Header.Get("Content-Type"))
				}
				return ""
			}},
		{"sender action", func() error { return c.SenderAction(ctx, to("u1"), messenger.TypingOn) },
			"POST", fakegraph.PathMessages, "u1", func(c fakegraph.Call) string {
				if c.Field("sender_action") != "typing_on" || c.Text() != "" {
					return fmt.Sprintf("body %v", c.Body)
				}
				return ""
			}},
		{"pass", func() error { return c.PassThreadControl(ctx, to("u1"), zendex, "billing") },
			"POST", fakegraph.PathPass, "u1", func(c fakegraph.Call) string {
				if c.Field("target_app_id") != zendex || c.Field("metadata") != "billing" {
					return fmt.Sprintf("body %v", c.Body)
				}
				return ""
			}},
		{"take", func() error { return c.TakeThreadControl(ctx, to("u1"), "") }, "POST", fakegraph.PathTake, "u1", nil},
		{"request", func() error { return c.RequestThreadControl(ctx, to("u1"), "") }, "POST", fakegraph.PathRequest, "u1", nil},
		{"release", func() error { return c.ReleaseThreadControl(ctx, to("u1")) }, "POST", fakegraph.PathRelease, "u1", nil},
		{"idle thread", func() error {
			if owner, err := c.ThreadOwner(ctx, to("u1")); err != nil || owner != "" {
				return fmt.Errorf("owner %q, %v; want idle", owner, err)
			}
			return nil
		}, "GET", fakegraph.PathThreadOwner, "u1", nil},
		{"owned thread", func() error {
			if owner, err := c.ThreadOwner(ctx, to("u2")); err != nil || owner != zendex {
				return fmt.Errorf("owner %q, %v; want %s", owner, err, zendex)
			}
			return nil
		}, "GET", fakegraph.PathThreadOwner, "u2", nil},
	}
	for i, tt := range tests {
		if err := tt.call(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		calls := g.Calls()
		if len(calls) != i+1 {
			t.Fatalf("%s: %d calls recorded, want %d", tt.name, len(calls), i+1)
		}
		got := calls[i]
		if got.Seq != i+1 || got.Method != tt.method || got.Path != tt.path || got.Version != fakegraph.Version || got.User != tt.user || got.Token != token {
			t.Errorf("%s: recorded #%d %s %s (version %q) for %q with token %q, want #%d %s %s (version %s) for %q",
				tt.name, got.Seq, got.Method, got.Path, got.Version, got.User, got.Token, i+1, tt.method, tt.path, fakegraph.Version, tt.user)
		}
		if tt.check != nil {
			if msg := tt.check(got); msg != "" {
				t.Errorf("%s: %s", tt.name, msg)
			}
		}
	}
	if got := g.Texts("u1"); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("Texts(u1) = %q, want [hello]", got)
	}
	if n := len(g.CallsTo(fakegraph.PathThreadOwner)); n != 2 {
		t.Errorf("%d calls to thread_owner, want 2", n)
	}
}

func TestUsualAnswerBodies(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{})
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"message", "POST", "/v26.0/me/messages", `{"recipient":{"id":"u1"},"message":{"text":"hi"}}`, 200, `{"message_id":"m_fake_1","recipient_id":"u1"}`},
		{"sender action", "POST", "/v26.0/me/messages", `{"recipient":{"id":"u1"},"sender_action":"mark_seen"}`, 200, `{"recipient_id":"u1"}`},
		{"handover edge", "POST", "/v26.0/me/pass_thread_control", `{"recipient":{"id":"u1"},"target_app_id":"1"}`, 200, `{"success":true}`},
		{"no version in the path", "POST", "/me/release_thread_control", `{"recipient":{"id":"u1"}}`, 200, `{"success":true}`},
		{"idle thread", "GET", "/v26.0/me/thread_owner?recipient=u1", ``, 200, `{"data":[]}`},
		{"unknown path", "POST", "/v26.0/me/feed", `{}`, 400, `{"error":{"code":2500,"fbtrace_id":"FakeTrace0001","is_transient":false,"message":"Unknown path components: /me/feed","type":"OAuthException"}}`},
		{"wrong method", "GET", "/v26.0/me/messages", ``, 400, `{"error":{"code":2500,"fbtrace_id":"FakeTrace0002","is_transient":false,"message":"Unknown path components: /me/messages","type":"OAuthException"}}`},
	}
	for _, tt := range tests {
		status, body := raw(t, tt.method, g.URL+tt.path, tt.body)
		if status != tt.status || body != tt.want {
			t.Errorf("%s: %d %s\nwant %d %s", tt.name, status, body, tt.status, tt.want)
		}
	}
	if c := g.Calls()[3]; c.Path != fakegraph.PathRelease || c.Version != "" {
		t.Errorf("a path without version was recorded as %q, version %q", c.Path, c.Version)
	}
}

// TestPrecedence checks that scripts answer first, in turn and once each,
// then the latest fault that fits, then the usual answer.
func TestPrecedence(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{})
	c := client(g, nil)
	g.Script(fakegraph.Match{Path: fakegraph.PathMessages, User: "flaky"}, fakegraph.Fail(500, 2, 0), fakegraph.Fail(400, 613, 0))
	clearAll := g.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Fail(503, 1, 0))
	clearBoom := g.Fault(fakegraph.Match{User: "boom"}, fakegraph.Fail(400, 100, 2018001))
	send := func(user string) int {
		err := c.SendMessage(t.Context(), to(user), &messenger.Message{Text: "x"})
		if err == nil {
			return 0
		}
		return graphErr(t, err).Code
	}
	steps := []struct {
		user string
		want int // the Graph error code, 0 for success
	}{
		{"flaky", 2},   // the script's first answer
		{"other", 1},   // the fault for every message
		{"flaky", 613}, // the script's second answer
		{"flaky", 1},   // the script is used up: the fault
		{"boom", 100},  // the later fault wins over the earlier
	}
	for i, s := range steps {
		if got := send(s.user); got != s.want {
			t.Errorf("step %d (%s): code %d, want %d", i+1, s.user, got, s.want)
		}
	}
	clearAll()
	clearAll() // clearing twice is harmless
	if got := send("flaky"); got != 0 {
		t.Errorf("after the outage was cleared: code %d, want success", got)
	}
	if got := c.PassThreadControl(t.Context(), to("boom"), zendex, ""); got == nil || graphErr(t, got).Code != 100 {
		t.Errorf("a user fault applies to every path: %v", got)
	}
	clearBoom()
	if err := c.PassThreadControl(t.Context(), to("boom"), zendex, ""); err != nil {
		t.Errorf("after every fault was cleared: %v", err)
	}
}

func TestGraphErrorBody(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{})
	g.Script(fakegraph.Match{},
		fakegraph.GraphError{Status: 500, Code: 2, Message: "Service temporarily unavailable", Transient: true, FBTraceID: "Tretry"}.Answer(),
		fakegraph.Fail(0, 10, 2018300),
		fakegraph.Fail(0, 10, 2018300),
	)
	status, body := raw(t, "POST", g.BaseURL()+"/me/messages", `{"recipient":{"id":"u1"},"message":{"text":"x"}}`)
	want := `{"error":{"code":2,"fbtrace_id":"Tretry","is_transient":true,"message":"Service temporarily unavailable","type":"OAuthException"}}`
	if status != 500 || body != want {
		t.Errorf("got %d %s\nwant 500 %s", status, body, want)
	}
	c := client(g, nil)
	var traces []string
	for range 2 {
		ge := graphErr(t, c.SendMessage(t.Context(), to("u1"), &messenger.Message{Text: "x"}))
		if ge.HTTPStatus != 400 || ge.Code != 10 || ge.Subcode != 2018300 || ge.Type != "OAuthException" || ge.Message != "(#10) fake Graph API error" {
			t.Errorf("the client read %+v", ge)
		}
		traces = append(traces, ge.FBTraceID)
	}
	if traces[0] == "" || traces[0] == traces[1] {
		t.Errorf("fbtrace_ids %q, want a new one for each answer", traces)
	}
}

func TestRawAnswers(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{})
	g.Script(fakegraph.Match{},
		fakegraph.Answer{Status: 500},
		fakegraph.Answer{Status: 502, Body: "<html>proxy</html>"},
		fakegraph.Answer{Body: `{"success":false}`},
		fakegraph.Answer{Status: 200},
		fakegraph.Answer{Delay: time.Millisecond},
	)
	for _, want := range []struct {
		status int
		body   string
	}{{500, ``}, {502, "<html>proxy</html>"}, {200, `{"success":false}`}, {200, ``}, {200, `{"recipient_id":"u1"}`}} {
		status, body := raw(t, "POST", g.BaseURL()+"/me/messages", `{"recipient":{"id":"u1"},"sender_action":"typing_on"}`)
		if status != want.status || body != want.body {
			t.Errorf("got %d %q, want %d %q", status, body, want.status, want.body)
		}
	}
}

func TestTokensAndProof(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{Tokens: []string{token, "second-token"}, AppSecret: []byte(secret)})
	tests := []struct {
		name     string
		tokens   messenger.TokenSource
		secret   string
		wantCode int // 0 for success
	}{
		{"token and proof", messenger.StaticToken(token), secret, 0},
		{"another accepted token", messenger.StaticToken("second-token"), secret, 0},
		{"unknown token", messenger.StaticToken("not-a-token"), secret, 190},
		{"no proof", messenger.StaticToken(token), "", 100},
		{"proof of another secret", messenger.StaticToken(token), "another-secret", 100},
	}
	for _, tt := range tests {
		c := client(g, func(o *messenger.Options) {
			o.Tokens = tt.tokens
			o.AppSecret = []byte(tt.secret)
		})
		err := c.ReleaseThreadControl(t.Context(), to("u1"))
		switch {
		case tt.wantCode == 0 && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantCode != 0 && graphErr(t, err).Code != tt.wantCode:
			t.Errorf("%s: %v, want code %d", tt.name, err, tt.wantCode)
		}
	}
	if status, body := raw(t, "POST", g.BaseURL()+"/me/release_thread_control", `{"recipient":{"id":"u1"}}`); status != 400 || !strings.Contains(body, `"code":104`) {
		t.Errorf("no token: %d %s, want code 104", status, body)
	}
	if n := len(g.Calls()); n != len(tests)+1 {
		t.Errorf("%d calls recorded, want every one (%d), refused or not", n, len(tests)+1)
	}
}

func TestConnectionReset(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{})
	c := client(g, nil)
	clear := g.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Answer{Reset: true})
	err := c.SendMessage(t.Context(), to("u1"), &messenger.Message{Text: "x"})
	var ge *messenger.GraphError
	if err == nil || errors.As(err, &ge) {
		t.Fatalf("err = %v, want a network error", err)
	}
	if !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "EOF") {
		t.Errorf("err = %v, want a reset connection", err)
	}
	clear()
	if err := c.SendMessage(t.Context(), to("u1"), &messenger.Message{Text: "x"}); err != nil {
		t.Errorf("after the fault was cleared: %v", err)
	}
}

// TestHang checks the three ends of a hang: Release, clearing the fault,
// and the client giving up.
func TestHang(t *testing.T) {
	tests := []struct {
		name    string
		end     func(g *fakegraph.Server, clear func(), cancel context.CancelFunc)
		wantErr error
	}{
		{"released", func(g *fakegraph.Server, _ func(), _ context.CancelFunc) { g.Release() }, nil},
		{"fault cleared", func(_ *fakegraph.Server, clear func(), _ context.CancelFunc) { clear() }, nil},
		{"client gives up", func(_ *fakegraph.Server, _ func(), cancel context.CancelFunc) { cancel() }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := fakegraph.New(t, fakegraph.Options{})
			c := client(g, nil)
			clear := g.Fault(fakegraph.Match{}, fakegraph.Answer{Hang: true})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.TakeThreadControl(ctx, to("u1"), "") }()
			g.WaitCalls(t, fakegraph.PathTake, 1)
			select {
			case err := <-done:
				t.Fatalf("the call returned while the server hangs: %v", err)
			default:
			}
			tt.end(g, clear, cancel)
			if err := <-done; !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestHangingCallsEndWithTheTest leaves a call hanging: the cleanup must
// release it, or closing the server would wait for it.
func TestHangingCallsEndWithTheTest(t *testing.T) {
	done := make(chan error, 1)
	t.Run("hangs", func(t *testing.T) {
		g := fakegraph.New(t, fakegraph.Options{})
		g.Fault(fakegraph.Match{}, fakegraph.Answer{Hang: true})
		c := client(g, nil)
		go func() { done <- c.ReleaseThreadControl(context.Background(), to("u1")) }()
		g.WaitCalls(t, "", 1)
	})
	if err := <-done; err != nil {
		t.Errorf("the hanging call ended with %v, want the usual answer", err)
	}
}

func TestDelayHoldsTheAnswerBack(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{})
	g.Script(fakegraph.Match{}, fakegraph.Answer{Delay: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- client(g, nil).SendMessage(ctx, to("u1"), &messenger.Message{Text: "x"}) }()
	g.WaitCalls(t, fakegraph.PathMessages, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the delayed call to be canceled", err)
	}
	// The script is used up: the next call is answered at once.
	if err := client(g, nil).SendMessage(t.Context(), to("u1"), &messenger.Message{Text: "y"}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentUse sends from many goroutines while faults go on and off;
// under -race it shows the server is safe to share, and no call is lost or
// reordered for one user.
func TestConcurrentUse(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{})
	c := client(g, func(o *messenger.Options) { o.MaxAttempts = 1 })
	const users, each = 6, 20
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			for i := range each {
				_ = c.SendMessage(t.Context(), to(fmt.Sprint("u", u)), &messenger.Message{Text: fmt.Sprint(i)})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			clear := g.Fault(fakegraph.Match{}, fakegraph.Answer{Status: 500, Jitter: time.Millisecond})
			g.Script(fakegraph.Match{User: "u1"}, fakegraph.Fail(400, 613, 0))
			clear()
			g.Release()
		}
	})
	wg.Wait()
	g.WaitCalls(t, fakegraph.PathMessages, users*each)
	for u := range users {
		got := g.Texts(fmt.Sprint("u", u))
		if len(got) != each {
			t.Fatalf("user u%d: %d texts, want %d", u, len(got), each)
		}
		for i, s := range got {
			if s != fmt.Sprint(i) {
				t.Fatalf("user u%d: text %d is %q (order broken)", u, i, s)
			}
		}
	}
	seqs := make([]int, 0, users*each)
	for _, c := range g.Calls() {
		seqs = append(seqs, c.Seq)
	}
	if !slices.IsSorted(seqs) || seqs[0] != 1 || seqs[len(seqs)-1] != users*each {
		t.Errorf("Seq is not 1…%d in the order of Calls", users*each)
	}
}

func TestWaitTexts(t *testing.T) {
	g := fakegraph.New(t, fakegraph.Options{})
	c := client(g, nil)
	go func() {
		for _, s := range []string{"one", "two", "three"} {
			_ = c.SendMessage(context.Background(), to("u1"), &messenger.Message{Text: s})
		}
	}()
	got := g.WaitTexts(t, "u1", 2)
	if len(got) < 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("WaitTexts = %q, want at least one, two", got)
	}
	g.WaitTexts(t, "u1", 3)
	var body map[string]any
	if err := json.Unmarshal(g.CallsTo(fakegraph.PathMessages)[2].RawBody, &body); err != nil || body["messaging_type"] != "RESPONSE" {
		t.Errorf("RawBody of the third call: %v %v", body, err)
	}
}
