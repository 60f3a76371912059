package messenger

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
)

// Change kinds of one field of a ProfilePlan.
const (
	// ChangeNone: the Page already has the field as the file declares it.
	ChangeNone = "unchanged"
	// ChangeAdd: the file declares the field and the Page does not have it.
	ChangeAdd = "add"
	// ChangeUpdate: both have the field, with different values.
	ChangeUpdate = "change"
	// ChangeRemove: the Page has the field and the file does not declare
	// it; it is deleted only when the plan prunes.
	ChangeRemove = "remove"
)

// FieldChange is what a plan does to one field of the Messenger profile.
type FieldChange struct {
	// Field is one of ProfileFields.
	Field string
	// Kind is ChangeNone, ChangeAdd, ChangeUpdate or ChangeRemove.
	Kind string
	// Live and Want are the field's JSON on the Page and in the file (nil
	// when absent).
	Live, Want json.RawMessage
	// Applied is false for a removal that the plan does not prune.
	Applied bool
}

// ProfilePlan is what it takes to make a Page's live Messenger profile
// equal to the declared one: the fields to set (in one POST) and the
// fields to delete (in one DELETE).
type ProfilePlan struct {
	// Changes holds one entry per field that either profile sets, in the
	// order of ProfileFields.
	Changes []FieldChange
	// Set holds the fields to POST (those added or changed).
	Set Profile
	// SetFields names them.
	SetFields []string
	// Delete names the fields to DELETE (removals, only when pruning).
	Delete []string
}

// Empty reports whether the plan makes no call.
func (p ProfilePlan) Empty() bool { return len(p.SetFields) == 0 && len(p.Delete) == 0 }

// PlanProfile compares the declared profile want with the live one, field
// by field, and returns what to set and, when prune is true, what to
// delete. It does no I/O. Locales are compared as sets (the order of the
// locales does not matter, the order of the items inside one does).
func PlanProfile(want, live Profile, prune bool) ProfilePlan {
	var plan ProfilePlan
	for _, f := range ProfileFields {
		w, l := normalized(&want, f), normalized(&live, f)
		if w == nil && l == nil {
			continue
		}
		c := FieldChange{Field: f, Live: live.FieldJSON(f), Want: want.FieldJSON(f)}
		switch {
		case l == nil:
			c.Kind, c.Applied = ChangeAdd, true
		case w == nil:
			c.Kind, c.Applied = ChangeRemove, prune
		case bytes.Equal(w, l):
			c.Kind = ChangeNone
		default:
			c.Kind, c.Applied = ChangeUpdate, true
		}
		plan.Changes = append(plan.Changes, c)
		switch {
		case c.Kind == ChangeRemove && prune:
			plan.Delete = append(plan.Delete, f)
		case c.Kind == ChangeAdd || c.Kind == ChangeUpdate:
			plan.SetFields = append(plan.SetFields, f)
		}
	}
	plan.Set = want.Only(plan.SetFields)
	return plan
}

// normalized returns the JSON of a field with its locales sorted, or nil.
func normalized(p *Profile, field string) []byte {
	if !p.Has(field) {
		return nil
	}
	q := *p
	switch field {
	case FieldGreeting:
		q.Greeting = sortedByLocale(q.Greeting, func(g Greeting) string { return g.Locale })
	case FieldIceBreakers:
		q.IceBreakers = sortedByLocale(q.IceBreakers, func(i IceBreakers) string { return i.Locale })
	case FieldPersistentMenu:
		q.PersistentMenu = sortedByLocale(q.PersistentMenu, func(m PersistentMenu) string { return m.Locale })
	case FieldCommands:
		q.Commands = sortedByLocale(q.Commands, func(c Commands) string { return c.Locale })
	}
	return q.FieldJSON(field)
}

func sortedByLocale[T any](in []T, locale func(T) string) []T {
	out := append([]T(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return locale(out[i]) < locale(out[j]) })
	return out
}

// ApplyProfilePlan makes the plan's calls on pageID: one POST with the
// fields to set, then one DELETE with the fields to delete. An empty plan
// makes no call.
func (c *Client) ApplyProfilePlan(ctx context.Context, pageID string, plan ProfilePlan) error {
	if len(plan.SetFields) > 0 {
		if err := c.SetProfile(ctx, pageID, plan.Set); err != nil {
			return err
		}
	}
	if len(plan.Delete) > 0 {
		if err := c.DeleteProfileFields(ctx, pageID, plan.Delete); err != nil {
			return err
		}
	}
	return nil
}
