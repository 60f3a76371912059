package rules

import (
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// This file adds the `profile` top-level key: the Page's Messenger profile
// (Get Started button, greeting, ice breakers, persistent menu, commands)
// declared in the rules file, for `threadgate profile diff|apply`.
// docs/profile.md describes it for rules authors.
//
// The section is one profile for every Page of the file, or, when `pages`
// names Pages, a mapping of page names to profiles:
//
//	profile:                      profile:
//	  get_started: GET_STARTED      shop:   {get_started: GET_STARTED, ...}
//	  greeting: "Hi!"               support: {get_started: HELLO, ...}
//
// The two forms are told apart by the keys: a section whose keys are
// profile keys is one profile.

// profileKeys are the keys of one profile, in documentation order.
var profileKeys = []string{"get_started", "greeting", "ice_breakers", "persistent_menu", "composer_input_disabled", "commands"}

// localeRE is what a locale may be: default, or such as en_US.
var localeRE = regexp.MustCompile(`^(default|[a-z]{2,3}_[A-Z]{2})$`)

// Profiles is the decoded `profile` section.
type Profiles struct {
	// Shared is the profile of every Page, when the section is one profile.
	Shared *messenger.Profile
	// ByPage holds the profiles by page name (a key of `pages`), when the
	// section is per Page.
	ByPage map[string]messenger.Profile
	// postbacks are where each postback payload of the section is written.
	postbacks []profilePostback
}

// profilePostback is one postback payload of the profile and its position.
type profilePostback struct {
	payload      string
	line, column int
	what         string
}

// Declared reports whether the file has a profile section.
func (p Profiles) Declared() bool { return p.Shared != nil || len(p.ByPage) > 0 }

// For returns the profile of the page named name ("" for a file without
// pages), and whether the file declares one for it.
func (p Profiles) For(name string) (messenger.Profile, bool) {
	if p.Shared != nil {
		return *p.Shared, true
	}
	prof, ok := p.ByPage[name]
	return prof, ok
}

// PageNames returns the names of the pages with a profile of their own, sorted.
func (p Profiles) PageNames() []string { return sortedKeys(p.ByPage) }

// Postbacks returns every postback payload the profiles can send, sorted.
func (p Profiles) Postbacks() []string {
	seen := map[string]bool{}
	for _, pb := range p.postbacks {
		seen[pb.payload] = true
	}
	return sortedKeys(seen)
}

// Profiles returns the file's profile section (the zero value when it has
// none): File.Profile.
func (f *File) Profiles() Profiles { return f.Profile }

// profileDecoder accumulates what decoding a profile section finds.
type profileDecoder struct {
	errs      diag.List
	postbacks []profilePostback
}

func decodeProfileSection(n *yaml.Node, f *File) (Profiles, diag.List) {
	d := &profileDecoder{}
	r := diag.Resolve(n)
	if r == nil || r.Kind != yaml.MappingNode {
		return Profiles{}, diag.List{diag.At(r, "profile: expected a mapping with get_started, greeting, ice_breakers, persistent_menu or commands, got %s", diag.KindName(r))}
	}
	perPage := false
	if len(r.Content) > 0 && !containsString(profileKeys, r.Content[0].Value) {
		perPage = true
	}
	if !perPage {
		p := d.profile(r, "profile")
		return Profiles{Shared: &p, postbacks: d.postbacks}, d.errs
	}
	pages := f.Pages
	fields, errs := diag.Fields(r, "profile", nil)
	d.errs.Add(errs...)
	out := Profiles{ByPage: map[string]messenger.Profile{}}
	for _, fl := range fields {
		name := fl.Key.Value
		if _, ok := pages[name]; !ok {
			if containsString(profileKeys, name) {
				d.errs.Add(diag.At(fl.Key, "profile: %s: the section is per Page (its first key is a page name), so profile keys cannot be mixed in; give every Page its own profile", name))
				continue
			}
			d.errs.Add(diag.At(fl.Key, "profile: %q is neither a profile key (%s) nor a page named in pages (%s)", name, joinKeys(profileKeys), pageNamesOf(pages)))
			continue
		}
		out.ByPage[name] = d.profile(fl.Value, "profile."+name)
	}
	out.postbacks = d.postbacks
	return out, d.errs
}

func joinKeys(keys []string) string {
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += k
	}
	return out
}

