package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/store"
)

// This file makes the gateway one replica of a fleet that shares its store
// (Config.Source): a webhook's events are appended to the store and
// answered 200, but not queued here; the events this replica is to handle
// come from the source, each with a context that ends when another replica
// takes the event's lane over. The store refuses the writes made with that
// context once the lane is lost (fencing), so that two replicas never both
// complete an event. A thread's return (handover.return_after_idle) is an
// event too: the replica that handles the lane appends a "return check" to
// it, handled in order with the user's events and at most once (its dedup
// key names the quiet period).

// EventSource hands a replica of a fleet the events it is to handle: the
// pending events of the lanes it holds now, each lane's in order. Package
// gateway/redisfleet implements it on a redisstore.Consumer.
type EventSource interface {
	// Deliveries returns the events to handle. It is closed when the
	// source stops.
	Deliveries() <-chan Delivery
	// Lost reports whether err, returned by a store write made with a
	// context derived from a delivery's, means that this replica no
	// longer holds the delivery's lane. It then cancels the contexts of
	// every delivery of that holding, so that the lane's events queued
	// here are skipped: the replica that holds the lane now handles them.
	Lost(ctx context.Context, err error) bool
	// Holds reports whether this replica holds a lane now.
	Holds(lane string) bool
	// Acquired counts the acquisitions of lanes so far: when it changes,
	// the gateway looks again for the threads to watch in the lanes it
	// holds (returns.go).
	Acquired() uint64
}

// Delivery is one event for this replica to handle.
type Delivery struct {
	// Event is the stored event with its recorded progress.
	Event store.Event
	// Context ends when this replica no longer holds the event's lane. The
	// gateway makes the event's Graph calls with it, and its store
	// writes with context.WithoutCancel of it, which keeps the proof of
	// holding the lane that the store checks.
	Context context.Context
}

// Pinger is a store that can tell whether it answers; /readyz asks it at
// every probe.
type Pinger interface {
	Ping(ctx context.Context) error
}

// consume queues the deliveries of the source in their lanes until ctx
// is done, the gateway drains or the source stops.
func (g *Gateway) consume(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.timers.stop:
			return
		case d, ok := <-g.cfg.Source.Deliveries():
			if !ok {
				return
			}
			job := Job{Key: d.Event.Lane, Value: &pendingEvent{Event: d.Event, ctx: d.Context}, Enqueued: d.Event.Accepted}
			if err := g.queue.Push(job); err != nil {
				// Draining: the event stays pending for the replica
				// that holds the lane next.
				return
			}
		}
	}
}

// handleDelivery handles an event the source delivered, unless this
// replica lost its lane meanwhile.
func (g *Gateway) handleDelivery(ctx context.Context, v *pendingEvent) Verdict {
	if v.ctx.Err() != nil {
		return Done // another replica holds the lane now and handles it
	}
	hctx, cancel := context.WithCancel(v.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel) // the grace period's end
	defer stop()
	if !v.seen {
		v.seen = true
		if wait := v.Progress.NotBefore.Sub(g.now()); wait > 0 {
			return RetryAfter(wait) // a retry the previous holder scheduled
		}
	}
	verdict := g.handleStored(hctx, v)
	if v.ctx.Err() != nil {
		return Done
	}
	return verdict
}

// fenced reports whether a store error means that another replica holds
// the event's lane now (fleet mode only).
func (g *Gateway) fenced(ctx context.Context, err error) bool {
	return g.cfg.Source != nil && g.cfg.Source.Lost(ctx, err)
}

// returnCheck is the body of a return check: the quiet period it checks,
// by its dedup key.
type returnCheck struct {
	PageID string `json:"page_id"`
	UserID string `json:"user_id"`
	Key    string `json:"key"`
}

// returnCheckPrefix starts the body of a return check, and no webhook
// event's (they start with {"object":).
var returnCheckPrefix = []byte(`{"return":`)

