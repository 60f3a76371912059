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
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testToken  = "EAAB-test-page-token-7f3c9"
	testSecret = "test-app-secret-41d2"
	testPSID   = "2400000000000001"
	testPage   = "111222333444555"
)

var testUser = Recipient{PageID: testPage, UserID: testPSID}

// graphRequest is what the fake Graph API received.
type graphRequest struct {
	Method, Path string
	Query        url.Values
	Body         string
	ContentType  string
}

type graphResponse struct {
	status int
	body   string
}

// fakeGraph stands in for graph.facebook.com: it records requests and
// answers them with the scripted responses, repeating the last one.
type fakeGraph struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []graphRequest
	res []graphResponse
}

func newFakeGraph(t *testing.T, res ...graphResponse) *fakeGraph {
	t.Helper()
	f := &fakeGraph{res: res}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.got = append(f.got, graphRequest{r.Method, r.URL.Path, r.URL.Query(), string(body), r.Header.Get("Content-Type")})
		next := graphResponse{200, `{"success":true}`}
		if len(f.res) > 0 {
			next = f.res[0]
			if len(f.res) > 1 {
				f.res = f.res[1:]
			}
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(next.status)
		io.WriteString(w, next.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGraph) requests() []graphRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]graphRequest(nil), f.got...)
}

