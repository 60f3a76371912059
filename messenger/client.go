package messenger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is the Graph API version threadgate speaks by default.
const DefaultBaseURL = "https://graph.facebook.com/v26.0"

// maxResponseBytes caps how much of a Graph API response is read.
const maxResponseBytes = 1 << 20

// TokenSource gives the Page access token for a Page ID.
type TokenSource interface {
	// Token returns the token for pageID and whether there is one.
	Token(pageID string) (string, bool)
}

// StaticToken is a TokenSource that gives the same token for every Page.
type StaticToken string

// Token returns the token, whatever the Page.
func (t StaticToken) Token(string) (string, bool) { return string(t), t != "" }

// String hides the token from fmt and logs.
func (t StaticToken) String() string { return "StaticToken(redacted)" }

// GoString hides the token from %#v.
func (t StaticToken) GoString() string { return t.String() }

// PageTokens is a TokenSource that maps Page IDs to their tokens.
type PageTokens map[string]string

// Token returns the token of pageID.
func (p PageTokens) Token(pageID string) (string, bool) {
	t, ok := p[pageID]
	return t, ok && t != ""
}

// String hides the tokens from fmt and logs.
func (p PageTokens) String() string { return fmt.Sprintf("PageTokens(%d pages, redacted)", len(p)) }

// GoString hides the tokens from %#v.
func (p PageTokens) GoString() string { return p.String() }

// Errors returned (wrapped) by Client.
var (
	// ErrNoToken means the TokenSource has no token for the Page.
	ErrNoToken = errors.New("messenger: no access token for page")
	// ErrUnsuccessful means a thread-control call answered success:false.
	ErrUnsuccessful = errors.New("messenger: graph api answered success:false")
)

// Outcomes of one attempt, as reported to Options.Observe.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
	OutcomeRetry = "retry"
)

// Call describes one attempt of a Graph API call, for metrics.
type Call struct {
	// Endpoint is the path called, e.g. "me/messages".
	Endpoint string
	// Outcome is OutcomeOK, OutcomeRetry (failed, will be retried) or
	// OutcomeError (failed for good).
	Outcome string
	// HTTPStatus is 0 when no response arrived.
	HTTPStatus int
	// Code and Subcode are the Graph error's, or 0.
	Code, Subcode int
	// Attempt counts from 1.
	Attempt int
	// Duration is how long the attempt took.
	Duration time.Duration
}

// Options configures a Client. Zero fields take the documented defaults.
type Options struct {
	// BaseURL is the versioned Graph API root without a trailing slash;
	// default DefaultBaseURL.
	BaseURL string
	// Tokens gives the Page access token of each call.
	Tokens TokenSource
	// AppSecret, when set, adds appsecret_proof and appsecret_time to
	// every call.
	AppSecret []byte
	// HTTPClient defaults to a client with a 20 s timeout whose transport
	// keeps up to 256 idle connections to the Graph API, so that many
	// workers sending at once reuse connections instead of opening new ones
	// (net/http's default keeps 2 per host). Its Transport must not change
	// a request, as http.RoundTripper says: without a cookie jar, calls
	// share one header map.
	HTTPClient *http.Client
	// MaxAttempts bounds the attempts of one call, retries included;
	// default 4.
	MaxAttempts int
	// BaseBackoff and MaxBackoff bound the exponential backoff with full
	// jitter between attempts; defaults 250 ms and 5 s.
	BaseBackoff, MaxBackoff time.Duration
	// Logger receives a warning for each failed attempt and an error when a
	// call fails for good; default slog.Default().
	Logger *slog.Logger
	// Observe, when set, is called after every attempt.
	Observe func(Call)
	// Now gives the time for appsecret_time; default time.Now.
	Now func() time.Time
}

// Client calls the Messenger Platform's Graph API: the Send API and the
// thread-control (handover) edges. It is safe for concurrent use.
type Client struct {
	o Options
	// auth caches the last encoded access_token, appsecret_proof and
	// appsecret_time: they depend only on the token and the current
	// second, and an HMAC and a query encoding per call are measurable
	// under load.
	auth atomic.Pointer[cachedAuth]
}

type cachedAuth struct {
	token string
	unix  int64
	query string // access_token=…&appsecret_proof=…&appsecret_time=…
	// sendURL is the Send API's URL with query: the call of every reply,
	// whose URL is then built once per token and second too.
	sendURL string
}

// sendPath is the Send API's path.
const sendPath = "me/messages"

