package messenger

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// UserProfile is what the User Profile API gives a Page about a person who
// wrote to it (GET /<PSID>?fields=first_name,last_name,profile_pic,locale,
// timezone,gender). Every field may be empty: the person may not have
// granted it, and the app may lack the permission.
type UserProfile struct {
	// FirstName and LastName are the person's names.
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	// ProfilePic is a URL of the person's picture; it expires.
	ProfilePic string `json:"profile_pic,omitempty"`
	// Locale is such as en_US.
	Locale string `json:"locale,omitempty"`
	// Timezone is the offset from UTC in hours (may be fractional, e.g. 5.5).
	Timezone float64 `json:"timezone,omitempty"`
	// Gender is as the platform gives it, often empty.
	Gender string `json:"gender,omitempty"`
}

// UserProfileFields are the fields UserProfile asks for.
var UserProfileFields = []string{"first_name", "last_name", "profile_pic", "locale", "timezone", "gender"}

// UserProfile reads the profile of the user to.UserID with the token of
// to.PageID. Logs and metrics name the call "user_profile", never the PSID.
func (c *Client) UserProfile(ctx context.Context, to Recipient) (UserProfile, error) {
	if to.UserID == "" || strings.ContainsAny(to.UserID, "/?#") {
		return UserProfile{}, fmt.Errorf("messenger: user profile: invalid user ID %q", to.UserID)
	}
	var p UserProfile
	q := url.Values{"fields": {strings.Join(UserProfileFields, ",")}}
	if err := c.callPage(ctx, http.MethodGet, url.PathEscape(to.UserID), "user_profile", to.PageID, q, nil, &p); err != nil {
		return UserProfile{}, err
	}
	return p, nil
}

// UserProfileCache keeps user profiles for a time, so that a conversation
// costs one lookup per TTL, not one per message. A failed lookup is cached
// too, as an empty profile: templates then render their fallback
// ({{ or .User.FirstName "there" }}) without asking the platform again for
// every message. It is safe for concurrent use.
type UserProfileCache struct {
	fetch func(context.Context, Recipient) (UserProfile, error)
	ttl   time.Duration
	max   int
	now   func() time.Time

	mu      sync.Mutex
	entries map[Recipient]cachedUser
}

type cachedUser struct {
	profile UserProfile
	expires time.Time
}

// NewUserProfileCache returns a cache that calls fetch on a miss (usually
// Client.UserProfile), keeps answers for ttl and holds at most max entries
// (expired ones are dropped first, then the oldest). now defaults to
// time.Now.
func NewUserProfileCache(fetch func(context.Context, Recipient) (UserProfile, error), ttl time.Duration, max int, now func() time.Time) *UserProfileCache {
	if now == nil {
		now = time.Now
	}
	if max < 1 {
		max = 1
	}
	return &UserProfileCache{fetch: fetch, ttl: ttl, max: max, now: now, entries: map[Recipient]cachedUser{}}
}

// Get returns the profile of to, from the cache or fetched. On a failed
// fetch it returns an empty profile and the error (the empty profile is
// cached for the TTL, the error is not repeated on hits).
func (c *UserProfileCache) Get(ctx context.Context, to Recipient) (UserProfile, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.entries[to]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.profile, nil
	}
	c.mu.Unlock()
	p, err := c.fetch(ctx, to)
	if err != nil && errors.Is(err, context.Canceled) {
		return UserProfile{}, err // not the platform's answer: do not cache
	}
	if err != nil {
		p = UserProfile{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict(now)
	c.entries[to] = cachedUser{profile: p, expires: now.Add(c.ttl)}
	return p, err
}

// Len returns the number of entries, expired ones included.
func (c *UserProfileCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// evict makes room for one entry: it drops expired entries and, when the
// cache is still full, the one that expires first. c.mu is held.
func (c *UserProfileCache) evict(now time.Time) {
	if len(c.entries) < c.max {
		return
	}
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for len(c.entries) >= c.max {
		var oldest Recipient
		var at time.Time
		first := true
		for k, e := range c.entries {
			if first || e.expires.Before(at) {
				oldest, at, first = k, e.expires, false
			}
		}
		delete(c.entries, oldest)
	}
}
