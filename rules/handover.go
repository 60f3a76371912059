package rules

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// This file decodes the handover settings of the format: the top-level
// keys `pages` and `handover`, the rule key `paused`, and the load-time
// check of which rules read the thread's owner. The `page` match key is in
// match_page.go. docs/handover.md describes them for rules authors.

// Limits of the handover durations.
const (
	// MaxPauseOnHuman is the longest pause_on_human: the 7 days during which
	// a person may answer with the HUMAN_AGENT tag.
	MaxPauseOnHuman = 7 * 24 * time.Hour
	// MinReturnAfterIdle is the shortest return_after_idle.
	MinReturnAfterIdle = time.Minute
	// MaxReturnAfterIdle is the bound return_after_idle must stay under:
	// after 24 hours without a message the platform makes the thread idle
	// by itself, and the Page's default app (threadgate) answers next
	// anyway.
	MaxReturnAfterIdle = 24 * time.Hour
)

// durationRange is what a handover duration may be: 0 (off), or from min
// up to max (max itself excluded when maxExcluded).
type durationRange struct {
	min, max    time.Duration
	maxExcluded bool
	// why says why the upper bound exists; "" when it goes without saying.
	why string
}

// The ranges of the handover durations.
var (
	pauseOnHumanRange    = durationRange{max: MaxPauseOnHuman}
	returnAfterIdleRange = durationRange{min: MinReturnAfterIdle, max: MaxReturnAfterIdle, maxExcluded: true,
		why: "after 24h without a message the platform makes the thread idle by itself"}
)

// bounds describes the range without the 0: "at most 168h", "at least 1m
// and less than 24h".
func (r durationRange) bounds() string {
	upper := "at most " + fmtDuration(r.max)
	if r.maxExcluded {
		upper = "less than " + fmtDuration(r.max)
	}
	if r.min <= 0 {
		return upper
	}
	return "at least " + fmtDuration(r.min) + " and " + upper
}

// String describes the range, 0 included, as the limits table of
// docs/format.md shows it.
func (r durationRange) String() string {
	if r.min <= 0 {
		return "0 (off) or " + r.bounds()
	}
	return "0 (off), or " + r.bounds()
}

// handoverKeys are the keys of `handover`, in documentation order.
var handoverKeys = []string{"pause_on_human", "return_after_idle", "on_request", "dialect"}

// pageKeys are the keys of a `pages` entry given as a mapping.
var pageKeys = []string{"id", "dialect"}

// pageNameRE is what a page name may be: it is written in match: {page: NAME}.
var pageNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// durationSchema is a Go duration such as 30m or 1h30m, or 0 (off).
var durationSchema = map[string]any{"oneOf": []any{
	map[string]any{"type": "string", "pattern": `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`},
	map[string]any{"const": 0},
}}

func dialectNames() []any {
	out := make([]any, len(engine.Dialects))
	for i, d := range engine.Dialects {
		out[i] = string(d)
	}
	return out
}

func policyNames() []any {
	out := make([]any, len(engine.RequestPolicies))
	for i, p := range engine.RequestPolicies {
		out[i] = string(p)
	}
	return out
}

func handoverSchema() map[string]any {
	return map[string]any{
		"type":                 []any{"object", "null"},
		"additionalProperties": false,
		"properties": map[string]any{
			"pause_on_human": withDoc(durationSchema,
				"After a person writes to a user from the Page Inbox or another app, the bot's rules stay quiet for that user this long (e.g. 30m); rules with paused: any still fire. Default: no pause."),
			"return_after_idle": withDoc(durationSchema,
				"Take the thread back from another app when neither the user nor an agent wrote for this long ("+returnAfterIdleRange.bounds()+", e.g. 2h), then run the rules with event: returned. Default: never."),
			"on_request": map[string]any{
				"description": "What to do when another app asks for the thread: rules (the rules with event: request_thread_control decide; the default), grant (pass it at once) or ignore.",
				"enum":        policyNames(),
			},
			"dialect": map[string]any{
				"description": "How to hand threads over: legacy (the Handover Protocol's pass/release edges; the default) or routing (the Send API's thread_control of Conversation Routing). Per page under pages.",
				"enum":        dialectNames(),
			},
		},
	}
}

func pagesSchema() map[string]any {
	id := map[string]any{"oneOf": []any{
		map[string]any{"type": "integer", "minimum": 0},
		map[string]any{"type": "string", "pattern": "^[0-9]+$"},
	}}
	return map[string]any{
		"type":          []any{"object", "null"},
		"propertyNames": map[string]any{"pattern": pageNameRE.String()},
		"additionalProperties": map[string]any{"oneOf": []any{
			withDoc(id, "The Page ID or Instagram account ID."),
			map[string]any{
				"type":                 "object",
				"required":             []any{"id"},
				"additionalProperties": false,
				"properties": map[string]any{
					"id": withDoc(id, "The Page ID or Instagram account ID."),
					"dialect": map[string]any{
						"description": "This page's handover dialect, instead of handover.dialect.",
						"enum":        dialectNames(),
					},
				},
			},
		}},
	}
}

