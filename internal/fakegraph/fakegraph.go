// Package fakegraph is a fake of the Messenger Platform's Graph API for
// tests: an httptest server that records every call and answers the way
// the Graph API does, unless the test scripts another answer or switches a
// fault on.
//
// Point a Graph API client at Server.BaseURL (or at Server.URL where the
// version is added by the code under test), make the code under test act,
// then read what it sent:
//
//	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{token}})
//	client := messenger.NewClient(messenger.Options{BaseURL: graph.BaseURL(), …})
//	…
//	texts := graph.WaitTexts(t, "u1", 1) // the texts sent to user u1
//
// # Answers
//
// Every call is answered, in this order of precedence, by
//
//  1. the next answer of a script (Script) whose Match fits the call: one
//     answer per call, used in turn, each used once;
//  2. a fault (Fault) whose Match fits the call, the latest first: it
//     answers every fitting call until it is cleared;
//  3. the Graph API's usual answer: {"recipient_id","message_id"} for a
//     message on /me/messages, {"recipient_id"} for a sender action,
//     {"success":true} for the handover edges (pass, take, request and
//     release_thread_control), the owner set with SetThreadOwner (idle by
//     default) for /me/thread_owner, and error 2500 for any other path.
//
// An Answer can be an HTTP status with a raw body (or none), a Graph error
// (GraphError: code, subcode, fbtrace_id, is_transient), a connection
// reset, a hang until Release (or until the request's context ends), or a
// delay before the answer. Faults are switched on and off while the
// server runs: a test can make the Graph API answer 500 for a while, reset
// connections, throttle with code 613 or hang, then heal it.
//
// The server checks the access token (Options.Tokens) and the
// appsecret_proof (Options.AppSecret) when told to, as the Graph API does.
// It does not track thread ownership or the 24-hour window: the sandbox
// package emulates the platform; this package only answers.
//
// A Server is safe for concurrent use. The Calls it returns share their
// maps with the server's record: treat them as read-only.
package fakegraph

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/poll"
)

// Version is the Graph API version in BaseURL.
const Version = "v26.0"

// The paths the fake answers, as recorded in Call.Path.
const (
	PathMessages    = "/me/messages"
	PathPass        = "/me/pass_thread_control"
	PathTake        = "/me/take_thread_control"
	PathRequest     = "/me/request_thread_control"
	PathRelease     = "/me/release_thread_control"
	PathThreadOwner = "/me/thread_owner"
)

// maxBodyBytes bounds the request body the server reads and records.
const maxBodyBytes = 1 << 20

// Options configures a Server. The zero value accepts every call.
type Options struct {
	// Tokens are the access tokens the server accepts; a call without one
	// is answered with code 104, a call with another with code 190. Nil
	// accepts any token, or none.
	Tokens []string
	// AppSecret, when set, makes the server require appsecret_proof, the
	// HMAC-SHA256 of "TOKEN|appsecret_time" keyed with the secret, as the
	// Graph API does when an app requires it; a missing or wrong proof is
	// answered with code 100.
	AppSecret []byte
}

// Call is one request the server received.
type Call struct {
	// Seq numbers the calls from 1 in the order they arrived.
	Seq int
	// Method is the HTTP method.
	Method string
	// Path is the URL path without the version prefix, e.g. "/me/messages".
	Path string
	// Version is the version prefix of the URL path, e.g. "v26.0", or ""
	// when the path had none.
	Version string
	// Query is the URL query, access_token and appsecret_proof included.
	Query url.Values
	// Header holds the request's headers.
	Header http.Header
	// RawBody is the request body as sent.
	RawBody []byte
	// Body is RawBody decoded as a JSON object, or nil when the body is
	// empty or not a JSON object.
	Body map[string]any
	// User is the recipient: recipient.id of the body, or the recipient
	// query parameter of /me/thread_owner.
	User string
	// Token is the access_token query parameter.
	Token string
}

// Text returns the text of the message a /me/messages call sends, or "".
func (c Call) Text() string {
	m, _ := c.Body["message"].(map[string]any)
	s, _ := m["text"].(string)
	return s
}

