package rules

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
)

// handoverSummary describes a file's handover settings for the golden
// files: only what differs from the defaults.
func handoverSummary(f *File) string {
	h := f.Set.Handover()
	var b strings.Builder
	if h.PauseOnHuman != 0 {
		fmt.Fprintf(&b, "handover pause_on_human = %s\n", h.PauseOnHuman)
	}
	if h.ReturnAfterIdle != 0 {
		fmt.Fprintf(&b, "handover return_after_idle = %s\n", h.ReturnAfterIdle)
	}
	if h.OnRequest != "" {
		fmt.Fprintf(&b, "handover on_request = %s\n", h.OnRequest)
	}
	if h.Dialect != "" {
		fmt.Fprintf(&b, "handover dialect = %s\n", h.Dialect)
	}
	ids := make([]string, 0, len(h.Pages))
	for id := range h.Pages {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := h.Pages[id]
		fmt.Fprintf(&b, "page %s = %s dialect %s\n", p.Name, p.ID, h.DialectFor(id))
	}
	return b.String()
}

func TestHandoverSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want engine.Handover
	}{
		{"absent", "", engine.Handover{}},
		{"null", "handover:\n", engine.Handover{}},
		{"all", "handover: {pause_on_human: 1h30m, return_after_idle: 23h59m, on_request: ignore, dialect: routing}\n",
			engine.Handover{PauseOnHuman: 90 * time.Minute, ReturnAfterIdle: 23*time.Hour + 59*time.Minute, OnRequest: engine.RequestIgnore, Dialect: engine.DialectRouting}},
		{"zero is off", "handover: {pause_on_human: 0, return_after_idle: 0s}\n", engine.Handover{}},
		{"longest pause", "handover: {pause_on_human: 168h}\n", engine.Handover{PauseOnHuman: 168 * time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("x.yaml", []byte("version: 1\n"+tt.src+"rules: [{name: a, do: [echo: x]}]\n"))
			if err != nil {
				t.Fatal(err)
			}
			got := f.Set.Handover()
			if got.PauseOnHuman != tt.want.PauseOnHuman || got.ReturnAfterIdle != tt.want.ReturnAfterIdle ||
				got.OnRequest != tt.want.OnRequest || got.Dialect != tt.want.Dialect {
				t.Errorf("Handover = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDurationEdges checks both edges of each handover duration: the
// message of a value just beyond a limit names the limit the value just
// inside it respects, and the limits table of docs/format.md says the same.
func TestDurationEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value, err string
	}{
		{"pause_on_human", "1s", ""},
		{"pause_on_human", "168h", ""},
		{"pause_on_human", "168h0m1s", "168h0m1s is too long, expected at most 168h"},
		{"return_after_idle", "59s", "59s is too short, expected 0 (off) or at least 1m"},
		{"return_after_idle", "1m", ""},
		{"return_after_idle", "23h59m59s", ""},
		{"return_after_idle", "24h", "24h is too long, expected less than 24h (after 24h without a message the platform makes the thread idle by itself)"},
		{"return_after_idle", "25h", "25h is too long, expected less than 24h (after 24h without a message the platform makes the thread idle by itself)"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte("version: 1\nhandover: {"+tt.key+": "+tt.value+"}\nrules: [{name: a, do: [echo: x]}]\n"))
			want := ""
			if tt.err != "" {
				want = "handover." + tt.key + ": " + tt.err
			}
			got := ""
			if err != nil {
				got = err.Error()
				if i := strings.Index(got, "handover."); i >= 0 {
					got = got[i:]
				}
			}
			if got != want {
				t.Errorf("err = %q, want %q", got, want)
			}
		})
	}
	if got := returnAfterIdleRange.String(); got != "0 (off), or at least 1m and less than 24h" {
		t.Errorf("return_after_idle range = %q", got)
	}
	if got := pauseOnHumanRange.String(); got != "0 (off) or at most 168h" {
		t.Errorf("pause_on_human range = %q", got)
	}
}

func TestPagesAndDialects(t *testing.T) {
	t.Parallel()
	f, err := Parse("x.yaml", []byte(`version: 1
pages:
  a: 1
  b: {id: 2, dialect: routing}
  c: {id: 3, dialect: legacy}
handover: {dialect: routing}
rules: [{name: a, do: [echo: x]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	h := f.Set.Handover()
	for id, want := range map[string]engine.Dialect{"1": engine.DialectRouting, "2": engine.DialectRouting, "3": engine.DialectLegacy, "9": engine.DialectRouting} {
		if got := h.DialectFor(id); got != want {
			t.Errorf("DialectFor(%s) = %s, want %s", id, got, want)
		}
	}
	if h.PageName("2") != "b" || h.PageName("9") != "" {
		t.Errorf("PageName: %q %q", h.PageName("2"), h.PageName("9"))
	}
	var zero engine.Handover
	if zero.DialectFor("1") != engine.DialectLegacy || zero.Policy() != engine.RequestRules || zero.PageName("1") != "" {
		t.Error("the zero Handover does not give the defaults")
	}
}

func TestPageMatch(t *testing.T) {
	t.Parallel()
	f, err := Parse("x.yaml", []byte(`version: 1
pages: {shop: 10, blog: 20, ig: 30}
rules:
  - name: shop-or-ig
    match: {page: [shop, ig, shop]}
    do: [echo: x]
  - name: blog-returned
    match: {page: blog, event: returned}
    do: [reply: back]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := f.Set.Rules()[0]
	if len(r.Conditions) != 1 {
		t.Fatalf("conditions = %v", r.Conditions)
	}
	c := r.Conditions[0]
	if got := c.Describe(); got != "wants the page shop (10) or ig (30)" {
		t.Errorf("Describe = %q", got)
	}
	for page, want := range map[string]bool{"10": true, "30": true, "20": false, "": false} {
		ev := &engine.Event{Kind: engine.KindMessage, PageID: page, Text: "hi"}
		if got := c.Holds(subject(ev)); got != want {
			t.Errorf("page %q: Holds = %v, want %v", page, got, want)
		}
	}
	ev := &engine.Event{Kind: engine.KindReturned, PageID: "20"}
	d := f.Set.Evaluate(engine.Input{Event: ev})
	if len(d.Fired) != 1 || d.Fired[0].Rule.Name != "blog-returned" {
		t.Errorf("returned on blog fired %v", d.Fired)
	}
	ev.PageID = "10"
	if d := f.Set.Evaluate(engine.Input{Event: ev}); len(d.Fired) != 0 {
		t.Errorf("returned on shop fired %v", d.Fired[0].Rule.Name)
	}
}

func TestReadsOwner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule string
		want bool
	}{
		{`{name: a, do: [echo: x]}`, false},
		{`{name: a, when: 'owner == "zendesk"', do: [echo: x]}`, true},
		{`{name: a, when: 'owner != "self" && text != ""', do: [echo: x]}`, true},
		{`{name: a, when: 'vars.owner == "x"', do: [echo: x]}`, false},
		{`{name: a, when: 'text == "owner"', do: [echo: x]}`, false},
		{`{name: a, do: [reply: "{{ .Owner }}"]}`, true},
		{`{name: a, do: [reply: "{{ if eq .Owner \"idle\" }}hi{{ end }}"]}`, true},
		{`{name: a, do: [reply: "The .Owner says {{ .Text }}"]}`, false},
		{`{name: a, do: [{pass_thread_control: {target: z, metadata: "was {{ .Owner }}"}}]}`, true},
		{`{name: a, do: [reply: {text: "hi", quick_replies: [{title: "{{ .Owner }}", payload: P}]}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			src := "version: 1\napps: {z: 1}\nvars: {owner: x}\nrules: [" + tt.rule + "]\n"
			f, err := Parse("x.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Set.Rules()[0].ReadsOwner; got != tt.want {
				t.Errorf("ReadsOwner = %v, want %v", got, tt.want)
			}
			if got := f.Set.ReadsOwner(); got != tt.want {
				t.Errorf("Set.ReadsOwner = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPausedRules(t *testing.T) {
	t.Parallel()
	f, err := Parse("x.yaml", []byte(`version: 1
rules:
  - name: keyword
    match: {text: bot}
    paused: any
    do: [reply: "back"]
  - name: while-paused
    when: paused
    do: [reply: "an agent is on it"]
  - name: echo
    do: [echo: x]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text   string
		paused bool
		want   string
	}{
		{"bot", true, "keyword"},
		{"bot", false, "keyword"},
		{"hello", true, ""},
		{"hello", false, "echo"},
	}
	for _, tt := range tests {
		d := f.Set.Evaluate(engine.Input{Event: message(tt.text), State: engine.State{Paused: tt.paused}})
		got := ""
		if len(d.Fired) > 0 {
			got = d.Fired[0].Rule.Name
		}
		if got != tt.want {
			t.Errorf("%q paused=%v fired %q, want %q", tt.text, tt.paused, got, tt.want)
		}
	}
}