// pages decodes `pages`: names to numeric IDs, or to {id, dialect}, by
// name.
func (p *parser) pages(n *yaml.Node) map[string]engine.Page {
	out := map[string]engine.Page{}
	r := diag.Resolve(n)
	if r.Kind == yaml.ScalarNode && r.Tag == "!!null" {
		return out
	}
	if r.Kind != yaml.MappingNode {
		p.errs.Add(diag.At(r, "pages: expected a mapping of names to Page IDs such as shop: 111222333444555, got %s", diag.KindName(r)))
		return out
	}
	fields, errs := diag.Fields(r, "pages", nil)
	defer func() { p.errs.Add(errs...) }()
	lineOf := map[string]int{}
	for _, fl := range fields {
		name := fl.Key.Value
		if !pageNameRE.MatchString(name) {
			errs.Add(diag.At(fl.Key, "pages: the name %q cannot be used, expected letters, digits, _, - and . such as shop or acme_fr", name))
			continue
		}
		what := "pages." + name
		v := diag.Resolve(fl.Value)
		page := engine.Page{Name: name}
		idNode := v
		if v.Kind == yaml.MappingNode {
			sub, e := diag.Fields(v, what, pageKeys)
			errs = append(errs, e...)
			idNode = nil
			for _, s := range sub {
				switch s.Key.Value {
				case "id":
					idNode = s.Value
				case "dialect":
					d, err := decodeDialect(s.Value, what+".dialect")
					errs.Add(err)
					page.Dialect = d
				}
			}
			if idNode == nil {
				errs.Add(diag.At(v, "%s: id is required, the Page's numeric ID such as id: 111222333444555", what))
				continue
			}
		}
		id, err := pageID(idNode, what)
		if err != nil {
			errs.Add(err)
			continue
		}
		if prev, dup := lineOf[id]; dup {
			errs.Add(diag.At(diag.Resolve(idNode), "%s: Page ID %s is already listed on line %d, expected each page once", what, id, prev))
			continue
		}
		lineOf[id] = diag.Resolve(idNode).Line
		page.ID = id
		out[name] = page
	}
	return out
}

// pageID decodes a Page ID. The value is never quoted back in a message:
// a person who pastes an access token here must not see it in logs.
func pageID(n *yaml.Node, what string) (string, *diag.Error) {
	v := diag.Resolve(n)
	if v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Tag == "!!bool" || v.Tag == "!!float" {
		return "", diag.At(v, "%s: expected a numeric Page ID such as 111222333444555, got %s", what, diag.KindName(v))
	}
	id := strings.TrimSpace(v.Value)
	if messenger.IsNumericID(id) {
		return id, nil
	}
	if len(id) >= 30 {
		return "", diag.At(v, "%s: this looks like an access token, expected the Page's numeric ID; tokens never go in the rules file: put them in THREADGATE_PAGES_FILE or PAGE_ACCESS_TOKEN, and rotate this one if the file was shared", what)
	}
	return "", diag.At(v, "%s: the Page ID is not a number, expected digits only such as 111222333444555", what)
}

func decodeDialect(n *yaml.Node, what string) (engine.Dialect, *diag.Error) {
	s, err := diag.String(n, what)
	if err != nil {
		return "", err
	}
	for _, d := range engine.Dialects {
		if string(d) == s {
			return d, nil
		}
	}
	return "", diag.At(diag.Resolve(n), "%s: unknown dialect %q, expected legacy (the Handover Protocol's Graph edges) or routing (the Send API's thread_control)", what, s)
}

// handover decodes `handover`: the settings without pages (Parse adds
// them from `pages` once every key is decoded).
func (p *parser) handover(n *yaml.Node) engine.Handover {
	var h engine.Handover
	r := diag.Resolve(n)
	if r.Kind == yaml.ScalarNode && r.Tag == "!!null" {
		return h
	}
	if r.Kind != yaml.MappingNode {
		p.errs.Add(diag.At(r, "handover: expected a mapping with %s, got %s", strings.Join(handoverKeys, ", "), diag.KindName(r)))
		return h
	}
	fields, errs := diag.Fields(r, "handover", handoverKeys)
	defer func() { p.errs.Add(errs...) }()
	for _, fl := range fields {
		what := "handover." + fl.Key.Value
		switch fl.Key.Value {
		case "pause_on_human":
			d, err := duration(fl.Value, what, pauseOnHumanRange)
			errs.Add(err)
			h.PauseOnHuman = d
		case "return_after_idle":
			d, err := duration(fl.Value, what, returnAfterIdleRange)
			errs.Add(err)
			h.ReturnAfterIdle = d
		case "on_request":
			s, err := diag.String(fl.Value, what)
			if err != nil {
				errs.Add(err)
				continue
			}
			ok := false
			for _, p := range engine.RequestPolicies {
				if string(p) == s {
					h.OnRequest, ok = p, true
				}
			}
			if !ok {
				errs.Add(diag.At(diag.Resolve(fl.Value), "%s: unknown policy %q, expected rules (rules with event: request_thread_control decide), grant (pass the thread at once) or ignore", what, s))
			}
		case "dialect":
			d, err := decodeDialect(fl.Value, what)
			errs.Add(err)
			h.Dialect = d
		}
	}
	return h
}

