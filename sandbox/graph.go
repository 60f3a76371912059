package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/messenger"
)

// graphError is an error answered the way the Graph API answers it:
// {"error":{"message","type","code","error_subcode","fbtrace_id"}}.
type graphError struct {
	status  int
	message string
	typ     string
	code    int
	subcode int
}

func (g *graphError) Error() string { return g.message }

// body renders the error with a fresh fbtrace_id.
func (g *graphError) body() gin.H {
	e := gin.H{"message": g.message, "type": g.typ, "code": g.code, "fbtrace_id": newTraceID()}
	if g.subcode != 0 {
		e["error_subcode"] = g.subcode
	}
	return gin.H{"error": e}
}

// The errors Facebook answers to the calls the emulator checks.
var (
	errNoToken  = &graphError{http.StatusBadRequest, "An access token is required to request this resource.", "OAuthException", 104, 0}
	errBadToken = &graphError{http.StatusBadRequest, "Invalid OAuth access token - Cannot parse access token", "OAuthException", 190, 0}
	errNoProof  = &graphError{http.StatusBadRequest, "API calls from the server require an appsecret_proof argument", "GraphMethodException", 100, 0}
	errBadProof = &graphError{http.StatusBadRequest, "Invalid appsecret_proof provided in the API argument", "GraphMethodException", 100, 0}
	errOldProof = &graphError{http.StatusBadRequest, "Invalid appsecret_time provided in the API argument: it must be within 5 minutes of now", "GraphMethodException", 100, 0}
	errNotOwner = &graphError{http.StatusBadRequest, "(#10) Message failed to send because another app is controlling this thread now.", "OAuthException", 10, 2018300}
	// errControlNotOwner answers a thread control call from an app that
	// does not own the thread.
	errControlNotOwner = &graphError{http.StatusBadRequest, "(#100) The action is invalid since it's not the thread owner.", "OAuthException", 100, 2534037}
	errNoUser          = &graphError{http.StatusBadRequest, "(#100) No matching user found", "OAuthException", 100, 2018001}
	// errMetadataTooLong answers a handover call whose metadata is over
	// the platform's limit (see checkMetadata).
	errMetadataTooLong = errParam(fmt.Sprintf("param metadata must be at most %d characters long", actions.MaxMetadataLen))
)

// checkMetadata enforces the platform's limit on handover metadata, which
// counts characters, not bytes: the limit `threadgate check` applies
// (actions.MaxMetadataLen), so that metadata the check accepts is never
// refused here.
func checkMetadata(metadata string) *graphError {
	if utf8.RuneCountInString(metadata) > actions.MaxMetadataLen {
		return errMetadataTooLong
	}
	return nil
}

// errParam is a (#100) invalid parameter error.
func errParam(msg string) *graphError {
	return &graphError{http.StatusBadRequest, "(#100) " + msg, "OAuthException", 100, 0}
}

func errUnknownPath(path string) *graphError {
	return &graphError{http.StatusBadRequest, "Unknown path components: " + path, "OAuthException", 2500, 0}
}

func errUnsupported(method, node string) *graphError {
	return &graphError{http.StatusBadRequest, "Unsupported " + strings.ToLower(method) + " request. Object with ID '" + node +
		"' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", "GraphMethodException", 100, 33}
}

func newTraceID() string { return "A" + rand.Text()[:10] }

// params are a Graph call's parameters, from the query string, a form body
// and a JSON body, each value as JSON.
type params map[string]json.RawMessage

// hidden parameters are never logged.
var hidden = map[string]bool{"access_token": true, "appsecret_proof": true, "appsecret_time": true}

func readParams(c *gin.Context) (params, *graphError) {
	p := params{}
	addValues := func(v url.Values) {
		for k, vs := range v {
			if len(vs) == 0 {
				continue
			}
			s := vs[len(vs)-1]
			// Objects and arrays arrive JSON-encoded in query and form
			// values (recipient={"id":"…"}); everything else is a string.
			if t := strings.TrimSpace(s); (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t)) {
				p[k] = json.RawMessage(t)
				continue
			}
			b, _ := json.Marshal(s)
			p[k] = b
		}
	}
	addValues(c.Request.URL.Query())
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 1<<20))
	if err != nil {
		return nil, errParam("could not read the request body")
	}
	switch ct := c.ContentType(); {
	case len(bytes.TrimSpace(body)) == 0:
	case ct == "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errParam("the request body is not a valid form")
		}
		addValues(v)
	default:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, errParam("the request body is not a JSON object")
		}
		for k, v := range m {
			p[k] = v
		}
	}
	return p, nil
}

// str returns a string parameter ("" when absent); numbers are accepted
// as their digits.
func (p params) str(name string) string {
	raw, ok := p[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if n := strings.TrimSpace(string(raw)); messenger.IsNumericID(n) {
		return n
	}
	return ""
}

// decode decodes an object parameter; false when absent or malformed.
func (p params) decode(name string, v any) bool {
	raw, ok := p[name]
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, v); err == nil {
		return true
	}
	// An object sent as a JSON string inside a JSON body.
	var s string
	return json.Unmarshal(raw, &s) == nil && json.Unmarshal([]byte(s), v) == nil
}

