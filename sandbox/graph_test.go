package sandbox

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/messenger"
)

// graphCall makes a raw Graph API call to the emulator.
func graphCall(t *testing.T, h *harness, method, path string, q url.Values, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.emu.GraphURL(h.url)+path+"?"+q.Encode(), rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out, resp.Header
}

func hmacHex(secret []byte, msg string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// signed returns the query of a call signed as the gateway signs it.
func signed(token string, secret []byte, at time.Time) url.Values {
	q := url.Values{"access_token": {token}}
	if secret != nil {
		proof, ts := messenger.AppSecretProof(secret, token, at)
		q.Set("appsecret_proof", proof)
		q.Set("appsecret_time", ts)
	}
	return q
}

func graphErr(out map[string]any) (code, subcode int, typ, msg string) {
	e, _ := out["error"].(map[string]any)
	if e == nil {
		return 0, 0, "", ""
	}
	c, _ := e["code"].(float64)
	s, _ := e["error_subcode"].(float64)
	typ, _ = e["type"].(string)
	msg, _ = e["message"].(string)
	return int(c), int(s), typ, msg
}

func TestGraphAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.say("2501", "hello")
	h.waitFor("the echo", func(s State) bool { return said(s, "2501", "bot", "[bot] hello") })
	now := time.Now()
	untimed := url.Values{"access_token": {testToken}, "appsecret_proof": {hmacHex(testSecret, testToken)}}
	tests := []struct {
		name    string
		q       url.Values
		status  int
		code    int
		typ     string
		message string
	}{
		{"signed", signed(testToken, testSecret, now), 200, 0, "", ""},
		{"untimed proof", untimed, 200, 0, "", ""},
		{"no token", url.Values{}, 400, 104, "OAuthException", "An access token is required"},
		{"bad token", signed("not-the-token", testSecret, now), 400, 190, "OAuthException", "Invalid OAuth access token"},
		{"no proof", url.Values{"access_token": {testToken}}, 400, 100, "GraphMethodException", "require an appsecret_proof"},
		{"proof under another secret", signed(testToken, []byte("other"), now), 400, 100, "GraphMethodException", "Invalid appsecret_proof"},
		{"proof too old", signed(testToken, testSecret, now.Add(-10*time.Minute)), 400, 100, "GraphMethodException", "appsecret_time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out, hdr := graphCall(t, h, http.MethodPost, "/me/messages", tt.q,
				`{"recipient":{"id":"2501"},"messaging_type":"RESPONSE","message":{"text":"hi"}}`)
			code, _, typ, msg := graphErr(out)
			if status != tt.status || code != tt.code || typ != tt.typ || !strings.Contains(msg, tt.message) {
				t.Errorf("HTTP %d %v, want %d code %d %s %q", status, out, tt.status, tt.code, tt.typ, tt.message)
			}
			if tt.code != 0 {
				if e := out["error"].(map[string]any); e["fbtrace_id"] == "" || e["fbtrace_id"] == nil {
					t.Errorf("no fbtrace_id in %v", out)
				}
			}
			if (tt.code == 190) != (hdr.Get("WWW-Authenticate") != "") {
				t.Errorf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
			}
		})
	}
	// The client reports a bad token as the Graph error 190.
	bad := messenger.NewClient(messenger.Options{BaseURL: h.emu.GraphURL(h.url), Tokens: messenger.StaticToken("wrong"),
		AppSecret: testSecret, MaxAttempts: 1, Logger: slog.New(slog.DiscardHandler)})
	err := bad.SendMessage(context.Background(), messenger.Recipient{PageID: h.emu.PageID(), UserID: "2501"}, &messenger.Message{Text: "x"})
	if ge, ok := err.(*messenger.GraphError); !ok || ge.Code != 190 || strings.Contains(err.Error(), "wrong") {
		t.Errorf("client error = %v, want code 190 without the token", err)
	}
}

func TestGraphRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.say("2502", "hello")
	h.waitFor("the echo", func(s State) bool { return said(s, "2502", "bot", "[bot] hello") })
	tooMany := `[` + strings.Repeat(`{"content_type":"text","title":"t","payload":"p"},`, 13) + `{"content_type":"text","title":"t","payload":"p"}]`
	tests := []struct {
		name         string
		method, path string
		body         string
		status       int
		code, sub    int
		want         string // a key of the success answer
	}{
		{"text", "POST", "/me/messages", `{"recipient":{"id":"2502"},"messaging_type":"RESPONSE","message":{"text":"hi"}}`, 200, 0, 0, "message_id"},
		{"page id path", "POST", "/" + DefaultPageID + "/messages", `{"recipient":{"id":"2502"},"messaging_type":"UPDATE","message":{"text":"hi"}}`, 200, 0, 0, "message_id"},
		{"typing", "POST", "/me/messages", `{"recipient":{"id":"2502"},"sender_action":"typing_on"}`, 200, 0, 0, "recipient_id"},
		{"bad action", "POST", "/me/messages", `{"recipient":{"id":"2502"},"sender_action":"dance"}`, 400, 100, 0, ""},
		{"action with message", "POST", "/me/messages", `{"recipient":{"id":"2502"},"sender_action":"typing_on","message":{"text":"x"}}`, 400, 100, 0, ""},
		{"no messaging_type", "POST", "/me/messages", `{"recipient":{"id":"2502"},"message":{"text":"hi"}}`, 400, 100, 0, ""},
		{"no recipient", "POST", "/me/messages", `{"messaging_type":"RESPONSE","message":{"text":"hi"}}`, 400, 100, 0, ""},
		{"unknown user", "POST", "/me/messages", `{"recipient":{"id":"99"},"messaging_type":"RESPONSE","message":{"text":"hi"}}`, 400, 100, 2018001, ""},
		{"empty message", "POST", "/me/messages", `{"recipient":{"id":"2502"},"messaging_type":"RESPONSE","message":{}}`, 400, 100, 0, ""},
		{"text too long", "POST", "/me/messages", `{"recipient":{"id":"2502"},"messaging_type":"RESPONSE","message":{"text":"` + strings.Repeat("é", 2001) + `"}}`, 400, 100, 0, ""},
		{"14 quick replies", "POST", "/me/messages", `{"recipient":{"id":"2502"},"messaging_type":"RESPONSE","message":{"text":"q","quick_replies":` + tooMany + `}}`, 400, 100, 0, ""},
		{"button template", "POST", "/me/messages", `{"recipient":{"id":"2502"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"template","payload":{"template_type":"button","text":"Pick","buttons":[{"type":"postback","title":"A","payload":"A"}]}}}}`, 200, 0, 0, "message_id"},
		{"four buttons", "POST", "/me/messages", `{"recipient":{"id":"2502"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"template","payload":{"template_type":"button","text":"Pick","buttons":[{"type":"postback","title":"A","payload":"A"},{"type":"postback","title":"A","payload":"A"},{"type":"postback","title":"A","payload":"A"},{"type":"postback","title":"A","payload":"A"}]}}}}`, 400, 100, 0, ""},
		{"pass to unknown app", "POST", "/me/pass_thread_control", `{"recipient":{"id":"2502"},"target_app_id":"123"}`, 400, 100, 0, ""},
		{"pass to self", "POST", "/me/pass_thread_control", `{"recipient":{"id":"2502"},"target_app_id":"` + DefaultBotAppID + `"}`, 400, 100, 0, ""},
		{"take own thread", "POST", "/me/take_thread_control", `{"recipient":{"id":"2502"}}`, 200, 0, 0, "success"},
		{"thread owner", "GET", "/me/thread_owner", "", 200, 0, 0, "data"},
		{"get messages", "GET", "/me/messages", "", 400, 100, 33, ""},
		{"unknown edge", "POST", "/me/conversations_x", `{}`, 400, 2500, 0, ""},
		{"other node", "POST", "/12345/messages", `{}`, 400, 2500, 0, ""},
		{"not json", "POST", "/me/messages", `{`, 400, 100, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := signed(testToken, testSecret, time.Now())
			if tt.method == "GET" {
				q.Set("recipient", "2502")
			}
			status, out, _ := graphCall(t, h, tt.method, tt.path, q, tt.body)
			code, sub, typ, _ := graphErr(out)
			if status != tt.status || code != tt.code || sub != tt.sub {
				t.Fatalf("HTTP %d %v, want %d code %d/%d", status, out, tt.status, tt.code, tt.sub)
			}
			if tt.code != 0 && typ == "" {
				t.Errorf("error without a type: %v", out)
			}
			if tt.want != "" && out[tt.want] == nil {
				t.Errorf("answer %v has no %q", out, tt.want)
			}
		})
	}
	to := messenger.Recipient{PageID: h.emu.PageID(), UserID: "2502"}
	for _, action := range []string{messenger.TypingOn, messenger.MarkSeen} {
		if err := h.client.SenderAction(context.Background(), to, action); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
	if th := threadOf(h.state(), "2502"); th.Typing != "bot" || th.Seen.IsZero() {
		t.Errorf("after typing_on and mark_seen: typing %q, seen %v", th.Typing, th.Seen)
	}
	if err := h.client.SenderAction(context.Background(), to, messenger.TypingOff); err != nil {
		t.Fatal(err)
	}
	s := h.state()
	th := threadOf(s, "2502")
	last := th.Items[len(th.Items)-1]
	if last.Text != "Pick" || len(last.Buttons) != 1 || last.Buttons[0].Payload != "A" {
		t.Errorf("the button template shows as %+v", last)
	}
	if th.Typing != "" {
		t.Errorf("typing = %q after the bot sent a message", th.Typing)
	}
	// Every call is in the inspector, with its answer and without secrets.
	var calls int
	for _, l := range s.Log {
		if l.Kind == LogGraph {
			calls++
			if strings.Contains(string(l.Graph.Params), "access_token") || strings.Contains(string(l.Graph.Params), "appsecret") {
				t.Errorf("logged params hold a secret: %s", l.Graph.Params)
			}
			if l.Graph.Status == 0 || len(l.Graph.Response) == 0 {
				t.Errorf("graph log without an answer: %+v", l.Graph)
			}
		}
	}
	if calls < len(tests) {
		t.Errorf("%d graph calls logged, want at least %d", calls, len(tests))
	}
}

