package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/messenger"
)

// mountAPI adds the JSON API's routes; the package documentation lists
// them.
func (e *Emulator) mountAPI(r gin.IRouter) {
	r.POST("/users/:psid/messages", e.apiUserMessage)
	r.POST("/users/:psid/postbacks", e.apiUserPostback)
	r.POST("/agents/:app/:action", e.apiAgent)
	r.GET("/state", e.apiState)
	r.GET("/conversations/:psid", e.apiConversation)
	r.GET("/users/:psid", e.apiUser)
	r.GET("/events", e.apiEvents)
}

var psidRE = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

func apiError(c *gin.Context, status int, msg string) {
	c.JSON(status, gin.H{"error": msg})
}

// graphAPIError answers an action the platform refused.
func graphAPIError(c *gin.Context, gerr *graphError) {
	status := http.StatusBadRequest
	switch gerr {
	case errNotOwner, errControlNotOwner:
		status = http.StatusConflict
	case errNoUser:
		status = http.StatusNotFound
	}
	body := gin.H{"error": gerr.message, "code": gerr.code}
	if gerr.subcode != 0 {
		body["error_subcode"] = gerr.subcode
	}
	c.JSON(status, body)
}

// psid reads and checks the {psid} path parameter.
func psid(c *gin.Context) (string, bool) {
	id := c.Param("psid")
	if !psidRE.MatchString(id) {
		apiError(c, http.StatusBadRequest, "the PSID must be 1 to 64 letters, digits, '-' or '_'")
		return "", false
	}
	return id, true
}

// waitWebhook waits for the gateway's answer to a webhook and adds it to
// the answer body; false (after answering 502) when it was not accepted.
func waitWebhook(c *gin.Context, ch <-chan delivery, body gin.H) bool {
	if ch == nil {
		return true
	}
	var d delivery
	select {
	case d = <-ch:
	case <-c.Request.Context().Done():
		return false
	}
	wh := gin.H{"status": d.Status, "response": d.Response}
	if d.Err != nil {
		wh["error"] = d.Err.Error()
	}
	body["webhook"] = wh
	if !d.ok() {
		body["error"] = "the gateway did not accept the webhook"
		c.JSON(http.StatusBadGateway, body)
		return false
	}
	return true
}

func (e *Emulator) apiUserMessage(c *gin.Context) {
	id, ok := psid(c)
	if !ok {
		return
	}
	var in struct {
		Text       string `json:"text"`
		QuickReply string `json:"quick_reply"`
	}
	if err := c.ShouldBindJSON(&in); err != nil {
		apiError(c, http.StatusBadRequest, `the body must be {"text": "…"} or {"quick_reply": "PAYLOAD", "text": "title"}`)
		return
	}
	if in.Text == "" && in.QuickReply == "" {
		apiError(c, http.StatusBadRequest, "text or quick_reply must be non-empty")
		return
	}
	if utf8.RuneCountInString(in.Text) > actions.MaxTextLen || utf8.RuneCountInString(in.QuickReply) > actions.MaxPayloadLen {
		apiError(c, http.StatusBadRequest, fmt.Sprintf("text must be at most %d characters and quick_reply at most %d", actions.MaxTextLen, actions.MaxPayloadLen))
		return
	}
	it, ch, err := e.userMessage(id, in.Text, in.QuickReply)
	e.answerUser(c, it, ch, err)
}

func (e *Emulator) apiUserPostback(c *gin.Context) {
	id, ok := psid(c)
	if !ok {
		return
	}
	var in struct {
		Payload string `json:"payload"`
		Title   string `json:"title"`
	}
	if err := c.ShouldBindJSON(&in); err != nil || in.Payload == "" || utf8.RuneCountInString(in.Payload) > actions.MaxPayloadLen || utf8.RuneCountInString(in.Title) > maxPostbackTitle {
		apiError(c, http.StatusBadRequest, fmt.Sprintf(`the body must be {"payload": "PAYLOAD", "title": "title"}: a payload of 1 to %d characters, an optional title of up to %d`, actions.MaxPayloadLen, maxPostbackTitle))
		return
	}
	it, ch, err := e.userPostback(id, in.Title, in.Payload)
	e.answerUser(c, it, ch, err)
}

func (e *Emulator) answerUser(c *gin.Context, it Item, ch <-chan delivery, err error) {
	if errors.Is(err, errTooManyUsers) {
		apiError(c, http.StatusTooManyRequests, err.Error())
		return
	}
	body := gin.H{"item": it, "channel": it.Channel}
	if waitWebhook(c, ch, body) {
		c.JSON(http.StatusOK, body)
	}
}

