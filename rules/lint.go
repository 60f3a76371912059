package rules

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// Warning is a likely mistake in a rules file that loads: a rule that can
// never fire, a phrase that never reaches its rule, an app no rule uses.
type Warning struct {
	// Path is the rules file's path.
	Path string
	// Line and Column locate what the warning is about.
	Line, Column int
	// Msg says what is likely wrong and what to do.
	Msg string
}

// String formats the warning as `PATH:LINE:COL: warning: message`.
func (w Warning) String() string {
	return fmt.Sprintf("%s:%d:%d: warning: %s", w.Path, w.Line, w.Column, w.Msg)
}

// Lint looks for likely mistakes in a rules file that loaded, which do not
// stop it from loading:
//
//   - a rule that can never fire, because an earlier rule without
//     continue: true fires first for every event it matches (a catch-all
//     above other rules, the same phrase or payload in an earlier rule);
//   - a phrase or payload of a rule that never reaches it for the same
//     reason, while the rule's other phrases still do;
//   - a phrase or payload listed in two rules, or twice in one rule;
//   - a one-letter contains phrase, which matches any message that has
//     that letter as a word ("i", "a");
//   - an entry of apps that nothing in the file uses;
//   - with a profile section: a profile postback no rule answers, a rule
//     postback that neither the profile nor a button sends, a persistent
//     menu without get_started, commands beside a menu (profile_lint.go).
//
// It reads the YAML that Parse decoded, so a file is parsed once. Rules
// with a `when` are never taken to fire for sure: the expression may be
// false. Warnings are sorted by position; a File that Parse did not return
// has none.
func Lint(f *File) []Warning {
	root := f.root
	if root == nil || root.Kind != yaml.MappingNode {
		return nil
	}
	path := f.Path
	l := &linter{path: path, f: f}
	var rulesNode, appsNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "rules":
			rulesNode = diag.Resolve(root.Content[i+1])
		case "apps":
			appsNode = diag.Resolve(root.Content[i+1])
		}
	}
	if rulesNode == nil || len(rulesNode.Content) != len(f.Set.Rules()) {
		return nil // cannot happen once Parse succeeded
	}
	for i, r := range f.Set.Rules() {
		l.rules = append(l.rules, newLintRule(r, diag.Resolve(rulesNode.Content[i])))
	}
	l.shadows()
	l.duplicates()
	l.oneLetter()
	l.unusedApps(root, appsNode)
	l.profile(root) // profile section: profile_lint.go (issue 14)
	sort.SliceStable(l.out, func(i, j int) bool {
		a, b := l.out[i], l.out[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Msg < b.Msg
	})
	return l.out
}

type linter struct {
	path  string
	f     *File
	rules []*lintRule
	out   []Warning
	// dead marks values already reported as never reaching their rule,
	// by rule index and key/value, so that they are not reported again as
	// duplicates.
	dead map[int]map[keyValue]bool
	// deadRule marks rules reported as never firing.
	deadRule map[int]bool
}

type keyValue struct{ key, value string }