func pageNamesOf[V any](pages map[string]V) string {
	if len(pages) == 0 {
		return "no pages are named"
	}
	return joinKeys(sortedKeys(pages))
}

// profile decodes one profile mapping.
func (d *profileDecoder) profile(n *yaml.Node, where string) messenger.Profile {
	var p messenger.Profile
	r := diag.Resolve(n)
	if r == nil || r.Kind != yaml.MappingNode {
		d.errs.Add(diag.At(r, "%s: expected a mapping with get_started, greeting, ice_breakers, persistent_menu or commands, got %s", where, diag.KindName(r)))
		return p
	}
	fields, errs := diag.Fields(r, where, profileKeys)
	d.errs.Add(errs...)
	composer := false
	var composerNode *yaml.Node
	for _, fl := range fields {
		what := where + "." + fl.Key.Value
		switch fl.Key.Value {
		case "get_started":
			if s, ok := d.payload(fl.Value, what); ok {
				p.GetStarted = &messenger.GetStarted{Payload: s}
			}
		case "greeting":
			p.Greeting = d.greeting(fl.Value, what)
		case "ice_breakers":
			p.IceBreakers = d.iceBreakers(fl.Value, what)
		case "persistent_menu":
			p.PersistentMenu = d.menu(fl.Value, what)
		case "composer_input_disabled":
			b, err := diag.Bool(fl.Value, what)
			d.errs.Add(err)
			composer, composerNode = b, fl.Key
		case "commands":
			p.Commands = d.commands(fl.Value, what)
		}
	}
	if composerNode != nil && len(p.PersistentMenu) == 0 {
		d.errs.Add(diag.At(composerNode, "%s.composer_input_disabled: there is no persistent_menu; the setting belongs to the menu", where))
	}
	for i := range p.PersistentMenu {
		p.PersistentMenu[i].ComposerInputDisabled = composer
	}
	return p
}

// payload decodes a postback payload and records it for lint.
func (d *profileDecoder) payload(n *yaml.Node, what string) (string, bool) {
	s, err := diag.Scalar(n, what)
	if err != nil {
		d.errs.Add(err)
		return "", false
	}
	if s == "" {
		d.errs.Add(diag.At(n, "%s: the payload is empty, expected a word such as GET_STARTED", what))
		return "", false
	}
	if c := utf8.RuneCountInString(s); c > messenger.MaxProfilePayloadLen {
		d.errs.Add(diag.At(n, "%s: the payload is %d characters long, the limit is %d", what, c, messenger.MaxProfilePayloadLen))
		return "", false
	}
	r := diag.Resolve(n)
	d.postbacks = append(d.postbacks, profilePostback{payload: s, line: r.Line, column: r.Column, what: what})
	return s, true
}

// text decodes a non-empty literal of at most max characters.
func (d *profileDecoder) text(n *yaml.Node, what string, max int) (string, bool) {
	s, err := diag.String(n, what)
	if err != nil {
		d.errs.Add(err)
		return "", false
	}
	if s == "" {
		d.errs.Add(diag.At(n, "%s: the text is empty", what))
		return "", false
	}
	if c := utf8.RuneCountInString(s); max > 0 && c > max {
		d.errs.Add(diag.At(n, "%s: the text is %d characters long, the limit is %d", what, c, max))
		return "", false
	}
	return s, true
}

