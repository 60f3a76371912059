package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/store"
)

// This file serves the dead letters to operators: list them, replay them
// (the remaining steps of their plan run; the steps done are not repeated)
// and drop them. cmd/threadgate mounts the endpoints behind
// reload.LocalOnly; `threadgate deadletters` is their client.

// DeadLetterJSON is one dead letter as GET /-/deadletters lists it. It
// holds no user text: the user is the sender tag the logs show.
type DeadLetterJSON struct {
	ID       uint64     `json:"id"`
	Seq      uint64     `json:"seq"`
	PageID   string     `json:"page_id"`
	User     string     `json:"user"`
	Kind     string     `json:"kind"`
	MID      string     `json:"mid"`
	Accepted string     `json:"accepted"`
	FailedAt string     `json:"failed_at"`
	Rule     string     `json:"rule"`
	Step     int        `json:"step"`
	StepKind string     `json:"step_kind"`
	Attempts int        `json:"attempts"`
	Error    string     `json:"error"`
	Graph    *GraphJSON `json:"graph,omitempty"`
	ReplayOf uint64     `json:"replay_of"`
}

// GraphJSON is the Graph API error of a dead letter.
type GraphJSON struct {
	HTTPStatus int    `json:"http_status"`
	Code       int    `json:"code"`
	Subcode    int    `json:"subcode"`
	Type       string `json:"type"`
	FBTraceID  string `json:"fbtrace_id"`
}

// ReplayedJSON is one replayed dead letter: its ID and the new sequence
// number of its event.
type ReplayedJSON struct {
	ID  uint64 `json:"id"`
	Seq uint64 `json:"seq"`
}

// MountDeadLetters adds the dead-letter endpoints to r, each behind guard
// (reload.LocalOnly):
//
//	GET    /-/deadletters              {"dead_letters":[…],"count":N}, oldest first
//	POST   /-/deadletters/{id}/replay  {"replayed":ID,"seq":NEWSEQ}; 404 unknown; 503 store full
//	DELETE /-/deadletters/{id}         {"dropped":ID}; 404 unknown
//	POST   /-/deadletters/replay       {"replayed":[{"id","seq"}],"count":N}
//	DELETE /-/deadletters              {"dropped":N}
func (g *Gateway) MountDeadLetters(r gin.IRouter, guard gin.HandlerFunc) {
	if guard == nil {
		guard = func(*gin.Context) {}
	}
	r.GET("/-/deadletters", guard, g.listDeadLetters)
	r.POST("/-/deadletters/replay", guard, g.replayAllDeadLetters)
	r.POST("/-/deadletters/:id/replay", guard, g.replayDeadLetter)
	r.DELETE("/-/deadletters/:id", guard, g.dropDeadLetter)
	r.DELETE("/-/deadletters", guard, g.dropAllDeadLetters)
}

// DeadLetters returns the dead letters as the endpoint lists them.
func (g *Gateway) DeadLetters(ctx context.Context) ([]DeadLetterJSON, error) {
	dls, err := g.store.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetterJSON, 0, len(dls))
	for _, d := range dls {
		out = append(out, g.deadLetterJSON(d))
	}
	return out, nil
}

func (g *Gateway) deadLetterJSON(d store.DeadLetter) DeadLetterJSON {
	j := DeadLetterJSON{
		ID: d.ID, Seq: d.Event.Seq,
		Accepted: d.Event.Accepted.UTC().Format(time.RFC3339), FailedAt: d.Failure.At.UTC().Format(time.RFC3339),
		Rule: d.Failure.Rule, Step: d.Failure.Step, StepKind: d.Failure.StepKind, Attempts: d.Failure.Attempts,
		Error: d.Failure.Error, ReplayOf: d.Event.ReplayOf,
	}
	if in, err := decodeIncoming(d.Event.Body); err == nil {
		j.PageID = in.PageID.String()
		j.User = g.senderTag(userOf(in.Event))
		j.Kind = string(in.Event.Kind())
		if m := in.Event.Message; m != nil {
			j.MID = m.MID
		} else if p := in.Event.Postback; p != nil {
			j.MID = p.MID
		}
	}
	if ge := d.Failure.Graph; ge != nil {
		j.Graph = &GraphJSON{HTTPStatus: ge.HTTPStatus, Code: ge.Code, Subcode: ge.Subcode, Type: ge.Type, FBTraceID: ge.FBTraceID}
	}
	return j
}

