package sandbox

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/messenger"
)

// The Messenger Profile API (GET, POST and DELETE /me/messenger_profile)
// and the User Profile API (GET /<PSID>) as the emulator serves them. The
// profile is what the playground shows: the welcome screen (greeting, Get
// Started, ice breakers) of a new user and the persistent menu beside the
// composer.

// profileFields are the fields the emulator keeps, with their setters.
var profileFields = map[string]func(p *messenger.Profile, raw json.RawMessage) error{
	messenger.FieldGetStarted: func(p *messenger.Profile, raw json.RawMessage) error {
		var v messenger.GetStarted
		err := json.Unmarshal(raw, &v)
		p.GetStarted = &v
		return err
	},
	messenger.FieldGreeting: func(p *messenger.Profile, raw json.RawMessage) error {
		var v []messenger.Greeting // fresh: the old value may be shared with a published snapshot
		err := json.Unmarshal(raw, &v)
		p.Greeting = v
		return err
	},
	messenger.FieldIceBreakers: func(p *messenger.Profile, raw json.RawMessage) error {
		var v []messenger.IceBreakers // fresh: the old value may be shared with a published snapshot
		err := json.Unmarshal(raw, &v)
		p.IceBreakers = v
		return err
	},
	messenger.FieldPersistentMenu: func(p *messenger.Profile, raw json.RawMessage) error {
		var v []messenger.PersistentMenu // fresh: the old value may be shared with a published snapshot
		err := json.Unmarshal(raw, &v)
		p.PersistentMenu = v
		return err
	},
	messenger.FieldCommands: func(p *messenger.Profile, raw json.RawMessage) error {
		var v []messenger.Commands // fresh: the old value may be shared with a published snapshot
		err := json.Unmarshal(raw, &v)
		p.Commands = v
		return err
	},
}

// graphMessengerProfile serves GET, POST and DELETE /me/messenger_profile.
func (e *Emulator) graphMessengerProfile(method string, p params) (any, *graphError) {
	switch method {
	case http.MethodGet:
		fields := strings.Split(p.str("fields"), ",")
		if p.str("fields") == "" {
			return nil, errParam("param fields must be non-empty.")
		}
		e.mu.Lock()
		cur := e.profile
		e.mu.Unlock()
		out := map[string]json.RawMessage{}
		for _, f := range fields {
			if _, ok := profileFields[f]; !ok {
				return nil, errParam("param fields: unknown field " + f)
			}
			if raw := cur.FieldJSON(f); raw != nil {
				out[f] = raw
			}
		}
		data := []any{}
		if len(out) > 0 {
			data = append(data, out)
		}
		return gin.H{"data": data}, nil
	case http.MethodPost:
		gerr := e.updateProfile(func(next *messenger.Profile) *graphError {
			set := 0
			for name, raw := range p {
				if hidden[name] {
					continue
				}
				setter, ok := profileFields[name]
				if !ok {
					return errParam("param " + name + " is not a Messenger profile field the sandbox knows")
				}
				if err := setter(next, raw); err != nil {
					return errParam("param " + name + " is malformed: " + err.Error())
				}
				set++
			}
			if set == 0 {
				return errParam("You must set at least one field")
			}
			return checkProfile(next)
		})
		if gerr != nil {
			return nil, gerr
		}
		return gin.H{"result": "success"}, nil
	case http.MethodDelete:
		var fields []string
		if !p.decode("fields", &fields) || len(fields) == 0 {
			return nil, errParam("param fields must be a non-empty list")
		}
		gerr := e.updateProfile(func(next *messenger.Profile) *graphError {
			for _, f := range fields {
				if _, ok := profileFields[f]; !ok {
					return errParam("param fields: unknown field " + f)
				}
			}
			next.Set(messenger.Profile{}, fields)
			return nil
		})
		if gerr != nil {
			return nil, gerr
		}
		return gin.H{"result": "success"}, nil
	}
	return nil, errUnsupported(method, "me")
}