func TestSendAPIThreadControl(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const user = "2503"
	h.say(user, "hello")
	h.waitFor("the echo", func(s State) bool { return said(s, user, "bot", "[bot] hello") })
	to := messenger.Recipient{PageID: h.emu.PageID(), UserID: user}
	err := h.client.SendMessageWithControl(context.Background(), to, &messenger.Message{Text: "Over to a person"},
		&messenger.ThreadControl{ControlType: messenger.ControlPass, AppID: zendeskID})
	if err != nil {
		t.Fatal(err)
	}
	if th := threadOf(h.state(), user); th.Owner != "zendesk" {
		t.Fatalf("owner after a send with pass = %s", th.Owner)
	}
	h.agent("zendesk", "done", map[string]string{"user": user})
	h.waitFor("the hand-back", ownerIs(user, "bot"))
	err = h.client.SendMessageWithControl(context.Background(), to, &messenger.Message{Text: "Bye"},
		&messenger.ThreadControl{ControlType: messenger.ControlRelease})
	if err != nil {
		t.Fatal(err)
	}
	if th := threadOf(h.state(), user); th.Owner != "idle" {
		t.Fatalf("owner after a send with release = %s", th.Owner)
	}
}

func TestOwnershipExpires(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(fakeclock.Start)
	h := newHarness(t, harnessOptions{now: clock.Now})
	const user = "2504"
	handOver(t, h, user)
	clock.Advance(24*time.Hour + time.Second)
	owner, err := h.client.ThreadOwner(context.Background(), messenger.Recipient{PageID: h.emu.PageID(), UserID: user})
	if err != nil || owner != "" {
		t.Fatalf("thread_owner after 24 h = %q, %v; want idle", owner, err)
	}
	if ch := h.say(user, "still there?"); ch != channelMessaging {
		t.Fatalf("after expiry the message went on %q, want messaging", ch)
	}
	h.waitFor("the bot answering", func(s State) bool { return said(s, user, "bot", "[bot] still there?") })
}

func TestWebhooksSigned(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies [][]byte
	var sigs []string
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, sigs = append(bodies, b), append(sigs, r.Header.Get(messenger.SignatureHeader))
		mu.Unlock()
		io.WriteString(w, "EVENT_RECEIVED")
	}))
	defer capture.Close()
	e := New(Options{Token: testToken, AppSecret: testSecret, WebhookURL: capture.URL})
	r := gin.New()
	e.Mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	h := &harness{t: t, url: srv.URL, emu: e}
	h.say("2505", "héllo ✓ \u00e4")
	h.inject("/sandbox/api/users/2505/postbacks", map[string]string{"payload": "P", "title": "T"})
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("got %d webhooks, want 2", len(bodies))
	}
	for i, b := range bodies {
		if err := messenger.VerifySignature(b, sigs[i], testSecret); err != nil {
			t.Errorf("webhook %d: %v", i, err)
		}
		if err := messenger.VerifySignature(b, sigs[i], []byte("other")); err == nil {
			t.Errorf("webhook %d verifies under another secret", i)
		}
	}
	var w1, w2 messenger.Webhook
	if json.Unmarshal(bodies[0], &w1) != nil || json.Unmarshal(bodies[1], &w2) != nil {
		t.Fatal("undecodable webhook")
	}
	e1, e2 := w1.Entry[0].Messaging[0], w2.Entry[0].Messaging[0]
	if e1.Message.MID == "" || e1.Message.MID == e2.Postback.MID || e2.Timestamp <= e1.Timestamp || w1.Entry[0].Time == 0 {
		t.Errorf("events need unique mids and increasing timestamps: %+v %+v", e1, e2)
	}
}

