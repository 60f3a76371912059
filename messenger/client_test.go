package messenger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/fakegraph"
)

const (
	testToken  = "EAAB-test-page-token-7f3c9"
	testSecret = "test-app-secret-41d2"
	testPSID   = "2400000000000001"
	testPage   = "111222333444555"
)

var testUser = Recipient{PageID: testPage, UserID: testPSID}

// newGraph starts the shared fake Graph API; it accepts any token, so the
// tests read the token each call carried from its record.
func newGraph(t *testing.T) *fakegraph.Server {
	return fakegraph.New(t, fakegraph.Options{})
}

// client returns a Client for the fake with fast backoff, logging into buf.
func client(g *fakegraph.Server, buf *bytes.Buffer, mod func(*Options)) *Client {
	o := Options{
		BaseURL:     g.BaseURL() + "/",
		Tokens:      StaticToken(testToken),
		BaseBackoff: time.Millisecond,
		MaxBackoff:  2 * time.Millisecond,
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	if buf != nil {
		o.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&o)
	}
	return NewClient(o)
}

// graphErr is a Graph error answer.
func graphErr(status, code, subcode int, trace string) fakegraph.Answer {
	return fakegraph.GraphError{Status: status, Code: code, Subcode: subcode, FBTraceID: trace,
		Message: fmt.Sprintf("(#%d) test error", code)}.Answer()
}

// body is a 200 answer with a raw body.
func body(s string) fakegraph.Answer { return fakegraph.Answer{Status: 200, Body: s} }

func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("request body %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body = %s\nwant   %s", got, want)
	}
}