// updateProfile changes a copy of the Page's profile with change and, when
// it succeeds, stores it and tells open pages, all under one lock.
func (e *Emulator) updateProfile(change func(p *messenger.Profile) *graphError) *graphError {
	e.mu.Lock()
	defer e.mu.Unlock()
	next := e.profile
	if gerr := change(&next); gerr != nil {
		return gerr
	}
	e.profile = next
	cp := next
	e.publish(Change{Seq: e.nextSeq(), Profile: &cp})
	return nil
}

// checkProfile enforces the Messenger Profile API's limits.
func checkProfile(p *messenger.Profile) *graphError {
	if p.GetStarted != nil && (p.GetStarted.Payload == "" || len(p.GetStarted.Payload) > messenger.MaxProfilePayloadLen) {
		return errParam("param get_started[payload] must be 1 to 1000 characters")
	}
	for _, g := range p.Greeting {
		if utf8.RuneCountInString(g.Text) > messenger.MaxGreetingLen {
			return errParam("param greeting[text] must be at most 160 characters")
		}
	}
	for _, l := range p.IceBreakers {
		if len(l.CallToActions) > messenger.MaxIceBreakers {
			return errParam("param ice_breakers[call_to_actions] must have at most 4 elements")
		}
	}
	for _, m := range p.PersistentMenu {
		if len(m.CallToActions) > messenger.MaxMenuItems {
			return errParam("param persistent_menu[call_to_actions] must have at most 20 elements")
		}
		for _, it := range m.CallToActions {
			switch {
			case it.Title == "" || utf8.RuneCountInString(it.Title) > messenger.MaxMenuTitleLen:
				return errParam("param persistent_menu[call_to_actions][title] must be 1 to 30 characters")
			case it.Type == messenger.MenuPostback && (it.Payload == "" || len(it.Payload) > messenger.MaxProfilePayloadLen):
				return errParam("param persistent_menu[call_to_actions][payload] must be 1 to 1000 characters")
			case it.Type == messenger.MenuWebURL && it.URL == "":
				return errParam("param persistent_menu[call_to_actions][url] must be non-empty")
			case it.Type != messenger.MenuPostback && it.Type != messenger.MenuWebURL:
				return errParam("param persistent_menu[call_to_actions][type] must be one of {postback, web_url} (nested menus are no longer supported)")
			}
		}
	}
	return nil
}

// The sandbox's users have names: a first and a last name picked from
// these lists by the PSID, so that a PSID always has the same name.
var (
	firstNames = []string{"Anna", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hiro", "Inès", "Jonas", "Kemi", "Luca"}
	lastNames  = []string{"Berg", "Costa", "Dubois", "Evans", "Fischer", "García", "Haddad", "Ito", "Jensen", "Kowalski"}
)

// userProfileOf returns the sandbox's profile of a user.
func userProfileOf(psid string) messenger.UserProfile {
	h := fnv.New32a()
	h.Write([]byte(psid))
	n := h.Sum32()
	return messenger.UserProfile{
		FirstName: firstNames[n%uint32(len(firstNames))],
		LastName:  lastNames[(n/uint32(len(firstNames)))%uint32(len(lastNames))],
		Locale:    "en_US",
		Timezone:  1,
	}
}

// graphUserProfile serves GET /<PSID>?fields=…: the user's profile, for a
// user who wrote to the Page; other IDs are refused as Facebook does.
func (e *Emulator) graphUserProfile(method, psid string, p params) (any, *graphError) {
	if method != http.MethodGet {
		return nil, errUnsupported(method, psid)
	}
	e.mu.Lock()
	known := e.threads[psid] != nil
	e.mu.Unlock()
	if !known {
		return nil, errUnsupported(method, psid)
	}
	u := userProfileOf(psid)
	all := map[string]any{"first_name": u.FirstName, "last_name": u.LastName, "locale": u.Locale, "timezone": u.Timezone}
	out := gin.H{"id": psid}
	fields := p.str("fields")
	if fields == "" {
		fields = "first_name,last_name"
	}
	for _, f := range strings.Split(fields, ",") {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out, nil
}