func (g *Gateway) listDeadLetters(c *gin.Context) {
	dls, err := g.DeadLetters(c.Request.Context())
	if err != nil {
		adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"dead_letters": dls, "count": len(dls)})
}

// ErrShuttingDown is returned by Replay once Drain has begun: the dead
// letter stays where it is.
var ErrShuttingDown = errors.New("gateway: shutting down")

// Replay puts a dead letter back in its lane: the remaining steps of its
// plan run.
func (g *Gateway) Replay(ctx context.Context, id uint64) (store.Event, error) {
	// A replay is taken like a webhook: not once the gateway is shutting
	// down, when its queue would not run it (the memory store would then
	// lose it at exit).
	g.intake.RLock()
	defer g.intake.RUnlock()
	if g.closing {
		return store.Event{}, ErrShuttingDown
	}
	ev, err := g.store.Replay(ctx, id)
	if err != nil {
		return store.Event{}, err
	}
	if g.cfg.Source == nil {
		// A closed queue refuses it: it stays pending in the store. In
		// fleet mode the replica that holds its lane gets it.
		_ = g.queue.Push(storedJob(ev))
	}
	g.log.Info("dead letter replayed", "id", id, "seq", ev.Seq)
	return ev, nil
}

func (g *Gateway) replayDeadLetter(c *gin.Context) {
	id, ok := deadLetterID(c)
	if !ok {
		return
	}
	ev, err := g.Replay(c.Request.Context(), id)
	if err != nil {
		adminError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"replayed": id, "seq": ev.Seq})
}

func (g *Gateway) replayAllDeadLetters(c *gin.Context) {
	ctx := c.Request.Context()
	dls, err := g.store.DeadLetters(ctx)
	if err != nil {
		adminError(c, err)
		return
	}
	replayed := []ReplayedJSON{}
	for _, d := range dls {
		ev, err := g.Replay(ctx, d.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // dropped or replayed meanwhile
		}
		if err != nil {
			status, msg := adminStatus(err)
			c.JSON(status, gin.H{"error": msg, "replayed": replayed, "count": len(replayed)})
			return
		}
		replayed = append(replayed, ReplayedJSON{ID: d.ID, Seq: ev.Seq})
	}
	c.JSON(http.StatusOK, gin.H{"replayed": replayed, "count": len(replayed)})
}

func (g *Gateway) dropDeadLetter(c *gin.Context) {
	id, ok := deadLetterID(c)
	if !ok {
		return
	}
	if err := g.store.Drop(c.Request.Context(), id); err != nil {
		adminError(c, err)
		return
	}
	g.log.Info("dead letter dropped", "id", id)
	c.JSON(http.StatusOK, gin.H{"dropped": id})
}

func (g *Gateway) dropAllDeadLetters(c *gin.Context) {
	ctx := c.Request.Context()
	dls, err := g.store.DeadLetters(ctx)
	if err != nil {
		adminError(c, err)
		return
	}
	n := 0
	for _, d := range dls {
		err := g.store.Drop(ctx, d.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			adminError(c, err)
			return
		}
		n++
	}
	g.log.Info("dead letters dropped", "count", n)
	c.JSON(http.StatusOK, gin.H{"dropped": n})
}

func deadLetterID(c *gin.Context) (uint64, bool) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		c.JSON(http.StatusNotFound, gin.H{"error": "no dead letter " + strconv.Quote(c.Param("id"))})
		return 0, false
	}
	return id, true
}

// adminStatus maps a store error to the endpoint's status and message.
func adminStatus(err error) (int, string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "no such dead letter"
	case errors.Is(err, store.ErrFull):
		return http.StatusServiceUnavailable, "the store is full: too many events pending, try again later"
	case errors.Is(err, ErrShuttingDown):
		return http.StatusServiceUnavailable, "the gateway is shutting down: replay after it restarts"
	}
	return http.StatusServiceUnavailable, "the store failed: " + err.Error()
}

func adminError(c *gin.Context, err error) {
	status, msg := adminStatus(err)
	c.JSON(status, gin.H{"error": msg})
}