// Field returns a top-level string field of the body, e.g.
// "target_app_id", "metadata" or "sender_action", or "".
func (c Call) Field(name string) string {
	s, _ := c.Body[name].(string)
	return s
}

// Match selects calls. An empty field matches every call.
type Match struct {
	// Path is the path without the version prefix, e.g. PathMessages.
	Path string
	// User is the recipient of the call.
	User string
}

func (m Match) fits(c *Call) bool {
	return (m.Path == "" || m.Path == c.Path) && (m.User == "" || m.User == c.User)
}

// Answer is how the server answers one call. The zero Answer is the Graph
// API's usual answer.
type Answer struct {
	// Status and Body, when either is set, are written as they are: Body
	// verbatim (even empty), with Status (200 when 0). When both are zero
	// and Error is nil, the usual answer of the path is written.
	Status int
	Body   string
	// Error, when set, is written as a Graph error body.
	Error *GraphError
	// Delay holds the answer back for this long, plus a random part of up
	// to Jitter; a request whose context ends meanwhile gets no answer.
	Delay, Jitter time.Duration
	// Hang holds the answer back until Release is called or the request's
	// context ends (the client gives up or disconnects), then answers.
	Hang bool
	// Reset closes the connection without an answer, as a peer that
	// resets it does; the client sees a network error.
	Reset bool
}

// GraphError is the error object of a Graph API error answer:
//
//	{"error":{"message","type","code","error_subcode","is_transient","fbtrace_id"}}
type GraphError struct {
	// Status is the HTTP status of the answer; default 400.
	Status int
	// Code and Subcode are "code" and "error_subcode" (omitted when 0).
	Code, Subcode int
	// Message defaults to "(#CODE) fake Graph API error".
	Message string
	// Type defaults to "OAuthException".
	Type string
	// Transient is "is_transient".
	Transient bool
	// FBTraceID defaults to a new ID for each answer.
	FBTraceID string
}

// Answer returns the error as an Answer.
func (e GraphError) Answer() Answer { return Answer{Error: &e} }

// Fail returns an Answer with a Graph error of the HTTP status, code and
// subcode, e.g. Fail(400, 100, 2018001) or Fail(500, 2, 0).
func Fail(status, code, subcode int) Answer {
	return GraphError{Status: status, Code: code, Subcode: subcode}.Answer()
}

// Server is the fake Graph API. New starts it; the test's cleanup stops
// it.
type Server struct {
	// URL is the server's root, e.g. "http://127.0.0.1:41234", for code
	// that adds the version itself (GRAPH_API_URL of threadgate serve).
	URL string

	opt Options
	srv *httptest.Server

	mu      sync.Mutex
	calls   []*Call
	scripts []*script
	faults  []*fault
	owners  map[string]string // user → owner app ID
	release chan struct{}     // closed by Release
	closed  bool
	traces  int
}

type script struct {
	match   Match
	answers []Answer
}

type fault struct {
	match  Match
	answer Answer
}

// New starts a Server; it is closed when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{opt: o, owners: map[string]string{}, release: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.close)
	return s
}

// BaseURL returns the versioned root that a Graph API client takes as its
// base URL, e.g. "http://127.0.0.1:41234/v26.0".
func (s *Server) BaseURL() string { return s.URL + "/" + Version }

// close releases every hung call and stops the server.
func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Release()
	s.srv.Close()
}

// Script queues answers for the next calls that fit m, one answer per
// call, in order; when they are used up, the faults and the usual answers
// apply again. Scripts come before faults.
func (s *Server) Script(m Match, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts = append(s.scripts, &script{match: m, answers: slices.Clone(answers)})
}

// Fault makes every call that fits m get the answer until clear is called,
// e.g. Fault(Match{}, Answer{Status: 500}) for an outage of the whole API.
// When faults overlap, the one switched on last answers. Clearing a fault
// whose answer hangs also releases the calls that hang.
func (s *Server) Fault(m Match, a Answer) (clear func()) {
	f := &fault{match: m, answer: a}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.faults = slices.DeleteFunc(s.faults, func(g *fault) bool { return g == f })
			s.mu.Unlock()
			if a.Hang {
				s.Release()
			}
		})
	}
}

