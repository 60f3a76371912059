package reload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/rules/ruletest"
)

// AdminOptions configures the rules endpoints that MountAdmin adds.
type AdminOptions struct {
	// AllowRemote lets callers that are not on this machine use the
	// endpoints. By default only loopback callers (127.0.0.1, ::1) may; the
	// client's address is the connection's, never a forwarded header.
	AllowRemote bool
	// Now is the clock of explained events that give no time; time.Now
	// when nil.
	Now func() time.Time
	// ReloadTimeout is how long POST /-/reload waits for the reload it
	// asked for (DefaultReloadTimeout when zero). A reload still running
	// then goes on; the caller gets 202 and reads the outcome at
	// GET /-/rules.
	ReloadTimeout time.Duration
	// Profile, when set, tells what applying the rules file's Messenger
	// profile last did (serve --apply-profile); GET /-/rules shows it
	// under "profile".
	Profile func() any
}

// adminStatus is what GET /-/rules answers: the manager's Status and, with
// --apply-profile, the outcome of the last profile sync.
type adminStatus struct {
	Status
	Profile any `json:"profile,omitempty"`
}

// DefaultReloadTimeout is how long POST /-/reload waits by default.
const DefaultReloadTimeout = 30 * time.Second

// maxExplainBody bounds the body of POST /-/explain.
const maxExplainBody = 64 << 10

// MountAdmin adds the endpoints of the rules manager m to r:
//
//	GET  /-/rules     the rules in force and the last reload attempt (Status)
//	POST /-/reload    reload the rules file now; 200 with the status, or 422
//	                  with the status whose last_error lists every mistake
//	POST /-/explain   what the rules in force do with an event (a
//	                  ruletest.Input as JSON), without doing it
//
// Every endpoint answers 403 to callers that are not on this machine unless
// opts.AllowRemote is set: the status names the file's path and its last
// errors, which are nobody else's business.
func MountAdmin(r gin.IRouter, m *Manager, opts AdminOptions) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReloadTimeout <= 0 {
		opts.ReloadTimeout = DefaultReloadTimeout
	}
	local := LocalOnly(opts.AllowRemote)
	r.GET("/-/rules", local, func(c *gin.Context) {
		st := adminStatus{Status: m.Status()}
		if opts.Profile != nil {
			st.Profile = opts.Profile()
		}
		c.JSON(http.StatusOK, st)
	})
	r.POST("/-/reload", local, func(c *gin.Context) {
		done := make(chan error, 1)
		go func() { done <- m.Reload() }()
		t := time.NewTimer(opts.ReloadTimeout)
		defer t.Stop()
		select {
		case err := <-done:
			if err != nil {
				c.JSON(http.StatusUnprocessableEntity, m.Status())
				return
			}
			c.JSON(http.StatusOK, m.Status())
		case <-t.C:
			c.JSON(http.StatusAccepted, gin.H{"error": fmt.Sprintf("the reload is still running after %s; GET /-/rules shows its outcome", opts.ReloadTimeout)})
		}
	})
	r.POST("/-/explain", local, func(c *gin.Context) {
		in, err := decodeInput(c.Request.Body)
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		f := m.Current()
		if f == nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "no valid rules loaded"})
			return
		}
		x := ruletest.Explain(f.Set, in, opts.Now())
		x.Rules = &ruletest.RulesRef{Path: f.Path, Hash: f.Hash}
		c.JSON(http.StatusOK, x)
	})
}

// decodeInput reads the body of POST /-/explain.
func decodeInput(body io.Reader) (ruletest.Input, error) {
	var in ruletest.Input
	dec := json.NewDecoder(io.LimitReader(body, maxExplainBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		if errors.Is(err, io.EOF) {
			return in, errors.New(`the body is empty, expected a JSON object such as {"message": "chat with agent"}`)
		}
		return in, errors.New("the body is not an event: " + err.Error() + `; expected a JSON object such as {"message": "chat with agent"} with the keys message, postback, quick_reply, attachment, event, standby, metadata, at, owner, paused, sender, page`)
	}
	if dec.More() {
		return in, errors.New("the body holds more than one JSON value")
	}
	if err := in.Validate(); err != nil {
		return in, err
	}
	return in, nil
}

// LocalOnly returns a gin middleware that answers 403 to callers that are
// not on this machine, unless allowRemote is set. The caller's address is
// the connection's, never a forwarded header. Every /-/ endpoint uses it.
func LocalOnly(allowRemote bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !allowRemote && !fromLoopback(c.Request) {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": c.Request.URL.Path + " answers only callers on this machine (127.0.0.1 or ::1); start serve with --allow-remote-admin to allow others"})
			return
		}
		c.Next()
	}
}

// fromLoopback reports whether the request's connection comes from this
// machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