// localized calls item for the default locale when n is not a mapping, or
// for each locale of a mapping of locales, which must include default.
func (d *profileDecoder) localized(n *yaml.Node, what, example string, item func(v *yaml.Node, locale, what string)) {
	r := diag.Resolve(n)
	if r == nil || r.Kind != yaml.MappingNode {
		item(r, messenger.DefaultLocale, what)
		return
	}
	fields, errs := diag.Fields(r, what, nil)
	d.errs.Add(errs...)
	hasDefault := false
	for _, fl := range fields {
		loc := fl.Key.Value
		if !localeRE.MatchString(loc) {
			d.errs.Add(diag.At(fl.Key, "%s: %q is not a locale, expected default or a locale such as en_US or fr_FR (%s)", what, loc, example))
			continue
		}
		hasDefault = hasDefault || loc == messenger.DefaultLocale
		item(fl.Value, loc, what+"."+loc)
	}
	if !hasDefault {
		d.errs.Add(diag.At(r, "%s: no default locale, expected a default: entry (shown to people whose locale is not listed)", what))
	}
}

func (d *profileDecoder) greeting(n *yaml.Node, what string) []messenger.Greeting {
	var out []messenger.Greeting
	d.localized(n, what, `greeting: {default: "Hi {{user_first_name}}!", fr_FR: "Bonjour !"}`, func(v *yaml.Node, loc, what string) {
		if s, ok := d.text(v, what, messenger.MaxGreetingLen); ok {
			out = append(out, messenger.Greeting{Locale: loc, Text: s})
		}
	})
	return sortLocales(out, func(g messenger.Greeting) string { return g.Locale })
}

// list checks that n is a non-empty list of at most max items.
func (d *profileDecoder) list(n *yaml.Node, what, noun string, max int) []*yaml.Node {
	r := diag.Resolve(n)
	if r == nil || r.Kind != yaml.SequenceNode {
		d.errs.Add(diag.At(r, "%s: expected a list of %s, got %s", what, noun, diag.KindName(r)))
		return nil
	}
	if len(r.Content) == 0 {
		d.errs.Add(diag.At(r, "%s: the list is empty, give at least one or remove the key", what))
		return nil
	}
	if max > 0 && len(r.Content) > max {
		d.errs.Add(diag.At(r.Content[max], "%s: %d %s, at most %d are allowed", what, len(r.Content), noun, max))
		return nil
	}
	return r.Content
}

func (d *profileDecoder) iceBreakers(n *yaml.Node, what string) []messenger.IceBreakers {
	var out []messenger.IceBreakers
	d.localized(n, what, "ice_breakers: {default: [...], fr_FR: [...]}", func(v *yaml.Node, loc, what string) {
		l := messenger.IceBreakers{Locale: loc}
		for i, item := range d.list(v, what, "questions", messenger.MaxIceBreakers) {
			w := what + "[" + strconv.Itoa(i) + "]"
			fields, errs := diag.Fields(item, w, []string{"question", "payload"})
			d.errs.Add(errs...)
			var q messenger.IceBreaker
			var hasQ, hasP bool
			for _, fl := range fields {
				switch fl.Key.Value {
				case "question":
					q.Question, hasQ = d.text(fl.Value, w+".question", 0)
				case "payload":
					q.Payload, hasP = d.payload(fl.Value, w+".payload")
				}
			}
			if fields != nil && (!keyIn(fields, "question") || !keyIn(fields, "payload")) {
				d.errs.Add(diag.At(item, "%s: expected a question and a payload, such as {question: \"What are your opening hours?\", payload: OPENING_HOURS}", w))
			}
			if hasQ && hasP {
				l.CallToActions = append(l.CallToActions, q)
			}
		}
		out = append(out, l)
	})
	return sortLocales(out, func(i messenger.IceBreakers) string { return i.Locale })
}

// menuItemKeys are the keys of a persistent menu item; items and
// call_to_actions are recognised only to refuse nested menus clearly.
var menuItemKeys = []string{"title", "payload", "url", "items", "call_to_actions"}

