package actions

import (
	"fmt"
	"sort"
)

// kinds is every action kind, in the order the docs list them. A new kind
// is a new file with its Spec, added here.
var kinds = []Spec{
	echoSpec,
	replySpec,
	passThreadControlSpec,
	takeThreadControlSpec,
	requestThreadControlSpec,
	releaseThreadControlSpec,
	senderActionSpec,
}

// registry indexes kinds by name.
var registry = index(kinds)

// index maps specs by name. A duplicate name is a programming error found
// when the package initializes, never caused by input, hence the panic.
func index(specs []Spec) map[string]Spec {
	m := make(map[string]Spec, len(specs))
	for _, s := range specs {
		if _, dup := m[s.Name]; dup {
			panic(fmt.Sprintf("actions: kind %q is listed twice", s.Name))
		}
		m[s.Name] = s
	}
	return m
}

// Lookup returns the action kind named name.
func Lookup(name string) (Spec, bool) {
	s, ok := registry[name]
	return s, ok
}

// Names returns the action kinds' names in sorted order.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Specs returns every action kind in the order the docs list them. The
// slice is a copy; the Specs' Schema maps are shared and must not be
// modified.
func Specs() []Spec {
	return append([]Spec(nil), kinds...)
}