// duration decodes a Go duration such as 30m or 2h: 0 (off) or within the
// range.
func duration(n *yaml.Node, what string, r durationRange) (time.Duration, *diag.Error) {
	v := diag.Resolve(n)
	if v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Tag == "!!bool" {
		return 0, diag.At(v, "%s: expected a duration such as 30m or 2h, got %s", what, diag.KindName(v))
	}
	if v.Tag == "!!int" || v.Tag == "!!float" {
		if strings.Trim(v.Value, "0.") == "" {
			return 0, nil
		}
		return 0, diag.At(v, "%s: %s has no unit, expected a duration such as %sm or %sh (s, m and h are the units)", what, v.Value, v.Value, v.Value)
	}
	d, err := time.ParseDuration(strings.TrimSpace(v.Value))
	switch {
	case err != nil:
		return 0, diag.At(v, "%s: %q is not a duration, expected a number and a unit such as 45s, 30m, 2h or 1h30m (days are written in hours: 48h)", what, v.Value)
	case d < 0:
		return 0, diag.At(v, "%s: the duration is negative, expected 0 (off) or a duration such as 30m", what)
	case d == 0:
		return 0, nil
	case d < r.min:
		return 0, diag.At(v, "%s: %s is too short, expected 0 (off) or at least %s", what, fmtDuration(d), fmtDuration(r.min))
	case d > r.max, r.maxExcluded && d == r.max:
		upper := "at most " + fmtDuration(r.max)
		if r.maxExcluded {
			upper = "less than " + fmtDuration(r.max)
		}
		if r.why != "" {
			upper += " (" + r.why + ")"
		}
		return 0, diag.At(v, "%s: %s is too long, expected %s", what, fmtDuration(d), upper)
	}
	return d, nil
}

// fmtDuration prints a duration without zero units: 1m, 24h, 168h.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// pausedKey decodes a rule's `paused` key: `paused: any` lets the rule fire
// while the bot is paused for the user.
func (p *parser) pausedKey(n *yaml.Node, where string) bool {
	v := diag.Resolve(n)
	if v != nil && v.Kind == yaml.ScalarNode && v.Tag == "!!str" && v.Value == "any" {
		return true
	}
	got := diag.KindName(v)
	if v != nil && v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		got = fmt.Sprintf("%q", v.Value)
	}
	p.errs.Add(diag.At(v, "%s: paused: expected any (the rule also fires while the bot is paused for the user), got %s; for a rule that fires only while paused, write paused: any and when: paused", where, got))
	return false
}

var pausedSchema = map[string]any{
	"description": "any: the rule also fires while the bot is paused for the user (handover.pause_on_human), e.g. a keyword that takes the thread back.",
	"const":       "any",
}

// ownerInTemplate finds .Owner inside a template's actions.
var (
	templateAction  = regexp.MustCompile(`\{\{.*?\}\}`)
	ownerFieldInTpl = regexp.MustCompile(`\.Owner\b`)
)

// readsOwner reports whether a rule reads the thread's owner: its `when`
// names the variable owner, or a template among its actions reads .Owner.
func readsOwner(w *engine.When, do *yaml.Node) bool {
	if w != nil && w.Program != nil {
		f := &identFinder{name: "owner"}
		root := w.Program.Node()
		ast.Walk(&root, f)
		if f.found {
			return true
		}
	}
	return templatesRead(do, ownerFieldInTpl)
}

// identFinder finds a variable in an expression.
type identFinder struct {
	name  string
	found bool
}

func (f *identFinder) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && id.Value == f.name {
		f.found = true
	}
}

// templatesRead reports whether a scalar under n holds a template action
// that matches re. It follows aliases a bounded number of steps.
func templatesRead(n *yaml.Node, re *regexp.Regexp) bool {
	budget := 10000
	stack := []*yaml.Node{n}
	for len(stack) > 0 && budget > 0 {
		budget--
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x == nil {
			continue
		}
		switch x.Kind {
		case yaml.AliasNode:
			stack = append(stack, x.Alias)
		case yaml.ScalarNode:
			if !strings.Contains(x.Value, "{{") {
				continue
			}
			for _, a := range templateAction.FindAllString(strings.ReplaceAll(x.Value, "\n", " "), -1) {
				if re.MatchString(a) {
					return true
				}
			}
		default:
			stack = append(stack, x.Content...)
		}
	}
	return false
}