func (d *profileDecoder) menu(n *yaml.Node, what string) []messenger.PersistentMenu {
	var out []messenger.PersistentMenu
	d.localized(n, what, "persistent_menu: {default: [...], fr_FR: [...]}", func(v *yaml.Node, loc, what string) {
		m := messenger.PersistentMenu{Locale: loc}
		for i, item := range d.list(v, what, "menu items", messenger.MaxMenuItems) {
			w := what + "[" + strconv.Itoa(i) + "]"
			fields, errs := diag.Fields(item, w, menuItemKeys)
			d.errs.Add(errs...)
			var it messenger.MenuItem
			ok := true
			var target *yaml.Node
			for _, fl := range fields {
				switch fl.Key.Value {
				case "title":
					var good bool
					it.Title, good = d.text(fl.Value, w+".title", messenger.MaxMenuTitleLen)
					ok = ok && good
					continue
				case "items", "call_to_actions":
					d.errs.Add(diag.At(fl.Key, "%s: nested menus are no longer supported (the platform shows every menu flat since Graph API v8.0): list the items directly in the menu, at most %d", w, messenger.MaxMenuItems))
					ok = false
					continue
				case "payload":
					it.Type = messenger.MenuPostback
					var good bool
					it.Payload, good = d.payload(fl.Value, w+".payload")
					ok = ok && good
				case "url":
					it.Type = messenger.MenuWebURL
					s, err := menuURL(fl.Value, w+".url")
					d.errs.Add(err)
					it.URL, ok = s, ok && err == nil
				}
				if target != nil {
					d.errs.Add(diag.At(fl.Key, "%s: give either payload (a postback) or url (a link), not both", w))
					ok = false
				}
				target = fl.Key
			}
			if fields == nil {
				continue
			}
			if !keyIn(fields, "title") {
				d.errs.Add(diag.At(item, "%s: title is required, such as {title: \"Talk to a person\", payload: TALK_TO_AGENT}", w))
				ok = false
			}
			if target == nil && !keyIn(fields, "items") && !keyIn(fields, "call_to_actions") {
				d.errs.Add(diag.At(item, "%s: give payload (a postback) or url (a link)", w))
				ok = false
			}
			if ok {
				m.CallToActions = append(m.CallToActions, it)
			}
		}
		out = append(out, m)
	})
	return sortLocales(out, func(m messenger.PersistentMenu) string { return m.Locale })
}

func menuURL(n *yaml.Node, what string) (string, *diag.Error) {
	s, err := diag.String(n, what)
	if err != nil {
		return "", err
	}
	u, perr := url.Parse(s)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", diag.At(n, "%s: expected an http:// or https:// address, got %q", what, s)
	}
	return s, nil
}

func (d *profileDecoder) commands(n *yaml.Node, what string) []messenger.Commands {
	var out []messenger.Commands
	d.localized(n, what, "commands: {default: [...], fr_FR: [...]}", func(v *yaml.Node, loc, what string) {
		l := messenger.Commands{Locale: loc}
		for i, item := range d.list(v, what, "commands", 0) {
			w := what + "[" + strconv.Itoa(i) + "]"
			fields, errs := diag.Fields(item, w, []string{"name", "description"})
			d.errs.Add(errs...)
			var c messenger.Command
			var hasN, hasD bool
			for _, fl := range fields {
				switch fl.Key.Value {
				case "name":
					c.Name, hasN = d.text(fl.Value, w+".name", 0)
				case "description":
					c.Description, hasD = d.text(fl.Value, w+".description", 0)
				}
			}
			if fields != nil && (!keyIn(fields, "name") || !keyIn(fields, "description")) {
				d.errs.Add(diag.At(item, "%s: expected a name and a description, such as {name: order, description: \"Where is my order?\"}", w))
			}
			if hasN && hasD {
				l.Commands = append(l.Commands, c)
			}
		}
		out = append(out, l)
	})
	return sortLocales(out, func(c messenger.Commands) string { return c.Locale })
}

func keyIn(fields []diag.Field, key string) bool {
	for _, f := range fields {
		if f.Key.Value == key {
			return true
		}
	}
	return false
}

