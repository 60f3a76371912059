package engine

import (
	"github.com/expr-lang/expr/vm"
	"github.com/threadgate/threadgate/actions"
)

// Subject is an event being matched against one rule. Conditions read it, and
// a regex condition records its named groups in it.
type Subject struct {
	// Event is the event being matched.
	Event *Event
	// Normalized is Normalize(Event.Text), computed once per event.
	Normalized string
	// Groups holds the named groups of the rule's regex match.
	Groups map[string]string
}

// Condition is one `match` key of a rule, compiled.
type Condition interface {
	// Key is the match key in the rules file, e.g. "text".
	Key() string
	// Holds reports whether the condition holds for the subject. It must
	// not keep s once it returns: the engine reuses it for other events.
	Holds(s *Subject) bool
	// Describe says in a few words what the condition wants, for explain.
	Describe() string
}

// Field names an event value that conditions can be indexed on.
type Field int

// Indexable fields.
const (
	FieldText       Field = iota + 1 // the normalized text
	FieldPostback                    // the postback payload
	FieldQuickReply                  // the quick-reply payload
)

// IndexedCondition is a condition that holds only when one field of the
// event equals one of its keys exactly. The engine looks such rules up in a
// map instead of testing them one by one.
type IndexedCondition interface {
	Condition
	// IndexField is the event field the keys are compared with.
	IndexField() Field
	// IndexKeys are the values that make the condition hold.
	IndexKeys() []string
}

// When is a compiled `when` expression.
type When struct {
	// Source is the expression as written.
	Source string
	// Program is the compiled, type-checked program; safe to share.
	Program *vm.Program
}

// Rule is one compiled rule.
type Rule struct {
	// Name is unique in its file.
	Name string
	// Line is where the rule starts in its file, for messages.
	Line int
	// Events are the event kinds the rule applies to.
	Events []Kind
	// Standby is true when the rule applies to standby events (and only those).
	Standby bool
	// EvenWhenPaused lets the rule fire while the bot is paused for the user.
	EvenWhenPaused bool
	// ReadsOwner is true when the rule's `when` reads owner or one of its
	// templates reads .Owner: the gateway then asks the platform who owns a
	// thread it knows nothing about before evaluating (see Set.ReadsOwner).
	ReadsOwner bool
	// Conditions must all hold.
	Conditions []Condition
	// When, if set, must evaluate to true.
	When *When
	// Actions run in order when the rule fires.
	Actions []actions.Action
	// Continue lets evaluation go on to later rules after this one fires.
	Continue bool
}

func (r *Rule) appliesTo(k Kind) bool {
	for _, e := range r.Events {
		if e == k {
			return true
		}
	}
	return false
}
