package messenger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The Messenger Profile API (GET, POST and DELETE /me/messenger_profile)
// sets what a Page shows around its conversations: the Get Started button,
// the welcome-screen greeting, the ice breakers, the persistent menu and the
// commands. docs/profile.md lists the shapes and limits.

// Fields of the Messenger profile that threadgate manages, in the order it
// reports them.
const (
	FieldGetStarted     = "get_started"
	FieldGreeting       = "greeting"
	FieldIceBreakers    = "ice_breakers"
	FieldPersistentMenu = "persistent_menu"
	FieldCommands       = "commands"
)

// ProfileFields lists the managed fields in report order.
var ProfileFields = []string{FieldGetStarted, FieldGreeting, FieldIceBreakers, FieldPersistentMenu, FieldCommands}

// Limits of the Messenger Profile API that threadgate checks when it loads a
// rules file. Lengths count characters.
const (
	// MaxGreetingLen is the length of a greeting text.
	MaxGreetingLen = 160
	// MaxIceBreakers is the number of ice breaker questions per locale.
	MaxIceBreakers = 4
	// MaxMenuItems is the number of items of a flat persistent menu (Graph
	// API v8.0 and later, which replaced nested menus with up to 20 items).
	MaxMenuItems = 20
	// MaxMenuTitleLen is the length of a menu item's title.
	MaxMenuTitleLen = 30
	// MaxProfilePayloadLen is the length of a postback payload (Get
	// Started, ice breaker, menu item).
	MaxProfilePayloadLen = 1000
	// DefaultLocale is the locale that every localized list must have.
	DefaultLocale = "default"
)

// Profile is a Page's Messenger profile, or the part of it that threadgate
// manages. A nil or empty field is not set.
type Profile struct {
	// GetStarted is the Get Started button of the welcome screen.
	GetStarted *GetStarted `json:"get_started,omitempty"`
	// Greeting is the welcome-screen text, by locale.
	Greeting []Greeting `json:"greeting,omitempty"`
	// IceBreakers are the questions offered on the welcome screen, by locale.
	IceBreakers []IceBreakers `json:"ice_breakers,omitempty"`
	// PersistentMenu is the menu beside the composer, by locale.
	PersistentMenu []PersistentMenu `json:"persistent_menu,omitempty"`
	// Commands are the commands offered in the composer, by locale.
	Commands []Commands `json:"commands,omitempty"`
}

// GetStarted is the Get Started button: tapping it sends Payload as a postback.
type GetStarted struct {
	Payload string `json:"payload"`
}

// Greeting is the welcome-screen text for one locale. The text may hold
// {{user_first_name}}, {{user_last_name}} and {{user_full_name}}, which the
// platform fills in.
type Greeting struct {
	Locale string `json:"locale"`
	Text   string `json:"text"`
}

// IceBreakers are the welcome-screen questions for one locale (the current
// format of the API; the older flat list is read as the default locale).
type IceBreakers struct {
	Locale        string       `json:"locale"`
	CallToActions []IceBreaker `json:"call_to_actions"`
}

// IceBreaker is one question: tapping it sends Payload as a postback.
type IceBreaker struct {
	Question string `json:"question"`
	Payload  string `json:"payload"`
}

// PersistentMenu is the persistent menu for one locale.
type PersistentMenu struct {
	Locale                string     `json:"locale"`
	ComposerInputDisabled bool       `json:"composer_input_disabled"`
	CallToActions         []MenuItem `json:"call_to_actions,omitempty"`
}

// MenuItem is one item of a persistent menu: a postback (Payload) or a
// link (URL).
type MenuItem struct {
	Type               string `json:"type"`
	Title              string `json:"title"`
	Payload            string `json:"payload,omitempty"`
	URL                string `json:"url,omitempty"`
	WebviewHeightRatio string `json:"webview_height_ratio,omitempty"`
}

// Menu item types.
const (
	MenuPostback = "postback"
	MenuWebURL   = "web_url"
)

// Commands are the composer commands for one locale.
type Commands struct {
	Locale   string    `json:"locale"`
	Commands []Command `json:"commands"`
}

// Command is one composer command.
type Command struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Has reports whether the profile sets field (one of ProfileFields).
func (p *Profile) Has(field string) bool {
	switch field {
	case FieldGetStarted:
		return p.GetStarted != nil
	case FieldGreeting:
		return len(p.Greeting) > 0
	case FieldIceBreakers:
		return len(p.IceBreakers) > 0
	case FieldPersistentMenu:
		return len(p.PersistentMenu) > 0
	case FieldCommands:
		return len(p.Commands) > 0
	}
	return false
}

// FieldJSON returns the JSON of one field's value, or nil when it is not set.
func (p *Profile) FieldJSON(field string) json.RawMessage {
	if !p.Has(field) {
		return nil
	}
	var v any
	switch field {
	case FieldGetStarted:
		v = p.GetStarted
	case FieldGreeting:
		v = p.Greeting
	case FieldIceBreakers:
		v = p.IceBreakers
	case FieldPersistentMenu:
		v = p.PersistentMenu
	case FieldCommands:
		v = p.Commands
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil // the types above always encode
	}
	return b
}

// Only returns a copy of the profile holding only the given fields.
func (p *Profile) Only(fields []string) Profile {
	var out Profile
	out.Set(*p, fields)
	return out
}