// sortLocales puts the default locale first and the others in order, so
// that the same file always gives the same request.
func sortLocales[T any](in []T, locale func(T) string) []T {
	sort.SliceStable(in, func(i, j int) bool {
		a, b := locale(in[i]), locale(in[j])
		if (a == messenger.DefaultLocale) != (b == messenger.DefaultLocale) {
			return a == messenger.DefaultLocale
		}
		return a < b
	})
	return in
}

// profileSchema is the JSON Schema of one profile.
func profileSchema() map[string]any {
	payload := map[string]any{"type": []any{"string", "number"}, "minLength": 1, "maxLength": messenger.MaxProfilePayloadLen}
	localized := func(desc string, one map[string]any) map[string]any {
		return map[string]any{
			"description": desc + " Either the value for every locale, or a mapping of locales (default required, then such as fr_FR) to values.",
			"oneOf": []any{one, map[string]any{
				"type":                 "object",
				"required":             []any{messenger.DefaultLocale},
				"propertyNames":        map[string]any{"pattern": localeRE.String()},
				"additionalProperties": one,
			}},
		}
	}
	menuItem := map[string]any{"oneOf": []any{
		map[string]any{"type": "object", "additionalProperties": false, "required": []any{"title", "payload"}, "properties": map[string]any{
			"title": map[string]any{"type": "string", "minLength": 1, "maxLength": messenger.MaxMenuTitleLen}, "payload": payload}},
		map[string]any{"type": "object", "additionalProperties": false, "required": []any{"title", "url"}, "properties": map[string]any{
			"title": map[string]any{"type": "string", "minLength": 1, "maxLength": messenger.MaxMenuTitleLen},
			"url":   map[string]any{"type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://"}}},
	}}
	return map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"properties": map[string]any{
			"get_started": withDoc(payload, "The payload of the Get Started button of the welcome screen, sent as a postback when it is tapped. The persistent menu shows only when it is set."),
			"greeting": localized("The welcome-screen text (at most 160 characters; {{user_first_name}}, {{user_last_name}} and {{user_full_name}} are filled in by the platform).",
				map[string]any{"type": "string", "minLength": 1, "maxLength": messenger.MaxGreetingLen}),
			"ice_breakers": localized("Questions offered on the welcome screen (at most 4), each sending its payload as a postback.",
				map[string]any{"type": "array", "minItems": 1, "maxItems": messenger.MaxIceBreakers, "items": map[string]any{
					"type": "object", "additionalProperties": false, "required": []any{"question", "payload"},
					"properties": map[string]any{"question": map[string]any{"type": "string", "minLength": 1}, "payload": payload}}}),
			"persistent_menu": localized("The menu beside the composer: a flat list of at most 20 items, each a postback (title, payload) or a link (title, url); titles at most 30 characters.",
				map[string]any{"type": "array", "minItems": 1, "maxItems": messenger.MaxMenuItems, "items": menuItem}),
			"composer_input_disabled": map[string]any{"description": "true: people can only use the persistent menu, not type.", "type": "boolean"},
			"commands": localized("Commands offered in the composer; they take priority over the persistent menu.",
				map[string]any{"type": "array", "minItems": 1, "items": map[string]any{
					"type": "object", "additionalProperties": false, "required": []any{"name", "description"},
					"properties": map[string]any{"name": map[string]any{"type": "string", "minLength": 1}, "description": map[string]any{"type": "string", "minLength": 1}}}}),
		},
	}
}

// profileSectionSchema is the JSON Schema of the `profile` section: one
// profile, or profiles by page name.
func profileSectionSchema() map[string]any {
	one := profileSchema()
	return map[string]any{"oneOf": []any{one, map[string]any{
		"description":          "Profiles by page name (a key of pages).",
		"type":                 "object",
		"propertyNames":        map[string]any{"not": map[string]any{"enum": toAny(profileKeys)}},
		"additionalProperties": one,
	}}}
}

func toAny(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}
