package rules

import (
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// profile warns about the profile section, when the file has one:
//
//   - a postback payload of the profile (Get Started, ice breaker, menu
//     item) that no rule answers;
//   - a rule matching a postback payload that neither the profile nor any
//     button or quick reply of the file sends;
//   - a persistent menu without get_started: the platform shows the menu
//     only when the Get Started button is set;
//   - commands beside a persistent menu: commands take priority over it.
func (l *linter) profile(root *yaml.Node) {
	profiles := l.f.Profiles()
	if !profiles.Declared() {
		return
	}
	answered := map[string]bool{}
	catchAll := false
	for _, r := range l.rules {
		if !hasKind(r.r.Events, engine.KindPostback) || r.r.Standby {
			continue
		}
		vals, ok := r.vals["postback"]
		if !ok && !hasPostbackCondition(r.r) {
			if r.r.When == nil {
				catchAll = true
			}
			continue
		}
		for _, v := range vals {
			answered[v] = true
		}
	}
	if !catchAll {
		for _, pb := range profiles.postbacks {
			if !answered[pb.payload] {
				l.out = append(l.out, Warning{Path: l.path, Line: pb.line, Column: pb.column,
					Msg: pb.what + ": no rule matches postback " + quote(pb.payload) + ", so tapping it gets no answer; add a rule with match: {postback: " + pb.payload + "}"})
			}
		}
	}
	sent := map[string]bool{}
	for _, p := range profiles.Postbacks() {
		sent[p] = true
	}
	for _, p := range buttonPayloads(root) {
		sent[p] = true
	}
	for _, r := range l.rules {
		for _, v := range r.vals["postback"] {
			if !sent[v] {
				l.warn(r.nodeOf("postback", v), "rule %q: postback %s is sent by neither the profile nor a button of this file; check its spelling, or add it to the profile", r.r.Name, quote(v))
			}
		}
	}
	for _, pn := range profileNodes(root) {
		keys := map[string]*yaml.Node{}
		for i := 0; i+1 < len(pn.node.Content); i += 2 {
			keys[pn.node.Content[i].Value] = pn.node.Content[i]
		}
		menu, hasMenu := keys["persistent_menu"]
		if !hasMenu {
			continue
		}
		if _, ok := keys["get_started"]; !ok {
			l.warn(menu, "%s: the persistent menu shows only when a Get Started button is set; add get_started: GET_STARTED (and a rule answering it)", pn.where)
		}
		if cmds, ok := keys["commands"]; ok {
			l.warn(cmds, "%s: commands take priority over the persistent menu, which people will not see while commands are set; keep one of the two", pn.where)
		}
	}
}

// hasPostbackCondition reports whether a rule has a postback condition
// that lint could not read.
func hasPostbackCondition(r *engine.Rule) bool {
	for _, c := range r.Conditions {
		if _, ok := c.(*postbackCondition); ok {
			return true
		}
	}
	return false
}

func quote(s string) string { return "\"" + s + "\"" }

// profileNode is one profile mapping of the section and how messages name it.
type profileNode struct {
	node  *yaml.Node
	where string
}

// profileNodes returns the profile mappings of the file's profile section:
// one, or one per page.
func profileNodes(root *yaml.Node) []profileNode {
	sec := mappingValue(root, "profile")
	if sec == nil || sec.Kind != yaml.MappingNode || len(sec.Content) == 0 {
		return nil
	}
	if containsString(profileKeys, sec.Content[0].Value) {
		return []profileNode{{sec, "profile"}}
	}
	var out []profileNode
	for i := 0; i+1 < len(sec.Content); i += 2 {
		if v := diag.Resolve(sec.Content[i+1]); v != nil && v.Kind == yaml.MappingNode {
			out = append(out, profileNode{v, "profile." + sec.Content[i].Value})
		}
	}
	return out
}

// mappingValue returns the resolved value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = diag.Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return diag.Resolve(n.Content[i+1])
		}
	}
	return nil
}

// buttonPayloads returns the payload of every button and quick reply that
// the rules' actions send: the value of each payload key under a rule's do.
func buttonPayloads(root *yaml.Node) []string {
	var out []string
	list := mappingValue(root, "rules")
	if list == nil {
		return nil
	}
	budget := 100000
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		n = diag.Resolve(n)
		if n == nil || budget <= 0 {
			return
		}
		budget--
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if v := diag.Resolve(n.Content[i+1]); n.Content[i].Value == "payload" && v != nil && v.Kind == yaml.ScalarNode {
					out = append(out, v.Value)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for _, r := range list.Content {
		walk(mappingValue(r, "do"))
	}
	return out
}