func encodeReturnCheck(rc returnCheck) ([]byte, error) {
	b, err := json.Marshal(struct {
		Return returnCheck `json:"return"`
	}{rc})
	if err != nil {
		return nil, fmt.Errorf("gateway: encoding a return check: %w", err)
	}
	return b, nil
}

// decodeReturnCheck decodes a return check; ok is false for any other
// body.
func decodeReturnCheck(b []byte) (rc returnCheck, ok bool, err error) {
	if !bytes.HasPrefix(b, returnCheckPrefix) {
		return rc, false, nil
	}
	var w struct {
		Return returnCheck `json:"return"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return rc, true, fmt.Errorf("gateway: decoding a return check: %w", err)
	}
	if w.Return.PageID == "" || w.Return.UserID == "" || w.Return.Key == "" {
		return rc, true, fmt.Errorf("gateway: decoding a return check: a field is missing")
	}
	return w.Return, true, nil
}

// returnKey is the dedup key of a return: the thread, the owner's start
// and the last failed try name one quiet period, so that the same period
// is taken back once however many replicas append a check for it, and a
// failed try may be followed by another.
func returnKey(c conversation.Key, st conversation.State) string {
	return "r:" + stateKey(c) + ":" + strconv.FormatInt(st.OwnerSince.UnixNano(), 10) + ":" + strconv.FormatInt(st.ReturnTriedAt.UnixNano(), 10)
}

// appendReturnCheck appends a return check to a conversation's lane.
func (g *Gateway) appendReturnCheck(ctx context.Context, c conversation.Key, st conversation.State) error {
	body, err := encodeReturnCheck(returnCheck{PageID: c.PageID, UserID: c.UserID, Key: returnKey(c, st)})
	if err != nil {
		return err
	}
	_, err = g.store.Append(ctx, []store.NewEvent{{Lane: stateKey(c), Body: body}})
	return err
}

// handleReturnCheck takes a thread back, if it is still due and this
// quiet period was not taken back already, and runs the rules with
// `event: returned`; the new state and the check's dedup key are written
// with its completion.
func (g *Gateway) handleReturnCheck(ctx, wctx context.Context, ev *store.Event, rc returnCheck) Verdict {
	conv := conversation.Key{PageID: rc.PageID, UserID: rc.UserID}
	h := g.handling(conv, string(engine.KindReturned), false)
	seen, err := g.store.Seen(wctx, rc.Key)
	if err != nil {
		return g.storeFailed(wctx, h, "checking the dedup key", err)
	}
	if seen {
		if err := g.store.Complete(wctx, ev.Seq, store.Completion{}); err != nil {
			return g.storeFailed(wctx, h, "completing a return already done", err)
		}
		g.storeUp()
		return Done
	}
	before, err := g.states.Load(wctx, conv)
	if err != nil {
		return g.storeFailed(wctx, h, "loading the state", err)
	}
	cev := conversation.Event{Kind: conversation.EventReturnDue, Rules: engine.Event{PageID: conv.PageID, SenderID: conv.UserID}}
	st, effects := conversation.Handle(before, cev, h.start, h.settings)
	taking := false
	for _, e := range effects {
		if _, ok := e.(conversation.RunStep); ok {
			taking = true
		}
	}
	st = h.run(ctx, st, effects)
	rec, err := encodeState(conv, st, g.now())
	if err != nil {
		return g.deadLetter(wctx, ev, h, store.Failure{Error: err.Error()}, store.Completion{}, ReasonCorrupt)
	}
	c := store.Completion{State: rec}
	if taking {
		c.DedupKeys, c.DedupTTL = []string{rc.Key}, DedupTTL
	}
	if err := g.store.Complete(wctx, ev.Seq, c); err != nil {
		return g.storeFailed(wctx, h, "completing a return", err)
	}
	g.storeUp()
	for _, since := range h.watch {
		g.timers.watch(conv, since)
	}
	h.logHandled("ok")
	if taking {
		h.report(st)
	}
	return Done
}

// returnAppendTimeout bounds the append of one return check.
const returnAppendTimeout = 5 * time.Second