// authFor returns how calls with token authenticate now: the encoded
// query parameters, built once per token and second.
func (c *Client) authFor(token string) *cachedAuth {
	now := c.o.Now().Unix()
	if a := c.auth.Load(); a != nil && a.token == token && a.unix == now {
		return a
	}
	q := url.Values{"access_token": {token}}
	if len(c.o.AppSecret) > 0 {
		proof, ts := AppSecretProof(c.o.AppSecret, token, time.Unix(now, 0))
		q.Set("appsecret_proof", proof)
		q.Set("appsecret_time", ts)
	}
	a := &cachedAuth{token: token, unix: now, query: q.Encode()}
	a.sendURL = c.o.BaseURL + "/" + sendPath + "?" + a.query
	c.auth.Store(a)
	return a
}

// requestURL returns the URL of a call to path with query, authenticated
// with token.
func (c *Client) requestURL(path, token string, query url.Values) string {
	a := c.authFor(token)
	switch {
	case path == sendPath && len(query) == 0:
		return a.sendURL
	case len(query) == 0:
		return c.o.BaseURL + "/" + path + "?" + a.query
	}
	return c.o.BaseURL + "/" + path + "?" + query.Encode() + "&" + a.query
}

// jsonHeader is the header of every call with a body, unless the client
// has a cookie jar (which adds its cookies to the request's header).
// Requests share it: neither http.Client nor a RoundTripper changes a
// request's header, and a header set per call costs two allocations.
var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// responseBuffers holds the buffers that responses are read into: a
// response is decoded (its strings copied) before its buffer goes back.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledResponse is the largest buffer kept for reuse.
const maxPooledResponse = 64 << 10