func TestClientRequestShapes(t *testing.T) {
	t.Parallel()
	msg := &Message{
		Text:         "Do you want to talk to a person?",
		QuickReplies: []QuickReply{{ContentType: "text", Title: "Yes", Payload: "HANDOFF"}},
		Metadata:     "gw:msg:1",
	}
	tests := []struct {
		name     string
		call     func(ctx context.Context, c *Client) error
		method   string
		path     string
		body     string // empty for no body
		query    url.Values
		response string
	}{
		{
			name:   "send message",
			call:   func(ctx context.Context, c *Client) error { return c.SendMessage(ctx, testUser, msg) },
			method: "POST", path: "/v26.0/me/messages",
			body: `{"recipient":{"id":"2400000000000001"},"messaging_type":"RESPONSE","message":{"text":"Do you want to talk to a person?",
				"quick_replies":[{"content_type":"text","title":"Yes","payload":"HANDOFF"}],"metadata":"gw:msg:1"}}`,
			response: `{"recipient_id":"2400000000000001","message_id":"m_1"}`,
		},
		{
			name: "send button template",
			call: func(ctx context.Context, c *Client) error {
				return c.SendMessage(ctx, testUser, &Message{Attachment: &Attachment{Type: "template", Payload: TemplatePayload{
					TemplateType: "button", Text: "Pick", Buttons: []Button{{Type: "postback", Title: "Agent", Payload: "HANDOFF"}}}}})
			},
			method: "POST", path: "/v26.0/me/messages",
			body: `{"recipient":{"id":"2400000000000001"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"template",
				"payload":{"template_type":"button","text":"Pick","buttons":[{"type":"postback","title":"Agent","payload":"HANDOFF"}]}}}}`,
			response: `{"recipient_id":"2400000000000001","message_id":"m_2"}`,
		},
		{
			name: "send with thread control",
			call: func(ctx context.Context, c *Client) error {
				return c.SendMessageWithControl(ctx, testUser, &Message{Text: "connecting you"},
					&ThreadControl{ControlType: ControlPass, AppID: "263902037430900"})
			},
			method: "POST", path: "/v26.0/me/messages",
			body: `{"recipient":{"id":"2400000000000001"},"messaging_type":"RESPONSE","message":{"text":"connecting you"},
				"thread_control":{"control_type":"pass","app_id":"263902037430900"}}`,
			response: `{"recipient_id":"2400000000000001","message_id":"m_3"}`,
		},
		{
			name: "send with release",
			call: func(ctx context.Context, c *Client) error {
				return c.SendMessageWithControl(ctx, testUser, &Message{Text: "bye"}, &ThreadControl{ControlType: ControlRelease})
			},
			method: "POST", path: "/v26.0/me/messages",
			body:     `{"recipient":{"id":"2400000000000001"},"messaging_type":"RESPONSE","message":{"text":"bye"},"thread_control":{"control_type":"release"}}`,
			response: `{"recipient_id":"2400000000000001","message_id":"m_4"}`,
		},
		{
			name:   "typing on",
			call:   func(ctx context.Context, c *Client) error { return c.SenderAction(ctx, testUser, TypingOn) },
			method: "POST", path: "/v26.0/me/messages",
			body:     `{"recipient":{"id":"2400000000000001"},"sender_action":"typing_on"}`,
			response: `{"recipient_id":"2400000000000001"}`,
		},
		{
			name: "pass thread control",
			call: func(ctx context.Context, c *Client) error {
				return c.PassThreadControl(ctx, testUser, "263902037430900", "reason=billing")
			},
			method: "POST", path: "/v26.0/me/pass_thread_control",
			body:     `{"recipient":{"id":"2400000000000001"},"target_app_id":"263902037430900","metadata":"reason=billing"}`,
			response: `{"success":true}`,
		},
		{
			name: "pass thread control without metadata",
			call: func(ctx context.Context, c *Client) error {
				return c.PassThreadControl(ctx, testUser, "1217981644879628", "")
			},
			method: "POST", path: "/v26.0/me/pass_thread_control",
			body:     `{"recipient":{"id":"2400000000000001"},"target_app_id":"1217981644879628"}`,
			response: `{"success":true}`,
		},
		{
			name:   "take thread control",
			call:   func(ctx context.Context, c *Client) error { return c.TakeThreadControl(ctx, testUser, "bot resumes") },
			method: "POST", path: "/v26.0/me/take_thread_control",
			body:     `{"recipient":{"id":"2400000000000001"},"metadata":"bot resumes"}`,
			response: `{"thread_owner":{"app_id":"1111","expiration":1764086400}}`,
		},
		{
			name:   "request thread control",
			call:   func(ctx context.Context, c *Client) error { return c.RequestThreadControl(ctx, testUser, "") },
			method: "POST", path: "/v26.0/me/request_thread_control",
			body:     `{"recipient":{"id":"2400000000000001"}}`,
			response: `{"success":true}`,
		},
		{
			name:   "release thread control",
			call:   func(ctx context.Context, c *Client) error { return c.ReleaseThreadControl(ctx, testUser) },
			method: "POST", path: "/v26.0/me/release_thread_control",
			body:     `{"recipient":{"id":"2400000000000001"}}`,
			response: `{"success":true}`,
		},
		{
			name: "thread owner",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ThreadOwner(ctx, testUser)
				return err
			},
			method: "GET", path: "/v26.0/me/thread_owner",
			query:    url.Values{"recipient": {testPSID}},
			response: `{"data":[]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGraph(t)
			g.Script(fakegraph.Match{}, body(tt.response))
			if err := tt.call(t.Context(), client(g, nil, nil)); err != nil {
				t.Fatalf("call: %v", err)
			}
			got := g.Calls()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			r := got[0]
			if path := "/" + r.Version + r.Path; r.Method != tt.method || path != tt.path {
				t.Errorf("request = %s %s, want %s %s", r.Method, path, tt.method, tt.path)
			}
			if tt.body == "" {
				if len(r.RawBody) != 0 {
					t.Errorf("body = %q, want none", r.RawBody)
				}
			} else {
				jsonEqual(t, string(r.RawBody), tt.body)
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
			if tok := r.Query.Get("access_token"); tok != testToken {
				t.Errorf("access_token = %q", tok)
			}
			for k, v := range tt.query {
				if !reflect.DeepEqual(r.Query[k], v) {
					t.Errorf("query %s = %v, want %v", k, r.Query[k], v)
				}
			}
		})
	}
}

func TestClientAppSecretProof(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 9, 1, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name   string
		secret []byte
	}{
		{"with app secret", []byte(testSecret)},
		{"without app secret", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGraph(t)
			c := client(g, nil, func(o *Options) {
				o.AppSecret = tt.secret
				o.Now = func() time.Time { return at }
			})
			if err := c.TakeThreadControl(t.Context(), testUser, ""); err != nil {
				t.Fatal(err)
			}
			q := g.Calls()[0].Query
			if q.Get("access_token") != testToken {
				t.Errorf("access_token = %q", q.Get("access_token"))
			}
			if tt.secret == nil {
				if q.Has("appsecret_proof") || q.Has("appsecret_time") {
					t.Errorf("proof sent without a secret: %v", q)
				}
				return
			}
			ts := fmt.Sprint(at.Unix())
			if q.Get("appsecret_time") != ts {
				t.Errorf("appsecret_time = %q, want %s", q.Get("appsecret_time"), ts)
			}
			h := hmac.New(sha256.New, tt.secret)
			h.Write([]byte(testToken + "|" + ts))
			if want := hex.EncodeToString(h.Sum(nil)); q.Get("appsecret_proof") != want {
				t.Errorf("appsecret_proof = %q, want %q", q.Get("appsecret_proof"), want)
			}
		})
	}
}

func TestClientPageTokens(t *testing.T) {
	t.Parallel()
	g := newGraph(t)
	c := client(g, nil, func(o *Options) {
		o.Tokens = PageTokens{"page-a": "token-a", "page-b": "token-b"}
	})
	ctx := t.Context()
	for _, page := range []string{"page-a", "page-b"} {
		if err := c.ReleaseThreadControl(ctx, Recipient{PageID: page, UserID: testPSID}); err != nil {
			t.Fatalf("%s: %v", page, err)
		}
	}
	err := c.ReleaseThreadControl(ctx, Recipient{PageID: "page-c", UserID: testPSID})
	if !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), "page-c") {
		t.Errorf("unknown page: err = %v, want ErrNoToken naming the page", err)
	}
	got := g.Calls()
	if len(got) != 2 || got[0].Token != "token-a" || got[1].Token != "token-b" {
		t.Errorf("requests = %+v", got)
	}
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	ok := fakegraph.Answer{} // the usual answer: recipient_id and message_id
	tests := []struct {
		name        string
		answers     []fakegraph.Answer // in turn
		maxAttempts int
		wantCalls   int
		wantCode    int // 0: success
		wantObserve []string
	}{
		{"500 then ok", []fakegraph.Answer{{Status: 500, Body: `oops`}, ok}, 4, 2, 0, []string{"retry", "ok"}},
		{"code 2 then ok", []fakegraph.Answer{graphErr(503, 2, 0, "t2"), ok}, 4, 2, 0, []string{"retry", "ok"}},
		{"code 613 twice then ok", []fakegraph.Answer{graphErr(400, 613, 0, "t1"), graphErr(400, 613, 0, "t2"), ok}, 4, 3, 0, []string{"retry", "retry", "ok"}},
		{"code 100 not retried", []fakegraph.Answer{graphErr(400, 100, 2018001, "t3"), ok}, 4, 1, 100, []string{"error"}},
		{"not owner not retried", []fakegraph.Answer{graphErr(400, 10, 2018300, "t4"), ok}, 4, 1, 10, []string{"error"}},
		{"token error not retried", []fakegraph.Answer{graphErr(400, 190, 463, "t5"), ok}, 4, 1, 190, []string{"error"}},
		{"bounded attempts", []fakegraph.Answer{graphErr(500, 1, 0, "t6"), graphErr(500, 1, 0, "t6"), graphErr(500, 1, 0, "t6"), ok}, 3, 3, 1, []string{"retry", "retry", "error"}},
		{"single attempt", []fakegraph.Answer{graphErr(500, 2, 0, "t7"), ok}, 1, 1, 2, []string{"error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGraph(t)
			g.Script(fakegraph.Match{}, tt.answers...)
			var mu sync.Mutex
			var outcomes []string
			c := client(g, nil, func(o *Options) {
				o.MaxAttempts = tt.maxAttempts
				o.Observe = func(call Call) {
					mu.Lock()
					defer mu.Unlock()
					outcomes = append(outcomes, call.Outcome)
					if call.Endpoint != "me/messages" {
						t.Errorf("Observe endpoint = %q", call.Endpoint)
					}
				}
			})
			err := c.SendMessage(t.Context(), testUser, &Message{Text: "hi"})
			if n := len(g.Calls()); n != tt.wantCalls {
				t.Errorf("%d requests, want %d", n, tt.wantCalls)
			}
			if !reflect.DeepEqual(outcomes, tt.wantObserve) {
				t.Errorf("outcomes = %v, want %v", outcomes, tt.wantObserve)
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ge *GraphError
			if !errors.As(err, &ge) || ge.Code != tt.wantCode {
				t.Fatalf("err = %v, want Graph code %d", err, tt.wantCode)
			}
			if ge.FBTraceID == "" || !strings.Contains(err.Error(), ge.FBTraceID) {
				t.Errorf("err %q lacks fbtrace_id %q", err, ge.FBTraceID)
			}
		})
	}
}

func TestClientNotThreadOwner(t *testing.T) {
	t.Parallel()
	g := newGraph(t)
	g.Script(fakegraph.Match{}, graphErr(400, 10, 2018300, "AbC123xyz"))
	err := client(g, nil, nil).SendMessage(t.Context(), testUser, &Message{Text: "hi"})
	if !IsNotThreadOwner(err) {
		t.Errorf("IsNotThreadOwner(%v) = false", err)
	}
}

func TestClientContextStopsRetries(t *testing.T) {
	t.Parallel()
	g := newGraph(t)
	g.Fault(fakegraph.Match{}, graphErr(500, 2, 0, "t"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := client(g, nil, func(o *Options) {
		// Backoff far longer than any test: only the context can end it.
		o.BaseBackoff, o.MaxBackoff = time.Hour, time.Hour
		o.MaxAttempts = 10
		o.Observe = func(call Call) {
			if call.Outcome == OutcomeRetry {
				cancel()
			}
		}
	})
	err := c.SendMessage(ctx, testUser, &Message{Text: "hi"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	var ge *GraphError
	if !errors.As(err, &ge) || ge.Code != 2 {
		t.Errorf("err = %v, want the last Graph error too", err)
	}
	if n := len(g.Calls()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestClientCanceledContext(t *testing.T) {
	t.Parallel()
	g := newGraph(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := client(g, nil, nil).TakeThreadControl(ctx, testUser, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := len(g.Calls()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

func TestClientResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		response fakegraph.Answer
		wantErr  error // nil: success; errAny: any error
	}{
		{"success true", body(`{"success":true}`), nil},
		{"thread owner body", body(`{"thread_owner":{"app_id":1111,"expiration":1764086400}}`), nil},
		{"empty body", body(``), nil},
		{"success false", body(`{"success":false}`), ErrUnsuccessful},
		{"error in 200", body(`{"error":{"code":100,"message":"bad"}}`), errAny},
		{"not JSON", body(`<html>proxy</html>`), errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGraph(t)
			g.Script(fakegraph.Match{}, tt.response)
			err := client(g, nil, nil).PassThreadControl(t.Context(), testUser, "263902037430900", "")
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("err = %v, want success", err)
			case tt.wantErr == errAny && err == nil:
				t.Errorf("success, want an error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if n := len(g.Calls()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestClientThreadOwner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"routing shape", `{"data":[{"thread_owner":{"app_id":"263902037430900","expiration":1764086400}}]}`, "263902037430900"},
		{"legacy numeric", `{"data":[{"thread_owner":{"app_id":1217981644879628}}]}`, "1217981644879628"},
		{"unwrapped", `{"thread_owner":{"app_id":"1111"}}`, "1111"},
		{"idle", `{"data":[]}`, ""},
		{"not disclosed", `{"data":[{"thread_owner":{}}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGraph(t)
			g.Script(fakegraph.Match{}, body(tt.body))
			got, err := client(g, nil, nil).ThreadOwner(t.Context(), testUser)
			if err != nil || got != tt.want {
				t.Errorf("ThreadOwner = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestClientRejectsBadInput(t *testing.T) {
	t.Parallel()
	g := newGraph(t)
	c := client(g, nil, nil)
	ctx := t.Context()
	errs := []error{
		c.SendMessage(ctx, testUser, nil),
		c.SenderAction(ctx, testUser, ""),
		c.TakeThreadControl(ctx, Recipient{PageID: testPage}, ""),
	}
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: no error", i)
		}
	}
	if n := len(g.Calls()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

// TestClientNoSecretsInErrorsOrLogs fails calls in every way the client
// reports and scans the errors and the log output for the token and secret.
func TestClientNoSecretsInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer fakegraph.Answer // to every call
		base   string           // overrides the fake's URL
		trace  string
	}{
		{"graph error", graphErr(400, 100, 2018001, "TraceBad1"), "", "TraceBad1"},
		{"retried then failed", graphErr(500, 2, 0, "TraceRetry2"), "", "TraceRetry2"},
		{"graph echoes the token", fakegraph.Answer{Status: 400, Body: `{"error":{"code":190,"message":"Invalid token ` + testToken + `","fbtrace_id":"TraceEcho3"}}`}, "", "TraceEcho3"},
		{"network error", fakegraph.Answer{Reset: true}, "", ""},
		{"bad base URL", fakegraph.Answer{}, "http://bad host\x7f/v26.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGraph(t)
			g.Fault(fakegraph.Match{}, tt.answer)
			var logs bytes.Buffer
			c := client(g, &logs, func(o *Options) {
				o.AppSecret = []byte(testSecret)
				o.MaxAttempts = 2
				if tt.base != "" {
					o.BaseURL = tt.base
				}
			})
			err := c.SendMessage(t.Context(), testUser, &Message{Text: "hi"})
			if err == nil {
				t.Fatal("no error")
			}
			var ge *GraphError
			if errors.As(err, &ge) && strings.Contains(ge.Message, testToken) {
				t.Errorf("GraphError.Message holds the token: %q", ge.Message)
			}
			for what, text := range map[string]string{"error": err.Error(), "log": logs.String()} {
				for _, secret := range []string{testToken, testSecret, "access_token", "appsecret_proof"} {
					if strings.Contains(text, secret) {
						t.Errorf("%s contains %q:\n%s", what, secret, text)
					}
				}
				if !strings.Contains(text, "me/messages") {
					t.Errorf("%s does not name the endpoint:\n%s", what, text)
				}
				if tt.trace != "" && !strings.Contains(text, tt.trace) {
					t.Errorf("%s lacks fbtrace_id %s:\n%s", what, tt.trace, text)
				}
			}
			if tt.trace != "" && !strings.Contains(logs.String(), `"fbtrace_id":"`+tt.trace+`"`) {
				t.Errorf("log lacks the fbtrace_id attribute:\n%s", logs.String())
			}
		})
	}
}

func TestTokenSourcesHideTokens(t *testing.T) {
	t.Parallel()
	for _, v := range []any{StaticToken(testToken), PageTokens{testPage: testToken}} {
		var logs bytes.Buffer
		slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "tokens", v)
		for _, s := range []string{fmt.Sprintf("%v|%s|%+v|%#v", v, v, v, v), logs.String()} {
			if strings.Contains(s, testToken) {
				t.Errorf("%T printed its token: %s", v, s)
			}
		}
	}
}

// TestClientHeaders checks the header every call carries, with and without
// a cookie jar: without one the calls share jsonHeader, with one each call
// has a header of its own, and the shared header is never changed.
func TestClientHeaders(t *testing.T) {
	t.Parallel()
	for _, withJar := range []bool{false, true} {
		t.Run(fmt.Sprintf("jar %v", withJar), func(t *testing.T) {
			t.Parallel()
			g := newGraph(t)
			c := client(g, nil, func(o *Options) {
				o.HTTPClient = &http.Client{}
				if withJar {
					jar, err := cookiejar.New(nil)
					if err != nil {
						t.Fatal(err)
					}
					u, err := url.Parse(g.URL)
					if err != nil {
						t.Fatal(err)
					}
					jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "jar-cookie"}})
					o.HTTPClient.Jar = jar
				}
			})
			for range 3 {
				if err := c.SendMessage(t.Context(), testUser, &Message{Text: "hi"}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.ThreadOwner(t.Context(), testUser); err != nil { // no body
				t.Fatal(err)
			}
			calls := g.Calls()
			if len(calls) != 4 {
				t.Fatalf("%d calls, want 4", len(calls))
			}
			for i, call := range calls {
				wantType := "application/json"
				if call.Method == http.MethodGet {
					wantType = ""
				}
				if got := call.Header.Get("Content-Type"); got != wantType {
					t.Errorf("call %d %s: Content-Type %q, want %q", i, call.Path, got, wantType)
				}
				wantCookie := ""
				if withJar {
					wantCookie = "session=jar-cookie"
				}
				if got := call.Header.Get("Cookie"); got != wantCookie {
					t.Errorf("call %d %s: Cookie %q, want %q", i, call.Path, got, wantCookie)
				}
			}
			if want := (http.Header{"Content-Type": {"application/json"}}); !reflect.DeepEqual(jsonHeader, want) {
				t.Errorf("the shared header became %v", jsonHeader)
			}
		})
	}
}