// Set gives the given fields (of ProfileFields) of p the values they have
// in src: a field src does not set is cleared. Other names are ignored.
func (p *Profile) Set(src Profile, fields []string) {
	for _, f := range fields {
		switch f {
		case FieldGetStarted:
			p.GetStarted = src.GetStarted
		case FieldGreeting:
			p.Greeting = src.Greeting
		case FieldIceBreakers:
			p.IceBreakers = src.IceBreakers
		case FieldPersistentMenu:
			p.PersistentMenu = src.PersistentMenu
		case FieldCommands:
			p.Commands = src.Commands
		}
	}
}

// Postbacks returns every postback payload the profile can send: Get
// Started, ice breakers and postback menu items, each once, in that order.
func (p *Profile) Postbacks() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if p.GetStarted != nil {
		add(p.GetStarted.Payload)
	}
	for _, l := range p.IceBreakers {
		for _, q := range l.CallToActions {
			add(q.Payload)
		}
	}
	for _, l := range p.PersistentMenu {
		for _, it := range l.CallToActions {
			if it.Type == MenuPostback {
				add(it.Payload)
			}
		}
	}
	return out
}

// profileEnvelope is the answer to GET /me/messenger_profile.
type profileEnvelope struct {
	Data []json.RawMessage `json:"data"`
}

// liveProfile decodes a profile as the API returns it, reading ice breakers
// in both formats.
type liveProfile struct {
	GetStarted     *GetStarted      `json:"get_started"`
	Greeting       []Greeting       `json:"greeting"`
	IceBreakers    json.RawMessage  `json:"ice_breakers"`
	PersistentMenu []PersistentMenu `json:"persistent_menu"`
	Commands       []Commands       `json:"commands"`
}

// decodeLiveProfile decodes one item of GET messenger_profile's data.
func decodeLiveProfile(data []byte) (Profile, error) {
	var lp liveProfile
	if err := json.Unmarshal(data, &lp); err != nil {
		return Profile{}, err
	}
	p := Profile{GetStarted: lp.GetStarted, Greeting: lp.Greeting, PersistentMenu: lp.PersistentMenu, Commands: lp.Commands}
	if len(lp.IceBreakers) > 0 && string(lp.IceBreakers) != "null" {
		var items []struct {
			Locale        string       `json:"locale"`
			CallToActions []IceBreaker `json:"call_to_actions"`
			Question      string       `json:"question"`
			Payload       string       `json:"payload"`
		}
		if err := json.Unmarshal(lp.IceBreakers, &items); err != nil {
			return Profile{}, fmt.Errorf("ice_breakers: %w", err)
		}
		var flat []IceBreaker
		for _, it := range items {
			if it.Question != "" {
				flat = append(flat, IceBreaker{Question: it.Question, Payload: it.Payload})
				continue
			}
			p.IceBreakers = append(p.IceBreakers, IceBreakers{Locale: it.Locale, CallToActions: it.CallToActions})
		}
		if len(flat) > 0 {
			p.IceBreakers = append(p.IceBreakers, IceBreakers{Locale: DefaultLocale, CallToActions: flat})
		}
	}
	return p, nil
}

// GetProfile reads the given fields (all of ProfileFields when empty) of
// the Messenger profile of pageID.
func (c *Client) GetProfile(ctx context.Context, pageID string, fields []string) (Profile, error) {
	if len(fields) == 0 {
		fields = ProfileFields
	}
	var env profileEnvelope
	q := url.Values{"fields": {strings.Join(fields, ",")}}
	if err := c.callPage(ctx, http.MethodGet, "me/messenger_profile", "me/messenger_profile", pageID, q, nil, &env); err != nil {
		return Profile{}, err
	}
	var out Profile
	for _, d := range env.Data {
		p, err := decodeLiveProfile(d)
		if err != nil {
			return Profile{}, fmt.Errorf("messenger: GET me/messenger_profile: unexpected response: %w", err)
		}
		mergeProfile(&out, p)
	}
	return out, nil
}

// mergeProfile copies the fields set in p into dst.
func mergeProfile(dst *Profile, p Profile) {
	if p.GetStarted != nil {
		dst.GetStarted = p.GetStarted
	}
	if len(p.Greeting) > 0 {
		dst.Greeting = p.Greeting
	}
	if len(p.IceBreakers) > 0 {
		dst.IceBreakers = p.IceBreakers
	}
	if len(p.PersistentMenu) > 0 {
		dst.PersistentMenu = p.PersistentMenu
	}
	if len(p.Commands) > 0 {
		dst.Commands = p.Commands
	}
}

// ErrEmptyProfile is returned by SetProfile for a profile that sets nothing.
var ErrEmptyProfile = errors.New("messenger: the profile sets no field")

// SetProfile sets the fields that p sets on the Messenger profile of
// pageID, in one POST; fields p leaves unset are not touched.
func (c *Client) SetProfile(ctx context.Context, pageID string, p Profile) error {
	empty := true
	for _, f := range ProfileFields {
		if p.Has(f) {
			empty = false
		}
	}
	if empty {
		return ErrEmptyProfile
	}
	return c.callPage(ctx, http.MethodPost, "me/messenger_profile", "me/messenger_profile", pageID, nil, p, validJSON{})
}

// DeleteProfileFields deletes fields from the Messenger profile of pageID
// in one DELETE with the body {"fields": [...]}.
func (c *Client) DeleteProfileFields(ctx context.Context, pageID string, fields []string) error {
	if len(fields) == 0 {
		return errors.New("messenger: delete profile fields: no field")
	}
	body := struct {
		Fields []string `json:"fields"`
	}{fields}
	return c.callPage(ctx, http.MethodDelete, "me/messenger_profile", "me/messenger_profile", pageID, nil, body, validJSON{})
}
