package engine

import "testing"

func TestHandoverDefaults(t *testing.T) {
	h := Handover{Dialect: DialectRouting, OnRequest: RequestGrant, Pages: map[string]Page{
		"1": {Name: "shop", ID: "1", Dialect: DialectLegacy},
		"2": {Name: "blog", ID: "2"},
	}}
	tests := []struct {
		name        string
		h           Handover
		page        string
		wantDialect Dialect
		wantPolicy  RequestPolicy
		wantName    string
	}{
		{"zero", Handover{}, "1", DialectLegacy, RequestRules, ""},
		{"page's own dialect", h, "1", DialectLegacy, RequestGrant, "shop"},
		{"file's dialect", h, "2", DialectRouting, RequestGrant, "blog"},
		{"unnamed page", h, "3", DialectRouting, RequestGrant, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.DialectFor(tt.page); got != tt.wantDialect {
				t.Errorf("DialectFor = %s, want %s", got, tt.wantDialect)
			}
			if got := tt.h.Policy(); got != tt.wantPolicy {
				t.Errorf("Policy = %s, want %s", got, tt.wantPolicy)
			}
			if got := tt.h.PageName(tt.page); got != tt.wantName {
				t.Errorf("PageName = %q, want %q", got, tt.wantName)
			}
		})
	}
}

func TestSetReadsOwner(t *testing.T) {
	plain := &Rule{Name: "a", Events: []Kind{KindMessage}}
	reader := &Rule{Name: "b", Events: []Kind{KindMessage}, ReadsOwner: true}
	if NewSet([]*Rule{plain}, nil, nil, Handover{}).ReadsOwner() {
		t.Error("a set without owner readers reads the owner")
	}
	if !NewSet([]*Rule{plain, reader}, nil, nil, Handover{}).ReadsOwner() {
		t.Error("a set with an owner reader does not read the owner")
	}
}

func TestReturnedIsAKind(t *testing.T) {
	found := false
	for _, k := range Kinds {
		found = found || k == KindReturned
	}
	if !found {
		t.Error("Kinds lacks returned")
	}
	r := &Rule{Name: "back", Events: []Kind{KindReturned}}
	s := NewSet([]*Rule{r}, nil, nil, Handover{})
	if d := s.Evaluate(Input{Event: &Event{Kind: KindReturned}}); len(d.Fired) != 1 {
		t.Errorf("a returned rule did not fire on a returned event")
	}
	if d := s.Evaluate(Input{Event: &Event{Kind: KindReturned}, State: State{Paused: true}}); len(d.Fired) != 0 {
		t.Errorf("a returned rule fired while paused without paused: any")
	}
}