func (l *linter) warn(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	l.out = append(l.out, Warning{Path: l.path, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// lintRule is a compiled rule with what lint reads: the values of its
// match keys that can be compared (normalized phrases, exact payloads,
// attachment types, regex sources) and the nodes they were written at.
type lintRule struct {
	r    *engine.Rule
	node *yaml.Node
	// vals maps a match key to its values; a key of a condition that lint
	// cannot compare is absent.
	vals map[string][]string
	// at maps a key and a value to the node where it is written.
	at map[keyValue]*yaml.Node
	// keyNode maps a match key to its key node.
	keyNode map[string]*yaml.Node
}

// phraseKeys are the match keys whose values are normalized phrases.
var phraseKeys = map[string]bool{"text": true, "contains": true}

// valueKeys are the match keys whose single values lint reports on, in
// the order it reports them.
var valueKeys = []string{"text", "contains", "postback", "quick_reply"}

func newLintRule(r *engine.Rule, node *yaml.Node) *lintRule {
	lr := &lintRule{r: r, node: node, vals: map[string][]string{}, at: map[keyValue]*yaml.Node{}, keyNode: map[string]*yaml.Node{}}
	for _, c := range r.Conditions {
		switch c := c.(type) {
		case *textCondition:
			lr.vals["text"] = c.phrases.list
		case *containsCondition:
			lr.vals["contains"] = c.phrases
		case *postbackCondition:
			lr.vals["postback"] = c.payloads.list
		case *quickReplyCondition:
			lr.vals["quick_reply"] = c.payloads.list
		case *attachmentCondition:
			lr.vals["attachment"] = c.types
		case *regexCondition:
			srcs := make([]string, len(c.res))
			for i, re := range c.res {
				srcs[i] = re.String()
			}
			lr.vals["regex"] = srcs
		}
	}
	// Positions come from the YAML: the rule's match mapping.
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value != "match" {
			continue
		}
		m := diag.Resolve(node.Content[i+1])
		for j := 0; j+1 < len(m.Content); j += 2 {
			key := m.Content[j].Value
			lr.keyNode[key] = m.Content[j]
			items, _ := diag.Strings(m.Content[j+1], key)
			for _, it := range items {
				v := it.Value
				if phraseKeys[key] {
					v = engine.Normalize(v)
				}
				kv := keyValue{key, v}
				if _, seen := lr.at[kv]; !seen {
					lr.at[kv] = it.Node
				} else {
					lr.at[keyValue{key, "\x00dup:" + v}] = it.Node
				}
			}
		}
	}
	return lr
}

// node returns where a value of a key is written, or the rule's node.
func (lr *lintRule) nodeOf(key, value string) *yaml.Node {
	if n := lr.at[keyValue{key, value}]; n != nil {
		return n
	}
	return lr.node
}

// only returns the rule's values with one key restricted to one value: the
// events that reach the rule through that value.
func (lr *lintRule) only(key, value string) map[string][]string {
	out := make(map[string][]string, len(lr.vals))
	for k, v := range lr.vals {
		out[k] = v
	}
	out[key] = []string{value}
	return out
}

// firesFirst reports whether rule a fires for every event that rule b
// fires for, when b's comparable match values are vals: a has no `when`,
// its events and channel take in b's, it fires while paused whenever b
// does, and each of its conditions holds whenever b's do.
func firesFirst(a, b *lintRule, vals map[string][]string) bool {
	ra, rb := a.r, b.r
	if ra.When != nil || ra.Continue || ra.Standby != rb.Standby || (rb.EvenWhenPaused && !ra.EvenWhenPaused) {
		return false
	}
	for _, k := range rb.Events {
		if !hasKind(ra.Events, k) {
			return false
		}
	}
	for _, c := range ra.Conditions {
		if !implied(c, a, b, vals) {
			return false
		}
	}
	return true
}

// implied reports whether condition c of rule a holds for every event that
// matches rule b's values vals.
func implied(c engine.Condition, a, b *lintRule, vals map[string][]string) bool {
	key := c.Key()
	av, comparable := a.vals[key]
	if !comparable {
		// A kind lint does not know: implied only by the same condition.
		for _, bc := range b.r.Conditions {
			if bc.Key() == key && bc.Describe() == c.Describe() {
				return true
			}
		}
		return false
	}
	if key == "contains" {
		for _, k := range []string{"text", "contains"} {
			if bv, ok := vals[k]; ok && allContain(bv, av) {
				return true
			}
		}
		return false
	}
	bv, ok := vals[key]
	return ok && subset(bv, av)
}

// allContain reports whether every text holds one of the phrases as words.
func allContain(texts, phrases []string) bool {
	for _, t := range texts {
		found := false
		for _, p := range phrases {
			if engine.ContainsWords(t, p) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !containsString(b, x) {
			return false
		}
	}
	return true
}

// shadows reports rules that can never fire and values that never reach
// their rule.
func (l *linter) shadows() {
	l.dead = map[int]map[keyValue]bool{}
	l.deadRule = map[int]bool{}
	for j, b := range l.rules {
		if a, ok := l.firstCover(j, b.vals); ok {
			l.deadRule[j] = true
			if len(a.r.Conditions) == 0 {
				l.warn(b.node, "rule %q can never fire: rule %q on line %d has no match keys for %s events%s and fires first for all of them (it has no continue: true); move %q above it",
					b.r.Name, a.r.Name, a.r.Line, kindText(a.r.Events), channelText(a.r.Standby), b.r.Name)
			} else {
				l.warn(b.node, "rule %q can never fire: rule %q on line %d matches every event that %q matches and comes first (it has no continue: true); move %q above it or remove it",
					b.r.Name, a.r.Name, a.r.Line, b.r.Name, b.r.Name)
			}
			continue
		}
		for _, key := range valueKeys {
			values := b.vals[key]
			if len(values) == 0 {
				continue
			}
			type hit struct {
				value string
				by    *lintRule
			}
			var hits []hit
			for _, v := range values {
				if a, ok := l.firstCover(j, b.only(key, v)); ok {
					hits = append(hits, hit{v, a})
				}
			}
			if len(hits) == 0 {
				continue
			}
			if l.dead[j] == nil {
				l.dead[j] = map[keyValue]bool{}
			}
			for _, h := range hits {
				l.dead[j][keyValue{key, h.value}] = true
			}
			if len(hits) == len(values) {
				l.deadRule[j] = true
				parts := make([]string, len(hits))
				for i, h := range hits {
					parts[i] = fmt.Sprintf("%s by rule %q on line %d", strings.TrimPrefix(strings.TrimPrefix(b.valueText(key, h.value), "the phrase "), "the payload "), h.by.r.Name, h.by.r.Line)
				}
				l.warn(b.node, "rule %q can never fire: earlier rules without continue: true take each of its %s values first: %s",
					b.r.Name, key, strings.Join(parts, ", "))
				break
			}
			for _, h := range hits {
				l.warn(b.nodeOf(key, h.value), "rule %q: match.%s: %s never reaches this rule: rule %q on line %d matches it first (it has no continue: true)",
					b.r.Name, key, b.valueText(key, h.value), h.by.r.Name, h.by.r.Line)
			}
		}
	}
}

// firstCover returns the first rule above rule j that fires for every
// event matching vals (rule j's values, perhaps restricted).
func (l *linter) firstCover(j int, vals map[string][]string) (*lintRule, bool) {
	b := l.rules[j]
	for i := 0; i < j; i++ {
		if firesFirst(l.rules[i], b, vals) {
			return l.rules[i], true
		}
	}
	return nil, false
}

// duplicates reports a phrase or payload given twice in one rule, or
// again in a later rule whose events overlap, unless it was reported as
// never reaching its rule. An earlier rule with a `when` is left out: the
// same phrase in a rule with `when` and in a later one without is the way
// to write "during opening hours this, else that".
func (l *linter) duplicates() {
	type first struct {
		rule *lintRule
		idx  int
	}
	seen := map[keyValue][]first{}
	for j, b := range l.rules {
		for _, key := range valueKeys {
			for _, v := range b.vals[key] {
				kv := keyValue{key, v}
				if n := b.at[keyValue{key, "\x00dup:" + v}]; n != nil {
					l.warn(n, "rule %q: match.%s: %s is listed twice in this rule%s", b.r.Name, key, b.valueText(key, v), normalizedNote(key))
				}
				if !l.deadRule[j] && !l.dead[j][kv] {
					for _, f := range seen[kv] {
						a := f.rule
						if a.r.When != nil || a.r.Continue || !mayOverlap(a, b, key) {
							continue
						}
						l.warn(b.nodeOf(key, v), "rule %q: match.%s: %s is also in rule %q on line %d, which comes first: when both match, only %q fires",
							b.r.Name, key, b.valueText(key, v), a.r.Name, a.r.Line, a.r.Name)
						break
					}
				}
				seen[kv] = append(seen[kv], first{b, j})
			}
		}
	}
}

// oneLetter reports contains phrases of one letter or digit.
func (l *linter) oneLetter() {
	for _, b := range l.rules {
		for _, v := range b.vals["contains"] {
			if utf8.RuneCountInString(v) == 1 {
				l.warn(b.nodeOf("contains", v), "rule %q: match.contains: the phrase %q is one character long: it matches any message with %q as a word anywhere in it; use a longer phrase, or text: to match the whole message",
					b.r.Name, v, v)
			}
		}
	}
}

// unusedApps reports entries of apps that nothing else in the file names:
// no action target, no other key's value, no quoted name in an expression
// or template.
func (l *linter) unusedApps(root, apps *yaml.Node) {
	if apps == nil || apps.Kind != yaml.MappingNode || len(l.f.Apps) == 0 {
		return
	}
	var scalars []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || n == apps {
			return
		}
		if n.Kind == yaml.ScalarNode {
			scalars = append(scalars, n.Value)
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "apps" {
			walk(root.Content[i+1])
		}
	}
	for i := 0; i+1 < len(apps.Content); i += 2 {
		name := apps.Content[i].Value
		id, ok := l.f.Apps[name]
		if !ok || messenger.IsInboxApp(id) {
			// An inbox takes threads by itself when staff answer from it:
			// naming it is useful even when no rule passes to it.
			continue
		}
		quoted := regexp.MustCompile(`["'` + "`" + `]` + regexp.QuoteMeta(name) + `["'` + "`" + `]`)
		used := false
		for _, s := range scalars {
			if s == name || quoted.MatchString(s) {
				used = true
				break
			}
		}
		if !used {
			l.warn(apps.Content[i], "apps.%s: no rule uses this app (no pass_thread_control target, no when or template that quotes its name); remove it, unless it is here only to name the thread owner in logs, metrics and the sandbox", name)
		}
	}
}

// mayOverlap reports whether one event may match both rules, as far as
// lint can tell from their channel, events and the match keys other than
// key: two rules whose payloads, phrases or attachment types have nothing
// in common, or that both name a key lint cannot compare (such as page)
// with different values, are taken to match different events.
func mayOverlap(a, b *lintRule, key string) bool {
	if a.r.Standby != b.r.Standby || !overlap(a.r.Events, b.r.Events) {
		return false
	}
	for k, av := range a.vals {
		bv, ok := b.vals[k]
		if !ok || k == key || k == "contains" || k == "regex" {
			continue
		}
		if !intersect(av, bv) {
			return false
		}
	}
	for _, ac := range a.r.Conditions {
		if _, comparable := a.vals[ac.Key()]; comparable {
			continue
		}
		for _, bc := range b.r.Conditions {
			if bc.Key() == ac.Key() && bc.Describe() != ac.Describe() {
				return false
			}
		}
	}
	return true
}

func intersect(a, b []string) bool {
	for _, x := range a {
		if containsString(b, x) {
			return true
		}
	}
	return false
}

func overlap(a, b []engine.Kind) bool {
	for _, k := range a {
		if hasKind(b, k) {
			return true
		}
	}
	return false
}

func channelText(standby bool) string {
	if standby {
		return " on the standby channel"
	}
	return ""
}

// valueText names a value of rule lr for a message, as written: the
// phrase "Hi!" (hi once normalized), the payload "X".
func (lr *lintRule) valueText(key, v string) string {
	if !phraseKeys[key] {
		return fmt.Sprintf("the payload %q", v)
	}
	n := lr.at[keyValue{key, v}]
	if n == nil || n.Value == v {
		return fmt.Sprintf("the phrase %q", v)
	}
	return fmt.Sprintf("the phrase %q (%q once normalized)", n.Value, v)
}

func normalizedNote(key string) string {
	if phraseKeys[key] {
		return " (once case, punctuation and spaces are normalized)"
	}
	return ""
}