// loggable returns the parameters without the secret ones.
func (p params) loggable() json.RawMessage {
	m := map[string]json.RawMessage{}
	for k, v := range p {
		if !hidden[k] {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	b, _ := json.Marshal(m)
	return b
}

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// graph serves every Graph API call: it checks the version, the access
// token and the appsecret proof, runs the edge, answers and logs the call.
func (e *Emulator) graph(c *gin.Context) {
	method, path := c.Request.Method, c.Param("path")
	p, gerr := readParams(c)
	id := e.logGraphCall(method, path, p)
	var resp any
	if gerr == nil {
		gerr = e.authorize(p)
	}
	if gerr == nil && !versionRE.MatchString(c.Param("version")) {
		gerr = errUnknownPath("/" + c.Param("version"))
	}
	if gerr == nil {
		resp, gerr = e.graphEdge(method, path, p)
	}
	status := http.StatusOK
	if gerr != nil {
		status, resp = gerr.status, gerr.body()
		if gerr == errBadToken {
			c.Header("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "`+gerr.message+`"`)
		}
	}
	out, _ := json.Marshal(resp)
	e.mu.Lock()
	e.updateLog(id, func(l *LogEntry) {
		l.Graph.Status, l.Graph.Response = status, out
		l.Summary = method + " " + strings.TrimPrefix(path, "/") + " → " + strconv.Itoa(status)
		if gerr != nil {
			l.Error = gerr.message
		}
	})
	e.mu.Unlock()
	c.Data(status, "application/json; charset=UTF-8", out)
}

// logGraphCall adds a pending inspector entry for a call, before it runs,
// so that it shows before the webhooks it causes.
func (e *Emulator) logGraphCall(method, path string, p params) int64 {
	user, rerr := recipient(p)
	if rerr != nil {
		user = p.str("recipient")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.nextSeq()
	e.addLog(LogEntry{Seq: id, Kind: LogGraph, User: user, Summary: method + " " + strings.TrimPrefix(path, "/") + " → …",
		Graph: &GraphLog{Method: method, Path: path, Params: p.loggable()}})
	return id
}

// authorize checks the access token and, with an app secret, the
// appsecret_proof (timed, or the older untimed form).
func (e *Emulator) authorize(p params) *graphError {
	token := p.str("access_token")
	if token == "" {
		return errNoToken
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(e.opt.Token)) != 1 {
		return errBadToken
	}
	if len(e.opt.AppSecret) == 0 {
		return nil
	}
	proof := p.str("appsecret_proof")
	if proof == "" {
		return errNoProof
	}
	msg := token
	if ts := p.str("appsecret_time"); ts != "" {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return errOldProof
		}
		if d := e.now().Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
			return errOldProof
		}
		msg = token + "|" + ts
	}
	got, err := hex.DecodeString(proof)
	h := hmac.New(sha256.New, e.opt.AppSecret)
	h.Write([]byte(msg))
	if err != nil || !hmac.Equal(got, h.Sum(nil)) {
		return errBadProof
	}
	return nil
}

// graphEdge runs one Graph edge for the bot's app. Paths are /me/EDGE or
// /PAGE_ID/EDGE.
func (e *Emulator) graphEdge(method, path string, p params) (any, *graphError) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 1 && parts[0] != "me" && parts[0] != e.opt.PageID {
		return e.graphUserProfile(method, parts[0], p) // GET /<PSID>: profile.go
	}
	if len(parts) == 2 && parts[1] == "messenger_profile" && (parts[0] == "me" || parts[0] == e.opt.PageID) {
		return e.graphMessengerProfile(method, p) // profile.go
	}
	if len(parts) != 2 || (parts[0] != "me" && parts[0] != e.opt.PageID) {
		return nil, errUnknownPath(path)
	}
	node, edge := parts[0], parts[1]
	type route struct {
		method string
		run    func(params) (any, *graphError)
	}
	routes := map[string]route{
		"messages":               {http.MethodPost, e.graphSend},
		"pass_thread_control":    {http.MethodPost, e.graphPass},
		"take_thread_control":    {http.MethodPost, e.graphTake},
		"request_thread_control": {http.MethodPost, e.graphRequest},
		"release_thread_control": {http.MethodPost, e.graphRelease},
		"thread_owner":           {http.MethodGet, e.graphThreadOwner},
	}
	r, ok := routes[edge]
	if !ok {
		return nil, errUnknownPath("/" + edge)
	}
	if method != r.method {
		return nil, errUnsupported(method, node)
	}
	return r.run(p)
}

// recipient returns the PSID of the call's recipient parameter.
func recipient(p params) (string, *graphError) {
	var r messenger.Party
	if !p.decode("recipient", &r) || r.ID == "" {
		return "", errParam("param recipient must be non-empty.")
	}
	return r.ID.String(), nil
}