// client returns a Client for the fake with fast backoff, logging into buf.
func (f *fakeGraph) client(buf *bytes.Buffer, mod func(*Options)) *Client {
	o := Options{
		BaseURL:     f.srv.URL + "/v26.0/",
		Tokens:      StaticToken(testToken),
		HTTPClient:  f.srv.Client(),
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

func graphErr(status, code, subcode int, trace string) graphResponse {
	return graphResponse{status, fmt.Sprintf(`{"error":{"message":"(#%d) test error","type":"OAuthException","code":%d,"error_subcode":%d,"fbtrace_id":%q}}`,
		code, code, subcode, trace)}
}

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
			f := newFakeGraph(t, graphResponse{200, tt.response})
			if err := tt.call(t.Context(), f.client(nil, nil)); err != nil {
				t.Fatalf("call: %v", err)
			}
			got := f.requests()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			r := got[0]
			if r.Method != tt.method || r.Path != tt.path {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			if tt.body == "" {
				if r.Body != "" {
					t.Errorf("body = %q, want none", r.Body)
				}
			} else {
				jsonEqual(t, r.Body, tt.body)
				if r.ContentType != "application/json" {
					t.Errorf("Content-Type = %q", r.ContentType)
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
			f := newFakeGraph(t)
			c := f.client(nil, func(o *Options) {
				o.AppSecret = tt.secret
				o.Now = func() time.Time { return at }
			})
			if err := c.TakeThreadControl(t.Context(), testUser, ""); err != nil {
				t.Fatal(err)
			}
			q := f.requests()[0].Query
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
	f := newFakeGraph(t)
	c := f.client(nil, func(o *Options) {
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
	got := f.requests()
	if len(got) != 2 || got[0].Query.Get("access_token") != "token-a" || got[1].Query.Get("access_token") != "token-b" {
		t.Errorf("requests = %+v", got)
	}
}

func TestClientRetries(t *testing.T) {
	ok := graphResponse{200, `{"recipient_id":"2400000000000001","message_id":"m_1"}`}
	tests := []struct {
		name        string
		responses   []graphResponse
		maxAttempts int
		wantCalls   int
		wantCode    int // 0: success
		wantObserve []string
	}{
		{"500 then ok", []graphResponse{{500, `oops`}, ok}, 4, 2, 0, []string{"retry", "ok"}},
		{"code 2 then ok", []graphResponse{graphErr(503, 2, 0, "t2"), ok}, 4, 2, 0, []string{"retry", "ok"}},
		{"code 613 twice then ok", []graphResponse{graphErr(400, 613, 0, "t1"), graphErr(400, 613, 0, "t2"), ok}, 4, 3, 0, []string{"retry", "retry", "ok"}},
		{"code 100 not retried", []graphResponse{graphErr(400, 100, 2018001, "t3"), ok}, 4, 1, 100, []string{"error"}},
		{"not owner not retried", []graphResponse{graphErr(400, 10, 2018300, "t4"), ok}, 4, 1, 10, []string{"error"}},
		{"token error not retried", []graphResponse{graphErr(400, 190, 463, "t5"), ok}, 4, 1, 190, []string{"error"}},
		{"bounded attempts", []graphResponse{graphErr(500, 1, 0, "t6")}, 3, 3, 1, []string{"retry", "retry", "error"}},
		{"single attempt", []graphResponse{graphErr(500, 2, 0, "t7")}, 1, 1, 2, []string{"error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, tt.responses...)
			var mu sync.Mutex
			var outcomes []string
			c := f.client(nil, func(o *Options) {
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
			if n := len(f.requests()); n != tt.wantCalls {
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
	f := newFakeGraph(t, graphErr(400, 10, 2018300, "AbC123xyz"))
	err := f.client(nil, nil).SendMessage(t.Context(), testUser, &Message{Text: "hi"})
	if !IsNotThreadOwner(err) {
		t.Errorf("IsNotThreadOwner(%v) = false", err)
	}
}

func TestClientContextStopsRetries(t *testing.T) {
	f := newFakeGraph(t, graphErr(500, 2, 0, "t"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := f.client(nil, func(o *Options) {
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
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestClientCanceledContext(t *testing.T) {
	f := newFakeGraph(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := f.client(nil, nil).TakeThreadControl(ctx, testUser, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

func TestClientResponses(t *testing.T) {
	tests := []struct {
		name     string
		response graphResponse
		wantErr  error // nil: success; errAny: any error
	}{
		{"success true", graphResponse{200, `{"success":true}`}, nil},
		{"thread owner body", graphResponse{200, `{"thread_owner":{"app_id":1111,"expiration":1764086400}}`}, nil},
		{"empty body", graphResponse{200, ``}, nil},
		{"success false", graphResponse{200, `{"success":false}`}, ErrUnsuccessful},
		{"error in 200", graphResponse{200, `{"error":{"code":100,"message":"bad"}}`}, errAny},
		{"not JSON", graphResponse{200, `<html>proxy</html>`}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, tt.response)
			err := f.client(nil, nil).PassThreadControl(t.Context(), testUser, "263902037430900", "")
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("err = %v, want success", err)
			case tt.wantErr == errAny && err == nil:
				t.Errorf("success, want an error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestClientThreadOwner(t *testing.T) {
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
			f := newFakeGraph(t, graphResponse{200, tt.body})
			got, err := f.client(nil, nil).ThreadOwner(t.Context(), testUser)
			if err != nil || got != tt.want {
				t.Errorf("ThreadOwner = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestClientRejectsBadInput(t *testing.T) {
	f := newFakeGraph(t)
	c := f.client(nil, nil)
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
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

// TestClientNoSecretsInErrorsOrLogs fails calls in every way the client
// reports and scans the errors and the log output for the token and secret.
func TestClientNoSecretsInErrorsOrLogs(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name  string
		res   []graphResponse
		base  string // overrides the fake's URL
		trace string
	}{
		{"graph error", []graphResponse{graphErr(400, 100, 2018001, "TraceBad1")}, "", "TraceBad1"},
		{"retried then failed", []graphResponse{graphErr(500, 2, 0, "TraceRetry2")}, "", "TraceRetry2"},
		{"graph echoes the token", []graphResponse{{400, `{"error":{"code":190,"message":"Invalid token ` + testToken + `","fbtrace_id":"TraceEcho3"}}`}}, "", "TraceEcho3"},
		{"network error", nil, closedURL + "/v26.0", ""},
		{"bad base URL", nil, "http://bad host\x7f/v26.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, tt.res...)
			var logs bytes.Buffer
			c := f.client(&logs, func(o *Options) {
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