// Release lets every call that hangs now go on to its answer. Calls that
// arrive later hang again while a hanging fault is on.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.release)
	s.release = make(chan struct{})
}

// SetThreadOwner sets the app that /me/thread_owner names as the owner of
// the user's thread; "" makes the thread idle.
func (s *Server) SetThreadOwner(user, appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owners[user] = appID
}

// Calls returns every call received so far, in the order of arrival. A
// call is recorded when it arrives, before any delay or hang.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = *c
	}
	return out
}

// CallsTo returns the calls to a path, e.g. PathPass, in order.
func (s *Server) CallsTo(path string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// Texts returns the texts of the messages sent to a user, in order: every
// /me/messages call with a text, answered with success or not.
func (s *Server) Texts(user string) []string {
	var out []string
	for _, c := range s.Calls() {
		if c.Path == PathMessages && c.User == user && c.Text() != "" {
			out = append(out, c.Text())
		}
	}
	return out
}

// WaitCalls waits until at least n calls to path ("" for any path) have
// arrived and returns the calls to path; it fails the test after
// poll.Timeout.
func (s *Server) WaitCalls(t testing.TB, path string, n int) []Call {
	t.Helper()
	var got []Call
	poll.UntilNil(t, fmt.Sprintf("%d calls to %q", n, path), func() error {
		if path == "" {
			got = s.Calls()
		} else {
			got = s.CallsTo(path)
		}
		if len(got) < n {
			return fmt.Errorf("%d arrived", len(got))
		}
		return nil
	})
	return got
}

// WaitTexts waits until at least n texts have been sent to the user and
// returns them; it fails the test after poll.Timeout.
func (s *Server) WaitTexts(t testing.TB, user string, n int) []string {
	t.Helper()
	var got []string
	poll.UntilNil(t, fmt.Sprintf("%d texts to %s", n, user), func() error {
		if got = s.Texts(user); len(got) < n {
			return fmt.Errorf("sent so far: %q", got)
		}
		return nil
	})
	return got
}

// versioned splits a version prefix such as "/v26.0" off a path.
var versioned = regexp.MustCompile(`^/(v[0-9]+\.[0-9]+)(/.*)$`)

// serve records the call, picks its answer and writes it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	c := &Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), RawBody: raw}
	if m := versioned.FindStringSubmatch(c.Path); m != nil {
		c.Version, c.Path = m[1], m[2]
	}
	c.Token = c.Query.Get("access_token")
	var body map[string]any
	if json.Unmarshal(raw, &body) == nil {
		c.Body = body
	}
	c.User = c.Query.Get("recipient")
	if rcpt, ok := c.Body["recipient"].(map[string]any); ok {
		c.User, _ = rcpt["id"].(string)
	}

	s.mu.Lock()
	c.Seq = len(s.calls) + 1
	s.calls = append(s.calls, c)
	a, refused := s.refusal(c)
	if !refused {
		a = s.pick(c)
	}
	release, closed := s.release, s.closed
	s.mu.Unlock()

	if a.Reset {
		reset(w)
		return
	}
	if d := a.Delay + jitter(a.Jitter); d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return
		}
	}
	if a.Hang && !closed {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	s.write(w, c, a)
}

// refusal returns the error answer of a call whose token or proof is not
// accepted. s.mu is held.
func (s *Server) refusal(c *Call) (Answer, bool) {
	if s.opt.Tokens != nil {
		switch {
		case c.Token == "":
			return GraphError{Code: 104, Message: "An access token is required to request this resource."}.Answer(), true
		case !slices.Contains(s.opt.Tokens, c.Token):
			return GraphError{Code: 190, Message: "Invalid OAuth access token - Cannot parse access token"}.Answer(), true
		}
	}
	if len(s.opt.AppSecret) > 0 {
		mac := hmac.New(sha256.New, s.opt.AppSecret)
		mac.Write([]byte(c.Token + "|" + c.Query.Get("appsecret_time")))
		want := hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(c.Query.Get("appsecret_proof")), []byte(want)) {
			return GraphError{Code: 100, Type: "GraphMethodException", Message: "Invalid appsecret_proof provided in the API argument"}.Answer(), true
		}
	}
	return Answer{}, false
}