func TestGatewayRejectsWrongSignature(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{gatewaySecret: []byte("the gateway's own secret")})
	status, out := h.do(http.MethodPost, "/sandbox/api/users/2506/messages", map[string]string{"text": "hello"})
	wh, _ := out["webhook"].(map[string]any)
	if status != http.StatusBadGateway || wh["status"] != float64(http.StatusUnauthorized) {
		t.Fatalf("HTTP %d %v, want 502 with the gateway's 401", status, out)
	}
	h.waitFor("the failed delivery in the inspector", func(s State) bool {
		for _, l := range s.Log {
			if l.Kind == LogWebhook && l.Webhook.Status == http.StatusUnauthorized && l.Error != "" {
				return true
			}
		}
		return false
	})
}

func TestDeliveryFailureShown(t *testing.T) {
	t.Parallel()
	e := New(Options{Token: testToken, WebhookURL: "http://127.0.0.1:1/webhook"})
	r := gin.New()
	e.Mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	h := &harness{t: t, url: srv.URL, emu: e}
	status, out := h.do(http.MethodPost, "/sandbox/api/users/2507/messages", map[string]string{"text": "hello"})
	wh, _ := out["webhook"].(map[string]any)
	if status != http.StatusBadGateway || wh["error"] == nil {
		t.Fatalf("HTTP %d %v, want 502 with the delivery error", status, out)
	}
	s := h.state()
	if l := s.Log[len(s.Log)-1]; l.Kind != LogWebhook || !strings.Contains(l.Summary, "failed") || l.Error == "" {
		t.Errorf("last log entry = %+v", l)
	}
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/sandbox/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type = %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() (string, string) {
		var ev, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event:"):
				ev = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
			case line == "" && ev != "":
				return ev, data
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	if ev, _ := next(); ev != "hello" {
		t.Fatalf("first event %q, want hello", ev)
	}
	go func() {
		resp, err := http.Post(h.url+"/sandbox/api/users/2508/messages", "application/json", strings.NewReader(`{"text":"hello"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	var last int64
	for {
		ev, data := next()
		var c Change
		if ev != "change" || json.Unmarshal([]byte(data), &c) != nil {
			t.Fatalf("event %q %s", ev, data)
		}
		if c.Seq <= last {
			t.Fatalf("change seq %d after %d", c.Seq, last)
		}
		last = c.Seq
		if c.Thread != nil && said(State{Threads: []Thread{*c.Thread}}, "2508", "bot", "[bot] hello") {
			break
		}
	}
	// Close ends the stream.
	h.emu.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Errorf("the stream did not end after Close: %v", err)
	}
}

func TestBoundedMemory(t *testing.T) {
	t.Parallel()
	e := New(Options{})
	e.mu.Lock()
	for i := range maxLogEntries + 50 {
		e.addLog(LogEntry{Kind: LogAgent, Summary: strconv.Itoa(i)})
	}
	th := e.thread("1", true)
	for i := range maxThreadItems + 10 {
		e.addItem(th, Item{From: "user", Text: strconv.Itoa(i)})
	}
	for i := range maxThreads + 5 {
		e.thread("u"+strconv.Itoa(i), true)
	}
	s := e.state(nil)
	e.mu.Unlock()
	if len(s.Log) != maxLogEntries || s.Log[0].Summary != "50" {
		t.Errorf("log holds %d entries from %q, want the last %d", len(s.Log), s.Log[0].Summary, maxLogEntries)
	}
	if th := threadOf(s, "1"); len(th.Items) != maxThreadItems || th.Items[0].Text != "10" {
		t.Errorf("thread holds %d items", len(th.Items))
	}
	if len(s.Threads) != maxThreads {
		t.Errorf("%d threads, want at most %d", len(s.Threads), maxThreads)
	}
}

func TestLocalURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ addr, want string }{
		{":8080", "http://127.0.0.1:8080"},
		{"0.0.0.0:9000", "http://127.0.0.1:9000"},
		{"[::]:8080", "http://[::1]:8080"},
		{"127.0.0.1:43121", "http://127.0.0.1:43121"},
		{"192.168.1.5:8080", "http://192.168.1.5:8080"},
		{"[::1]:8080", "http://[::1]:8080"},
		{"localhost:8080", "http://localhost:8080"},
	}
	for _, tt := range tests {
		if got := LocalURL(tt.addr); got != tt.want {
			t.Errorf("LocalURL(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