// readResponse reads up to maxResponseBytes of r, appending to b.
func readResponse(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(cap(b), maxResponseBytes)])
		b = b[:len(b)+n]
		if err == io.EOF || len(b) >= maxResponseBytes {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// errorKey is how a Graph error's body starts: {"error": {...}}.
var errorKey = []byte(`"error"`)

// validJSON is the out of a call whose answer is only checked to be JSON
// (a Send API message ID that threadgate does not use).
type validJSON struct{}

// NewClient returns a Client for the options, filling in defaults.
func NewClient(o Options) *Client {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.Tokens == nil {
		o.Tokens = PageTokens(nil)
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 256
		o.HTTPClient = &http.Client{Timeout: 20 * time.Second, Transport: t}
	}
	if o.MaxAttempts < 1 {
		o.MaxAttempts = 4
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.MaxBackoff < o.BaseBackoff {
		o.MaxBackoff = o.BaseBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{o: o}
}

// Control types of a Send API thread_control object.
const (
	ControlPass    = "pass"
	ControlRelease = "release"
)

// ThreadControl hands the thread over in the same Send API call
// (Conversation Routing only). Pass without AppID hands it to the Page's
// default app.
type ThreadControl struct {
	ControlType string `json:"control_type"`
	AppID       string `json:"app_id,omitempty"`
}

type recipientID struct {
	ID string `json:"id"`
}

type sendRequest struct {
	Recipient     recipientID    `json:"recipient"`
	MessagingType string         `json:"messaging_type,omitempty"`
	Message       *Message       `json:"message,omitempty"`
	SenderAction  string         `json:"sender_action,omitempty"`
	ThreadControl *ThreadControl `json:"thread_control,omitempty"`
}

type controlRequest struct {
	Recipient   recipientID `json:"recipient"`
	TargetAppID string      `json:"target_app_id,omitempty"`
	Metadata    string      `json:"metadata,omitempty"`
}

type controlResponse struct {
	Success *bool `json:"success"`
}

type threadOwner struct {
	AppID ID `json:"app_id"`
}

type threadOwnerResponse struct {
	Data []struct {
		ThreadOwner *threadOwner `json:"thread_owner"`
	} `json:"data"`
	ThreadOwner *threadOwner `json:"thread_owner"`
}

// SendMessage sends msg to the user with messaging_type RESPONSE.
func (c *Client) SendMessage(ctx context.Context, to Recipient, msg *Message) error {
	return c.SendMessageWithControl(ctx, to, msg, nil)
}

// SendMessageWithControl sends msg and, when control is not nil, hands the
// thread over in the same call (Conversation Routing's thread_control).
func (c *Client) SendMessageWithControl(ctx context.Context, to Recipient, msg *Message, control *ThreadControl) error {
	if msg == nil {
		return errors.New("messenger: send message: no message")
	}
	req := sendRequest{Recipient: recipientID{to.UserID}, MessagingType: "RESPONSE", Message: msg, ThreadControl: control}
	return c.call(ctx, http.MethodPost, sendPath, to, nil, req, validJSON{})
}

// SenderAction sends a sender action (TypingOn, TypingOff, MarkSeen) in a
// request of its own.
func (c *Client) SenderAction(ctx context.Context, to Recipient, action string) error {
	if action == "" {
		return errors.New("messenger: sender action: no action")
	}
	req := sendRequest{Recipient: recipientID{to.UserID}, SenderAction: action}
	return c.call(ctx, http.MethodPost, sendPath, to, nil, req, validJSON{})
}

// PassThreadControl passes the thread to the app targetAppID with metadata
// (omitted when empty).
func (c *Client) PassThreadControl(ctx context.Context, to Recipient, targetAppID, metadata string) error {
	return c.control(ctx, "me/pass_thread_control", to, controlRequest{TargetAppID: targetAppID, Metadata: metadata})
}

// TakeThreadControl takes the thread from its current owner.
func (c *Client) TakeThreadControl(ctx context.Context, to Recipient, metadata string) error {
	return c.control(ctx, "me/take_thread_control", to, controlRequest{Metadata: metadata})
}

// RequestThreadControl asks the thread's owner to pass it to this app. A
// success means the request was delivered, not that control moved.
func (c *Client) RequestThreadControl(ctx context.Context, to Recipient, metadata string) error {
	return c.control(ctx, "me/request_thread_control", to, controlRequest{Metadata: metadata})
}

// ReleaseThreadControl makes the thread idle, so the Page's default app
// answers next.
func (c *Client) ReleaseThreadControl(ctx context.Context, to Recipient) error {
	return c.control(ctx, "me/release_thread_control", to, controlRequest{})
}

// ThreadOwner returns the app ID of the thread's owner, or "" when the
// thread is idle or the owner is not disclosed to this app.
func (c *Client) ThreadOwner(ctx context.Context, to Recipient) (string, error) {
	var res threadOwnerResponse
	q := url.Values{"recipient": {to.UserID}}
	if err := c.call(ctx, http.MethodGet, "me/thread_owner", to, q, nil, &res); err != nil {
		return "", err
	}
	if res.ThreadOwner != nil {
		return string(res.ThreadOwner.AppID), nil
	}
	for _, d := range res.Data {
		if d.ThreadOwner != nil {
			return string(d.ThreadOwner.AppID), nil
		}
	}
	return "", nil
}

func (c *Client) control(ctx context.Context, endpoint string, to Recipient, req controlRequest) error {
	req.Recipient = recipientID{to.UserID}
	var res controlResponse
	if err := c.call(ctx, http.MethodPost, endpoint, to, nil, req, &res); err != nil {
		return err
	}
	if res.Success != nil && !*res.Success {
		err := fmt.Errorf("%w (%s)", ErrUnsuccessful, endpoint)
		c.o.Logger.LogAttrs(ctx, slog.LevelError, "graph api call failed",
			slog.String("endpoint", endpoint), slog.String("error", err.Error()))
		return err
	}
	return nil
}

// call makes one Graph API call with retries. body, when not nil, is sent as
// JSON; a successful response is decoded into out.
func (c *Client) call(ctx context.Context, method, endpoint string, to Recipient, query url.Values, body, out any) error {
	if to.UserID == "" {
		return fmt.Errorf("messenger: %s %s: no recipient", method, endpoint)
	}
	return c.callPage(ctx, method, endpoint, endpoint, to.PageID, query, body, out)
}

// callPage makes one Graph API call with retries with the token of pageID,
// for calls about the Page itself (its Messenger profile) or about a user.
// path is what is called; endpoint names it in errors, logs and metrics
// (a user profile's path holds the user's ID, its endpoint does not).
func (c *Client) callPage(ctx context.Context, method, path, endpoint, pageID string, query url.Values, body, out any) error {
	token, ok := c.o.Tokens.Token(pageID)
	if !ok {
		return fmt.Errorf("%w %q (%s %s)", ErrNoToken, pageID, method, endpoint)
	}
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("messenger: %s %s: encoding request: %w", method, endpoint, err)
		}
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, retry, err := c.once(ctx, method, path, endpoint, token, query, payload, out)
		call := Call{Endpoint: endpoint, Outcome: OutcomeOK, HTTPStatus: status, Attempt: attempt, Duration: time.Since(start)}
		if err == nil {
			c.observe(call)
			return nil
		}
		err = scrub(err, token)
		retry = retry && attempt < c.o.MaxAttempts && ctx.Err() == nil
		c.failed(ctx, call, err, retry)
		if !retry {
			if attempt > 1 {
				return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			return err
		}
		if werr := c.wait(ctx, attempt); werr != nil {
			return fmt.Errorf("%w (stopped retrying after %d attempts: %w)", err, attempt, werr)
		}
	}
}

// once makes one attempt. It returns the HTTP status (0 without a
// response) and whether a failure is worth retrying.
func (c *Client) once(ctx context.Context, method, path, endpoint, token string, query url.Values, payload []byte, out any) (status int, retry bool, err error) {
	var rb io.Reader
	if payload != nil {
		rb = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.requestURL(path, token, query), rb)
	if err != nil {
		return 0, false, fmt.Errorf("messenger: %s %s: %w", method, endpoint, redactURL(err))
	}
	// The Host header is the URL's: an empty Host says so, and spares
	// http.Client a copy of the URL on every call.
	req.Host = ""
	if payload != nil {
		if c.o.HTTPClient.Jar == nil {
			req.Header = jsonHeader
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return 0, true, fmt.Errorf("messenger: %s %s: %w", method, endpoint, redactURL(err))
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	buf := responseBuffers.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledResponse {
			responseBuffers.Put(buf)
		}
	}()
	data, err := readResponse(resp.Body, (*buf)[:0])
	*buf = data
	if err != nil {
		return status, status >= 500, fmt.Errorf("messenger: %s %s: reading response (HTTP %d): %w", method, endpoint, status, redactURL(err))
	}
	// A success is decoded once, into out; only an answer that is no 2xx
	// or that mentions an error is read for a Graph error.
	if status < 200 || status > 299 || bytes.Contains(data, errorKey) {
		if ge := parseGraphError(status, data, endpoint); ge != nil {
			if token != "" {
				ge.Message = strings.ReplaceAll(ge.Message, token, "[redacted]")
			}
			return status, ge.Retryable(), ge
		}
	}
	if _, ok := out.(validJSON); ok {
		if len(bytes.TrimSpace(data)) > 0 && !json.Valid(data) {
			return status, false, fmt.Errorf("messenger: %s %s: unexpected response (HTTP %d): not JSON", method, endpoint, status)
		}
		return status, false, nil
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return status, false, fmt.Errorf("messenger: %s %s: unexpected response (HTTP %d): %w", method, endpoint, status, err)
		}
	}
	return status, false, nil
}

// parseGraphError returns the error in a response, or nil for a success.
func parseGraphError(status int, data []byte, endpoint string) *GraphError {
	var env struct {
		Error *struct {
			Message   string `json:"message"`
			Type      string `json:"type"`
			Code      int    `json:"code"`
			Subcode   int    `json:"error_subcode"`
			FBTraceID string `json:"fbtrace_id"`
		} `json:"error"`
	}
	_ = json.Unmarshal(data, &env) // a non-JSON body leaves env.Error nil
	ok := status >= 200 && status < 300
	if env.Error == nil {
		if ok {
			return nil
		}
		return &GraphError{HTTPStatus: status, Message: http.StatusText(status), Endpoint: endpoint}
	}
	e := env.Error
	return &GraphError{HTTPStatus: status, Code: e.Code, Subcode: e.Subcode, Type: e.Type,
		Message: e.Message, FBTraceID: e.FBTraceID, Endpoint: endpoint}
}

// failed logs and observes a failed attempt.
func (c *Client) failed(ctx context.Context, call Call, err error, retry bool) {
	level, msg := slog.LevelError, "graph api call failed"
	call.Outcome = OutcomeError
	if retry {
		call.Outcome, level, msg = OutcomeRetry, slog.LevelWarn, "graph api call failed, will retry"
	}
	attrs := []slog.Attr{
		slog.String("endpoint", call.Endpoint),
		slog.Int("attempt", call.Attempt),
		slog.Int("max_attempts", c.o.MaxAttempts),
	}
	var ge *GraphError
	if errors.As(err, &ge) {
		call.HTTPStatus, call.Code, call.Subcode = ge.HTTPStatus, ge.Code, ge.Subcode
		attrs = append(attrs,
			slog.Int("http_status", ge.HTTPStatus),
			slog.Int("code", ge.Code),
			slog.Int("subcode", ge.Subcode),
			slog.String("fbtrace_id", ge.FBTraceID))
	}
	attrs = append(attrs, slog.String("error", err.Error()))
	c.o.Logger.LogAttrs(ctx, level, msg, attrs...)
	c.observe(call)
}

func (c *Client) observe(call Call) {
	if c.o.Observe != nil {
		c.o.Observe(call)
	}
}

// wait sleeps before attempt+1: a random duration up to
// min(MaxBackoff, BaseBackoff·2^(attempt-1)), or until ctx is done.
func (c *Client) wait(ctx context.Context, attempt int) error {
	ceiling := c.o.BaseBackoff
	for i := 1; i < attempt && ceiling < c.o.MaxBackoff; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, c.o.MaxBackoff)
	t := time.NewTimer(rand.N(ceiling) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// redactURL strips the query string (which holds the access token) from
// the URL of a *url.Error, as returned by net/http.
func redactURL(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	u, _, _ := strings.Cut(ue.URL, "?")
	return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
}

// scrub is a last line of defence: an error whose text holds the token
// gets its text redacted (the chain is kept for errors.Is and errors.As).
func scrub(err error, token string) error {
	if token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(err.Error(), token, "[redacted]"), err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