// pick returns the answer for a call: a script's, a fault's or the usual
// one. s.mu is held.
func (s *Server) pick(c *Call) Answer {
	for _, sc := range s.scripts {
		if len(sc.answers) > 0 && sc.match.fits(c) {
			a := sc.answers[0]
			sc.answers = sc.answers[1:]
			return a
		}
	}
	for i := len(s.faults) - 1; i >= 0; i-- {
		if s.faults[i].match.fits(c) {
			return s.faults[i].answer
		}
	}
	return Answer{}
}

// write writes the answer a after any delay or hang.
func (s *Server) write(w http.ResponseWriter, c *Call, a Answer) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	switch {
	case a.Error != nil:
		status, body := s.errorBody(*a.Error)
		w.WriteHeader(status)
		w.Write(body)
	case a.Status != 0 || a.Body != "":
		w.WriteHeader(orDefault(a.Status, http.StatusOK))
		io.WriteString(w, a.Body)
	default:
		status, body := s.usual(c)
		w.WriteHeader(status)
		w.Write(body)
	}
}

// usual returns the Graph API's usual answer to the call.
func (s *Server) usual(c *Call) (int, []byte) {
	ok := func(v any) (int, []byte) {
		b, _ := json.Marshal(v)
		return http.StatusOK, b
	}
	switch {
	case c.Method == http.MethodPost && c.Path == PathMessages:
		if _, isMessage := c.Body["message"]; !isMessage {
			return ok(map[string]string{"recipient_id": c.User})
		}
		return ok(map[string]string{"recipient_id": c.User, "message_id": fmt.Sprintf("m_fake_%d", c.Seq)})
	case c.Method == http.MethodPost && (c.Path == PathPass || c.Path == PathTake || c.Path == PathRequest || c.Path == PathRelease):
		return ok(map[string]bool{"success": true})
	case c.Method == http.MethodGet && c.Path == PathThreadOwner:
		s.mu.Lock()
		owner := s.owners[c.User]
		s.mu.Unlock()
		if owner == "" {
			return ok(map[string][]any{"data": {}})
		}
		return ok(map[string][]any{"data": {map[string]any{"thread_owner": map[string]string{"app_id": owner}}}})
	}
	return s.errorBody(GraphError{Code: 2500, Message: "Unknown path components: " + c.Path})
}

// errorBody renders a Graph error with its defaults filled in.
func (s *Server) errorBody(e GraphError) (int, []byte) {
	if e.Message == "" {
		e.Message = fmt.Sprintf("(#%d) fake Graph API error", e.Code)
	}
	if e.Type == "" {
		e.Type = "OAuthException"
	}
	if e.FBTraceID == "" {
		s.mu.Lock()
		s.traces++
		e.FBTraceID = fmt.Sprintf("FakeTrace%04d", s.traces)
		s.mu.Unlock()
	}
	obj := map[string]any{"message": e.Message, "type": e.Type, "code": e.Code, "is_transient": e.Transient, "fbtrace_id": e.FBTraceID}
	if e.Subcode != 0 {
		obj["error_subcode"] = e.Subcode
	}
	b, _ := json.Marshal(map[string]any{"error": obj})
	return orDefault(e.Status, http.StatusBadRequest), b
}

// reset closes the call's connection with a TCP reset, without an answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// Not HTTP/1: abort the response, which closes the stream.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST, not FIN
	}
	conn.Close()
}

// jitter returns a random duration in [0, max), or 0.
func jitter(upTo time.Duration) time.Duration {
	if upTo <= 0 {
		return 0
	}
	return rand.N(upTo)
}

// orDefault returns v, or def when v is 0.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
