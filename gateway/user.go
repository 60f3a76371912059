package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/threadgate/threadgate/conversation"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
)

// This file gives templates the user's profile ({{ .User.FirstName }}):
// asked of the User Profile API only when a rule of the set in force reads
// it, for messages and postbacks, and kept for a while so that a
// conversation costs one lookup, not one per message.

// UserProfiler is implemented by platforms that can tell a user's profile
// (the Graph API client: the User Profile API; the sandbox's emulator).
type UserProfiler interface {
	UserProfile(ctx context.Context, to messenger.Recipient) (messenger.UserProfile, error)
}

// DefaultUserProfileTTL is how long a user's profile is kept when
// Config.UserProfileTTL is zero.
const DefaultUserProfileTTL = time.Hour

// maxCachedUsers bounds the profiles kept.
const maxCachedUsers = 10000

// userProfile returns the profile of the conversation's user when the rules
// read it and the event can fire them; the zero profile otherwise, and when
// the platform refuses (templates then render their fallback, as in
// {{ or .User.FirstName "there" }}). A refusal is kept like an answer, so
// it is not asked again for every message.
func (h *handling) userProfile(ctx context.Context, set *engine.Set, cev conversation.Event) messenger.UserProfile {
	g := h.g
	if g.users == nil || set == nil || !set.ReadsUser() || cev.Standby {
		return messenger.UserProfile{}
	}
	if cev.Kind != conversation.EventMessage && cev.Kind != conversation.EventPostback {
		return messenger.UserProfile{}
	}
	p, err := g.users.Get(ctx, h.to)
	if err != nil {
		h.log.Debug("no user profile: templates read .User empty", "code", graphCode(err))
	}
	return p
}

// graphCode is the Graph API error code of err, or 0.
func graphCode(err error) int {
	var ge *messenger.GraphError
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}
