package gateway

import (
	"context"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
)

// This file tracks who owns each thread beyond what handle.go learns from
// handover events and our own calls: the platform's 24-hour idle expiry,
// echoes on the standby channel, and GET thread_owner when nothing is known
// and a rule reads the owner.

// IdleExpiry is how long a thread stays with its owner without a message of
// the user; then the platform makes it idle and the Page's default app
// answers next.
const IdleExpiry = 24 * time.Hour

// ownerLookupRetry is how long after a failed GET thread_owner the gateway
// waits before asking again about the same thread.
const ownerLookupRetry = time.Minute

// Well-known inbox app IDs (messenger-platform.md §5.4), as in messenger.
const (
	PageInboxAppID      = messenger.PageInboxAppID
	InstagramInboxAppID = messenger.InstagramInboxAppID
)

// OwnerLookup is implemented by platforms that can tell who owns a thread
// (the Graph API client: GET /me/thread_owner). It returns the owner's app
// ID, or "" when the thread is idle.
type OwnerLookup interface {
	ThreadOwner(ctx context.Context, to messenger.Recipient) (string, error)
}

// currentOwner is the thread's owner as stored, or OwnerIdle once the
// platform has made it idle: 24 hours after the later of the owner's
// arrival and the user's last message.
func currentOwner(st ThreadState, now time.Time) string {
	if st.Owner == OwnerUnknown || st.Owner == OwnerIdle {
		return st.Owner
	}
	last := st.OwnerSince
	if st.LastUserMessage.After(last) {
		last = st.LastUserMessage
	}
	if !last.IsZero() && now.Sub(last) >= IdleExpiry {
		return OwnerIdle
	}
	return st.Owner
}

// heldByOther reports whether an owner is another app: an app ID or
// ownerOther.
func heldByOther(owner string) bool {
	switch owner {
	case OwnerSelf, OwnerIdle, OwnerUnknown:
		return false
	}
	return true
}

// ownerNeed caches, for one rule set, whether a rule reads the owner.
type ownerNeed struct {
	set   *engine.Set
	needs bool
}

// readsOwner reports whether a rule of set reads the owner; the answer is
// computed once per rule set.
func (g *Gateway) readsOwner(set *engine.Set) bool {
	if n := g.ownerNeed.Load(); n != nil && n.set == set {
		return n.needs
	}
	n := &ownerNeed{set: set, needs: set.ReadsOwner()}
	g.ownerNeed.Store(n)
	return n.needs
}

// lookupOwner asks the platform who owns the thread when nothing is known
// of it and a rule of set reads the owner. The answer is kept in the state
// store: later events of the thread do not ask again. It returns the state
// to evaluate with.
func (g *Gateway) lookupOwner(ctx context.Context, set *engine.Set, conv Conversation, st ThreadState, now time.Time) ThreadState {
	if currentOwner(st, now) != OwnerUnknown || !g.readsOwner(set) {
		return st
	}
	lk, ok := g.cfg.Platform.(OwnerLookup)
	if !ok || (!st.OwnerLookupAt.IsZero() && now.Sub(st.OwnerLookupAt) < ownerLookupRetry) {
		return st
	}
	g.state.Update(conv, func(s *ThreadState) { s.OwnerLookupAt = now })
	id, err := lk.ThreadOwner(ctx, messenger.Recipient{PageID: conv.PageID, UserID: conv.UserID})
	if err != nil {
		g.log.Warn("could not ask who owns the thread; rules read owner as unknown", "sender", g.senderTag(conv.UserID), "error", err.Error())
		return st
	}
	owner := id
	switch {
	case id == "":
		owner = OwnerIdle
	case g.cfg.AppID != "" && id == g.cfg.AppID:
		owner = OwnerSelf
	}
	g.setOwner(conv, owner)
	return g.state.Get(conv)
}

// learnFromEcho updates ownership from an echo: one on the standby channel
// shows that the app that sent it (or, without an app_id, some other app)
// owns the thread.
func (g *Gateway) learnFromEcho(conv Conversation, in messenger.Incoming) {
	if !in.Standby || in.Event.Message == nil {
		return
	}
	app := in.Event.Message.AppID.String()
	if app == "" || (g.cfg.AppID != "" && app == g.cfg.AppID) {
		if cur := g.state.Get(conv).Owner; !heldByOther(cur) {
			g.setOwner(conv, ownerOther)
		}
		return
	}
	if g.state.Get(conv).Owner != app {
		g.setOwner(conv, app)
	}
}