// TestClientResponseSizes reads answers of every size class in turn, so
// that the pooled buffers are grown, reused and dropped: each answer is
// decoded as a fresh read would, and one past maxResponseBytes is cut
// there (and so is no JSON).
func TestClientResponseSizes(t *testing.T) {
	t.Parallel()
	owner := func(pad int) string {
		return `{"thread_owner":{"app_id":"1111"},"pad":"` + strings.Repeat("x", pad) + `"}`
	}
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{"small", owner(10), false},
		{"past the first buffer", owner(4 << 10), false},
		{"past the pooled size", owner(maxPooledResponse + 10), false},
		{"small again", owner(0), false},
		{"just under the limit", owner(maxResponseBytes - len(owner(0))), false},
		{"over the limit", owner(maxResponseBytes), true},
		{"small at last", owner(1), false},
	}
	g := newGraph(t)
	c := client(g, nil, nil)
	for _, tt := range tests {
		g.Script(fakegraph.Match{}, body(tt.body))
		got, err := c.ThreadOwner(t.Context(), testUser)
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("%s: ThreadOwner = %q, want an error", tt.name, got)
		case !tt.wantErr && (err != nil || got != "1111"):
			t.Errorf("%s: ThreadOwner = %q, %v; want 1111", tt.name, got, err)
		}
	}
}

// TestClientSendMessageAllocations fails when a Send API call through an
// in-memory transport allocates more than it does today (19, of which 6
// are the transport's own response), so that the client's cost per reply
// does not creep back.
func TestClientSendMessageAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items: counts do not hold")
	}
	c := memoryClient()
	msg := &Message{Text: "[bot] hello"}
	const budget = 20
	allocs := testing.AllocsPerRun(100, func() {
		if err := c.SendMessage(t.Context(), testUser, msg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > budget {
		t.Errorf("SendMessage allocates %.0f times, the budget is %d: see BenchmarkClientSendMessage", allocs, budget)
	}
}
