package rules

import (
	"fmt"
	"sort"
	"strings"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// pageMatchKind is the `page` key of a rule's match: the event is for one of
// the named Pages (or Instagram accounts) of the file's `pages`.
var pageMatchKind = MatchKind{
	Key:     "page",
	Doc:     "The event is for that Page or Instagram account: a name from the file's pages (or a list of names). Default: any page.",
	Schema:  stringOrList(map[string]any{"type": "string", "minLength": 1}),
	Events:  engine.Kinds,
	Standby: true,
	compile: compilePage,
}

// pageCondition holds when the event's page is one of its pages.
type pageCondition struct {
	names []string
	ids   stringSet
}

var _ engine.Condition = (*pageCondition)(nil)

// compilePage compiles `page: NAME` or `page: [NAME, ...]` against the
// file's pages.
func compilePage(value *yaml.Node, c *matchContext) (engine.Condition, diag.List) {
	items, errs := diag.Strings(value, c.what)
	var pages map[string]engine.Page
	if c.file != nil {
		pages = c.file.Pages
	}
	cond := &pageCondition{}
	var ids []string
	for _, it := range items {
		p, ok := pages[it.Value]
		if !ok {
			errs.Add(diag.At(it.Node, "%s: unknown page %q, %s", c.what, it.Value, knownPages(pages)))
			continue
		}
		if !containsString(cond.names, p.Name) {
			cond.names = append(cond.names, p.Name)
			ids = append(ids, p.ID)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	cond.ids = newStringSet(ids)
	return cond, nil
}

func knownPages(pages map[string]engine.Page) string {
	if len(pages) == 0 {
		return "no pages are defined (add it under pages: with its Page ID, e.g. pages: {shop: 111222333444555})"
	}
	names := make([]string, 0, len(pages))
	for n := range pages {
		names = append(names, n)
	}
	sort.Strings(names)
	return "expected one of: " + strings.Join(names, ", ")
}

func (p *pageCondition) Key() string { return "page" }

func (p *pageCondition) Holds(s *engine.Subject) bool { return p.ids.has(s.Event.PageID) }

func (p *pageCondition) Describe() string {
	parts := make([]string, len(p.names))
	for i, n := range p.names {
		parts[i] = fmt.Sprintf("%s (%s)", n, p.ids.list[i])
	}
	return "wants the page " + orList(parts, func(s string) string { return s })
}