// apiAgent serves the agent app's actions: messages, done, take, request
// and release.
func (e *Emulator) apiAgent(c *gin.Context) {
	a, ok := e.findAgent(c.Param("app"))
	if !ok {
		apiError(c, http.StatusNotFound, "no app "+c.Param("app")+" in the rules file's apps")
		return
	}
	var in struct {
		User     string `json:"user"`
		Text     string `json:"text"`
		Metadata string `json:"metadata"`
	}
	if err := c.ShouldBindJSON(&in); err != nil || !psidRE.MatchString(in.User) {
		apiError(c, http.StatusBadRequest, `the body must be {"user": "PSID", …}`)
		return
	}
	var ch <-chan delivery
	var gerr *graphError
	switch c.Param("action") {
	case "messages":
		if in.Text == "" {
			apiError(c, http.StatusBadRequest, "text must be non-empty")
			return
		}
		ch, gerr = e.agentSend(a, in.User, in.Text)
	case "done":
		ch, gerr = e.pass(a.ID, in.User, e.opt.BotAppID, in.Metadata)
	case "take":
		ch, gerr = e.take(a.ID, in.User, in.Metadata)
	case "request":
		ch, gerr = e.request(a.ID, in.User, in.Metadata)
	case "release":
		gerr = e.release(a.ID, in.User)
	default:
		apiError(c, http.StatusNotFound, "no agent action "+c.Param("action")+": want messages, done, take, request or release")
		return
	}
	if gerr != nil {
		graphAPIError(c, gerr)
		return
	}
	body := gin.H{}
	if !waitWebhook(c, ch, body) {
		return
	}
	if th, ok := e.conversation(in.User); ok {
		body["thread"] = th
	}
	c.JSON(http.StatusOK, body)
}

// agentSend is an agent replying. The Page Inbox takes the thread first
// when it does not own it, as it does when staff reply in Business Suite.
func (e *Emulator) agentSend(a App, user, text string) (<-chan delivery, *graphError) {
	if utf8.RuneCountInString(text) > actions.MaxTextLen {
		return nil, errParam(fmt.Sprintf("Length of param message[text] must be less than or equal to %d", actions.MaxTextLen))
	}
	var first <-chan delivery
	if a.ID == PageInboxAppID {
		var gerr *graphError
		if first, gerr = e.take(a.ID, user, ""); gerr != nil {
			return nil, gerr
		}
	}
	_, ch, gerr := e.send(a.ID, user, &messenger.Message{Text: text})
	if first == nil || gerr != nil {
		return ch, gerr
	}
	// Deliveries run in order: the echo's outcome comes after the take's.
	out := make(chan delivery, 1)
	go func() {
		if d := <-first; !d.ok() {
			<-ch
			out <- d
			return
		}
		out <- <-ch
	}()
	return out, nil
}

func (e *Emulator) conversation(user string) (Thread, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.thread(user, false)
	if t == nil {
		return Thread{}, false
	}
	return e.snapshot(t), true
}

func (e *Emulator) apiConversation(c *gin.Context) {
	id, ok := psid(c)
	if !ok {
		return
	}
	th, ok := e.conversation(id)
	if !ok {
		apiError(c, http.StatusNotFound, "no conversation with "+id)
		return
	}
	c.JSON(http.StatusOK, th)
}

func (e *Emulator) apiState(c *gin.Context) {
	var rules any
	if e.opt.RulesInfo != nil {
		rules = e.opt.RulesInfo()
	}
	e.mu.Lock()
	s := e.state(rules)
	e.mu.Unlock()
	c.JSON(http.StatusOK, s)
}

// apiEvents streams every change as a Server-Sent Event named "change".
// A page that falls behind is disconnected and reloads the state when it
// reconnects.
func (e *Emulator) apiEvents(c *gin.Context) {
	ch := make(chan Change, 256)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		c.Status(http.StatusServiceUnavailable)
		return
	}
	e.subs[ch] = struct{}{}
	seq := e.seq
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
		e.mu.Unlock()
	}()
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Accel-Buffering", "no")
	c.SSEvent("hello", gin.H{"seq": seq})
	c.Writer.Flush()
	streamChanges(c.Request.Context(), c, ch)
}

// streamChanges writes changes until the page goes away or the emulator
// closes the stream.
func streamChanges(ctx context.Context, c *gin.Context, ch <-chan Change) {
	for {
		select {
		case <-ctx.Done():
			return
		case change, ok := <-ch:
			if !ok {
				return
			}
			c.SSEvent("change", change)
			c.Writer.Flush()
		}
	}
}

// maxPostbackTitle bounds a postback's title: a button's is at most 20
// characters, a menu item's 30, an ice breaker's question longer.
const maxPostbackTitle = 80

// apiUser answers the user's name, as the emulated User Profile API gives
// it, for the welcome screen of a user who has not written yet.
func (e *Emulator) apiUser(c *gin.Context) {
	id, ok := psid(c)
	if !ok {
		return
	}
	u := userProfileOf(id)
	c.JSON(http.StatusOK, gin.H{"psid": id, "first_name": u.FirstName, "last_name": u.LastName})
}
