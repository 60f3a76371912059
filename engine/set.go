package engine

import "github.com/threadgate/threadgate/actions"

// Set is a compiled rule set: the rules in file order plus what they refer
// to, and an index that finds the candidate rules of an event without testing
// every rule. A Set cannot change once NewSet built it and is safe for
// concurrent use: its parts are reached through methods, and the slices and
// maps they return must not be modified.
type Set struct {
	rules    []*Rule
	apps     map[string]string
	vars     map[string]any
	handover Handover
	appNames map[string]string // app ID → name
	index    index
	// readsUser is true when a template of a rule reads .User,
	// readsTranscript when one reads .Transcript, readsOwner when a rule
	// reads the thread's owner.
	readsUser, readsTranscript, readsOwner bool
}

type index struct {
	byField map[Field]map[string][]int // field → key → rule positions, ascending
	rest    []int                      // rules without an indexed condition
}

// NewSet builds a rule set and its index from the rules in file order, the
// file's apps (handover target names to app IDs), its vars and its handover
// settings (the zero Handover is the defaults). The set keeps the slices and
// maps it is given: the caller must not change them afterwards.
func NewSet(rules []*Rule, apps map[string]string, vars map[string]any, handover Handover) *Set {
	s := &Set{rules: rules, apps: apps, vars: vars, handover: handover, appNames: map[string]string{}}
	for name, id := range apps {
		s.appNames[id] = name
	}
	for _, r := range rules {
		s.readsUser = s.readsUser || actions.Reads(r.Actions, actions.FieldUser)
		s.readsTranscript = s.readsTranscript || actions.Reads(r.Actions, actions.FieldTranscript)
		s.readsOwner = s.readsOwner || r.ReadsOwner
	}
	s.index.byField = map[Field]map[string][]int{}
	for i, r := range rules {
		ic := indexedCondition(r)
		if ic == nil {
			s.index.rest = append(s.index.rest, i)
			continue
		}
		m := s.index.byField[ic.IndexField()]
		if m == nil {
			m = map[string][]int{}
			s.index.byField[ic.IndexField()] = m
		}
		for _, k := range ic.IndexKeys() {
			if l := m[k]; len(l) == 0 || l[len(l)-1] != i {
				m[k] = append(l, i)
			}
		}
	}
	return s
}

// Rules returns the rules in file order.
func (s *Set) Rules() []*Rule { return s.rules }

// Apps returns the file's apps: handover target names to app IDs.
func (s *Set) Apps() map[string]string { return s.apps }

// Vars returns the file's free values for templates and expressions.
func (s *Set) Vars() map[string]any { return s.vars }

// Handover returns the file's handover and pages settings (a copy; its
// Pages map is shared and must not be modified).
func (s *Set) Handover() Handover { return s.handover }

// AppName returns the name under which an app ID appears in the file's apps,
// or "" when it does not.
func (s *Set) AppName(appID string) string { return s.appNames[appID] }

// Rule returns the rule with the given name, or nil.
func (s *Set) Rule(name string) *Rule {
	for _, r := range s.rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func indexedCondition(r *Rule) IndexedCondition {
	for _, c := range r.Conditions {
		if ic, ok := c.(IndexedCondition); ok {
			return ic
		}
	}
	return nil
}

// candidates returns, in file order, the positions of the rules that may hold
// for the subject: the rules found under the event's values in the index,
// merged with the rules that are not indexed.
func (s *Set) candidates(sub *Subject, buf []int) []int {
	lists := [4][]int{s.index.rest}
	n := 1
	ev := sub.Event
	if m := s.index.byField[FieldText]; m != nil && ev.Kind == KindMessage {
		if l := m[sub.Normalized]; len(l) > 0 {
			lists[n] = l
			n++
		}
	}
	if m := s.index.byField[FieldPostback]; m != nil && ev.Kind == KindPostback {
		if l := m[ev.Payload]; len(l) > 0 {
			lists[n] = l
			n++
		}
	}
	if m := s.index.byField[FieldQuickReply]; m != nil && ev.HasQuickReply {
		if l := m[ev.QuickReply]; len(l) > 0 {
			lists[n] = l
			n++
		}
	}
	if n == 1 {
		return lists[0]
	}
	return mergeSorted(buf[:0], lists[:n])
}

// mergeSorted merges ascending lists into out, dropping repeats.
func mergeSorted(out []int, lists [][]int) []int {
	var posBuf [4]int // candidates merges at most four lists
	pos := posBuf[:0]
	if len(lists) > len(posBuf) {
		pos = make([]int, 0, len(lists))
	}
	pos = pos[:len(lists)]
	for {
		best, bi := -1, -1
		for i, l := range lists {
			if pos[i] < len(l) && (bi < 0 || l[pos[i]] < best) {
				best, bi = l[pos[i]], i
			}
		}
		if bi < 0 {
			return out
		}
		pos[bi]++
		if len(out) == 0 || out[len(out)-1] != best {
			out = append(out, best)
		}
	}
}
