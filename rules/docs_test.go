package rules

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/actions"
	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/ruletest"
)

// formatDoc is the rules format reference, relative to this package. Parts
// of it are generated from the loader's tables: the blocks between
// `<!-- BEGIN GENERATED: NAME -->` and `<!-- END GENERATED: NAME -->`.
// `go test ./rules -run TestFormatReference -update` rewrites them.
const formatDoc = "../docs/format.md"

// generatedBlocks are the generated parts of the format reference, by
// marker name, in the order they appear.
func generatedBlocks() []struct{ name, body string } {
	return []struct{ name, body string }{
		{"match", matchTable(MatchKinds())},
		{"actions", actionsTable(actions.Specs())},
		{"limits", limitsTable()},
	}
}

// TestFormatReferenceTables keeps the tables of docs/format.md that come
// from code (match keys, actions, limits) equal to what the code says.
// It is not parallel: with -update it rewrites docs/format.md, which
// parallel tests read, and sequential tests end before parallel ones start.
func TestFormatReferenceTables(t *testing.T) {
	data, err := os.ReadFile(formatDoc)
	if err != nil {
		t.Fatalf("read the format reference: %v", err)
	}
	doc := string(data)
	want := doc
	for _, b := range generatedBlocks() {
		want, err = replaceGenerated(want, b.name, b.body)
		if err != nil {
			t.Fatalf("%s: %v", formatDoc, err)
		}
	}
	if *update {
		if want != doc {
			if err := os.WriteFile(formatDoc, []byte(want), 0o644); err != nil {
				t.Fatalf("rewrite the format reference: %v", err)
			}
		}
		return
	}
	for _, b := range generatedBlocks() {
		got, err := generated(doc, b.name)
		if err != nil {
			t.Fatalf("%s: %v", formatDoc, err)
		}
		if got != b.body {
			t.Errorf("%s: the generated %q table differs from the code (run go test ./rules -run TestFormatReference -update and review the diff)\n--- in the doc\n%s--- from the code\n%s",
				formatDoc, b.name, got, b.body)
		}
	}
}

// TestFormatReferenceNamesEverything checks that the hand-written parts of
// docs/format.md mention every key, variable, field and function the code
// knows, so that a key added to a table cannot go undocumented.
func TestFormatReferenceNamesEverything(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(formatDoc)
	if err != nil {
		t.Fatalf("read the format reference: %v", err)
	}
	doc := string(data)
	var names []string
	add := func(prefix string, list ...string) {
		for _, s := range list {
			names = append(names, prefix+s)
		}
	}
	add("", topLevelKeys()...)
	add("", ruleKeys...)
	add("", handoverKeys...)
	add("", pageKeys...)
	for _, k := range engine.Kinds {
		add("", string(k))
	}
	for _, p := range engine.RequestPolicies {
		add("", string(p))
	}
	for _, d := range engine.Dialects {
		add("", string(d))
	}
	add("", attachmentTypes...)
	add("", ruletest.InputKeys()...)
	env := reflect.TypeOf(engine.Env{})
	for i := 0; i < env.NumField(); i++ {
		tag := env.Field(i).Tag.Get("expr")
		if env.Field(i).Type.Kind() == reflect.Func {
			tag += "("
		}
		add("", tag)
	}
	add("", "hour(", "weekday(")
	data2 := reflect.TypeOf(actions.Data{})
	for i := 0; i < data2.NumField(); i++ {
		add(".", data2.Field(i).Name)
	}
	add("", "lower", "upper", "trim", "join")

	for _, n := range names {
		if !strings.Contains(doc, "`"+n) {
			t.Errorf("%s does not mention `%s`", formatDoc, n)
		}
	}
}

// TestFormatReferenceExamples loads every complete rules file shown in
// docs/format.md (a ```yaml block that starts with version: 1) and runs its
// rule tests, so that the examples never drift from the format.
func TestFormatReferenceExamples(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(formatDoc)
	if err != nil {
		t.Fatalf("read the format reference: %v", err)
	}
	blocks := yamlBlocks(string(data))
	n := 0
	for _, b := range blocks {
		if !completeFile.MatchString(b.text) {
			continue
		}
		n++
		t.Run(fmt.Sprintf("line %d", b.line), func(t *testing.T) {
			f, err := Parse(fmt.Sprintf("%s:%d", formatDoc, b.line), []byte(b.text))
			if err != nil {
				t.Fatalf("the example does not load:\n%v", err)
			}
			now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
			for _, r := range ruletest.Run(f.Set, f.Tests, now) {
				if !r.Passed() {
					t.Errorf("rule test of the example failed: %s", r.Summary())
				}
			}
		})
	}
	if n == 0 {
		t.Fatalf("%s holds no complete rules file (a ```yaml block with version: 1)", formatDoc)
	}
}

// completeFile tells a whole rules file from a fragment of one.
var completeFile = regexp.MustCompile(`(?m)^version: 1\b`)

type codeBlock struct {
	line int // the line of the block's first line of text, from 1
	text string
}

// yamlBlocks returns the fenced ```yaml blocks of a Markdown text.
func yamlBlocks(md string) []codeBlock {
	var out []codeBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```yaml" {
			continue
		}
		start := i + 1
		var b strings.Builder
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			b.WriteString(lines[i])
			b.WriteByte('\n')
		}
		out = append(out, codeBlock{line: start + 1, text: b.String()})
	}
	return out
}

func TestReplaceGenerated(t *testing.T) {
	t.Parallel()
	const begin, end = "<!-- BEGIN GENERATED: x -->\n", "<!-- END GENERATED: x -->\n"
	tests := []struct {
		name, doc, want, err string
	}{
		{name: "replaces", doc: "a\n" + begin + "old\n" + end + "b\n", want: "a\n" + begin + "new\n" + end + "b\n"},
		{name: "empty block", doc: begin + end, want: begin + "new\n" + end},
		{name: "no begin", doc: "a\n" + end, err: "no line <!-- BEGIN GENERATED: x -->"},
		{name: "no end", doc: begin + "old\n", err: "no line <!-- END GENERATED: x -->"},
		{name: "twice", doc: begin + end + begin + end, err: "twice"},
		{name: "end first", doc: end + begin, err: "before"},
		{name: "other name", doc: "<!-- BEGIN GENERATED: y -->\n" + end, err: "no line <!-- BEGIN GENERATED: x -->"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := replaceGenerated(tt.doc, "x", "new\n")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if body, err := generated(got, "x"); err != nil || body != "new\n" {
				t.Errorf("generated() = %q, %v", body, err)
			}
		})
	}
}

func TestSchemaRendering(t *testing.T) {
	t.Parallel()
	str := map[string]any{"type": "string", "minLength": 1}
	tmpl := map[string]any{"type": "string", "anyOf": []any{map[string]any{"maxLength": 10}, map[string]any{"pattern": `\{\{`}}}
	values := []struct {
		name   string
		schema map[string]any
		want   string
	}{
		{"string or list", stringOrList(str), "a text, or a list of them"},
		{"enum or list", stringOrList(map[string]any{"type": "string", "enum": []string{"a", "b"}}), "`a`, `b`, or a list of them"},
		{"regex", stringOrList(map[string]any{"type": "string", "format": "regex"}), "an RE2 regular expression, or a list of them"},
		{"bool", map[string]any{"type": "boolean"}, "`true` or `false`"},
	}
	for _, tt := range values {
		t.Run("value/"+tt.name, func(t *testing.T) {
			if got := schemaValue(tt.schema); got != tt.want {
				t.Errorf("schemaValue = %q, want %q", got, tt.want)
			}
		})
	}

	forms := []struct {
		name string
		spec actions.Spec
		want string
	}{
		{"template", actions.Spec{Name: "say", Schema: tmpl}, "`say: TEMPLATE`"},
		{"enum", actions.Spec{Name: "show", Schema: map[string]any{"type": "string", "enum": []any{"on", "off"}}}, "`show: on` or `show: off`"},
		{"short form of a required key", actions.Spec{Name: "go", FieldNames: []string{"to", "note"}, Schema: map[string]any{"oneOf": []any{
			str,
			map[string]any{"type": "object", "required": []any{"to"}, "properties": map[string]any{"note": tmpl, "to": str}},
		}}}, "`go: TO` or `go: {to: TO, note: TEMPLATE}`"},
		{"optional keys", actions.Spec{Name: "take", Schema: map[string]any{"oneOf": []any{
			map[string]any{"type": "null"},
			map[string]any{"type": "object", "properties": map[string]any{"metadata": tmpl}},
		}}}, "`take:` (nothing after it) or `take: {}` or `take: {metadata: TEMPLATE}`"},
		{"empty", actions.Spec{Name: "drop", Schema: map[string]any{"oneOf": []any{
			map[string]any{"type": "null"},
			map[string]any{"type": "object", "maxProperties": 0},
		}}}, "`drop:` (nothing after it) or `drop: {}`"},
		{"lists", actions.Spec{Name: "ask", Schema: map[string]any{"type": "object", "required": []any{"q"}, "properties": map[string]any{
			"q": tmpl,
			"choices": map[string]any{"type": "array", "items": map[string]any{"oneOf": []any{
				map[string]any{"type": "object", "required": []any{"title", "payload"}, "properties": map[string]any{"payload": str, "title": str}},
				map[string]any{"type": "object", "required": []any{"title", "url"}, "properties": map[string]any{"url": str, "title": str}},
			}}},
		}}}, "`ask: {q: TEMPLATE, choices: [{title, payload} or {title, url}, …]}`"},
	}
	for _, tt := range forms {
		t.Run("forms/"+tt.name, func(t *testing.T) {
			if got := actionForms(tt.spec); got != tt.want {
				t.Errorf("actionForms = %q, want %q", got, tt.want)
			}
		})
	}
}

// replaceGenerated returns doc with the block named name replaced by body.
func replaceGenerated(doc, name, body string) (string, error) {
	from, to, err := blockBounds(doc, name)
	if err != nil {
		return "", err
	}
	return doc[:from] + body + doc[to:], nil
}

// generated returns the body of the block named name.
func generated(doc, name string) (string, error) {
	from, to, err := blockBounds(doc, name)
	if err != nil {
		return "", err
	}
	return doc[from:to], nil
}

// blockBounds finds the body of the generated block named name: from the
// line after its BEGIN marker to the start of its END marker line.
func blockBounds(doc, name string) (from, to int, err error) {
	begin := "<!-- BEGIN GENERATED: " + name + " -->"
	end := "<!-- END GENERATED: " + name + " -->"
	find := func(marker string) (int, error) {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(marker) + `[ \t]*$`)
		locs := re.FindAllStringIndex(doc, -1)
		switch len(locs) {
		case 0:
			return 0, fmt.Errorf("no line %s, expected one", marker)
		case 1:
			return locs[0][0], nil
		}
		return 0, fmt.Errorf("the line %s is there twice, expected it once", marker)
	}
	b, err := find(begin)
	if err != nil {
		return 0, 0, err
	}
	e, err := find(end)
	if err != nil {
		return 0, 0, err
	}
	if e < b {
		return 0, 0, fmt.Errorf("%s comes before %s", end, begin)
	}
	from = b + len(begin)
	if nl := strings.IndexByte(doc[from:], '\n'); nl >= 0 {
		from += nl + 1
	}
	return from, e, nil
}

// matchTable renders the `match` keys as a Markdown table.
func matchTable(kinds []MatchKind) string {
	var b strings.Builder
	b.WriteString("| key | value | holds when | event kinds | on standby |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, k := range kinds {
		standby := "no"
		if k.Standby {
			standby = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Key, schemaValue(k.Schema), mdText(k.Doc), kindsText(k.Events), standby)
	}
	return b.String()
}

// kindsText lists event kinds for the table: "all" for every kind.
func kindsText(ks []engine.Kind) string {
	if slices.Equal(ks, engine.Kinds) {
		return "all"
	}
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = "`" + string(k) + "`"
	}
	return strings.Join(parts, ", ")
}

// schemaValue describes the value a match key takes, from its schema.
func schemaValue(s map[string]any) string {
	if alts, ok := s["oneOf"].([]any); ok && len(alts) == 2 {
		item, _ := alts[0].(map[string]any)
		list, _ := alts[1].(map[string]any)
		if list["type"] == "array" && reflect.DeepEqual(list["items"], alts[0]) {
			return scalarValue(item) + ", or a list of them"
		}
	}
	return scalarValue(s)
}

func scalarValue(s map[string]any) string {
	if e := enumValues(s); e != nil {
		parts := make([]string, len(e))
		for i, v := range e {
			parts[i] = "`" + v + "`"
		}
		return strings.Join(parts, ", ")
	}
	switch {
	case s["type"] == "boolean":
		return "`true` or `false`"
	case s["format"] == "regex":
		return "an RE2 regular expression"
	case s["type"] == "string":
		return "a text"
	}
	return "a value"
}

// enumValues returns a schema's enum as strings, or nil.
func enumValues(s map[string]any) []string {
	switch e := s["enum"].(type) {
	case []string:
		return e
	case []any:
		out := make([]string, len(e))
		for i, v := range e {
			out[i] = fmt.Sprint(v)
		}
		return out
	}
	return nil
}

// actionsTable renders the action kinds as a Markdown table.
func actionsTable(specs []actions.Spec) string {
	var b strings.Builder
	b.WriteString("| action | forms | what it does | in a rule test's `expect.actions` |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, s := range specs {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name, actionForms(s), mdText(s.Doc), expectText(s))
	}
	return b.String()
}

// expectText says what a rule-test expectation of the action can check.
func expectText(s actions.Spec) string {
	var parts []string
	if s.ExpectField != "" {
		parts = append(parts, fmt.Sprintf("`%s: VALUE` compares `%s`", s.Name, s.ExpectField))
	}
	if len(s.FieldNames) > 0 {
		fields := make([]string, len(s.FieldNames))
		for i, f := range s.FieldNames {
			fields[i] = "`" + f + "`"
		}
		parts = append(parts, "a mapping may check "+strings.Join(fields, ", "))
	}
	if len(parts) == 0 {
		return "only that it runs"
	}
	return strings.Join(parts, "; ")
}

// actionForms lists the ways an action can be written, from its schema.
func actionForms(s actions.Spec) string {
	alts := []any{s.Schema}
	if o, ok := s.Schema["oneOf"].([]any); ok {
		alts = o
	}
	var forms []string
	for _, a := range alts {
		alt, _ := a.(map[string]any)
		for _, v := range altForms(alt, alts, s.FieldNames) {
			if v == "" {
				forms = append(forms, fmt.Sprintf("`%s:` (nothing after it)", s.Name))
				continue
			}
			forms = append(forms, fmt.Sprintf("`%s: %s`", s.Name, v))
		}
	}
	return strings.Join(forms, " or ")
}

// altForms renders one alternative of an action's schema: the values that
// follow `NAME:`, "" for nothing.
func altForms(alt map[string]any, all []any, order []string) []string {
	if e := enumValues(alt); e != nil {
		return e
	}
	switch alt["type"] {
	case "null":
		return []string{""}
	case "string":
		if isTemplate(alt) {
			return []string{"TEMPLATE"}
		}
		return []string{shortFormOf(alt, all)}
	case "object":
		props, _ := alt["properties"].(map[string]any)
		if len(props) == 0 {
			return []string{"{}"}
		}
		keys := orderedKeys(alt, order)
		parts := make([]string, len(keys))
		for i, k := range keys {
			p, _ := props[k].(map[string]any)
			parts[i] = k + ": " + placeholder(k, p)
		}
		full := "{" + strings.Join(parts, ", ") + "}"
		if req, _ := alt["required"].([]any); len(req) == 0 {
			return []string{"{}", full}
		}
		return []string{full}
	}
	return []string{"VALUE"}
}

// shortFormOf names a scalar form by the required key of an object form
// that has the same schema: `pass_thread_control: TARGET` is short for
// `{target: TARGET}`.
func shortFormOf(s map[string]any, all []any) string {
	for _, a := range all {
		obj, _ := a.(map[string]any)
		props, _ := obj["properties"].(map[string]any)
		req, _ := obj["required"].([]any)
		for _, r := range req {
			name, _ := r.(string)
			p, _ := props[name].(map[string]any)
			if p != nil && reflect.DeepEqual(withoutDoc(p), withoutDoc(s)) {
				return strings.ToUpper(name)
			}
		}
	}
	return "TEXT"
}

func withoutDoc(s map[string]any) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		if k != "description" {
			out[k] = v
		}
	}
	return out
}

// isTemplate reports whether a string schema is a template's (see
// actions.templateSchema: a literal is limited, a value with "{{" is not).
func isTemplate(s map[string]any) bool {
	alts, _ := s["anyOf"].([]any)
	for _, a := range alts {
		if m, ok := a.(map[string]any); ok && m["pattern"] == `\{\{` {
			return true
		}
	}
	return false
}

// placeholder renders the value of key k inside an object form.
func placeholder(k string, s map[string]any) string {
	if e := enumValues(s); e != nil {
		return strings.Join(e, "/")
	}
	switch s["type"] {
	case "string":
		if isTemplate(s) {
			return "TEMPLATE"
		}
		return strings.ToUpper(k)
	case "array":
		items, _ := s["items"].(map[string]any)
		return "[" + itemShape(items) + ", …]"
	case "object":
		return itemShape(s)
	}
	return strings.ToUpper(k)
}

// itemShape renders a list item: its keys, or its alternatives.
func itemShape(s map[string]any) string {
	if alts, ok := s["oneOf"].([]any); ok {
		parts := make([]string, len(alts))
		for i, a := range alts {
			m, _ := a.(map[string]any)
			parts[i] = itemShape(m)
		}
		return strings.Join(parts, " or ")
	}
	if s["type"] == "object" {
		return "{" + strings.Join(orderedKeys(s, nil), ", ") + "}"
	}
	return "VALUE"
}

// orderedKeys orders an object schema's properties: the required ones in
// their order, then those named in order, then the rest sorted.
func orderedKeys(s map[string]any, order []string) []string {
	props, _ := s["properties"].(map[string]any)
	var out []string
	seen := map[string]bool{}
	addKey := func(k string) {
		if _, ok := props[k]; ok && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	req, _ := s["required"].([]any)
	for _, r := range req {
		if name, ok := r.(string); ok {
			addKey(name)
		}
	}
	for _, k := range order {
		addKey(k)
	}
	rest := make([]string, 0, len(props))
	for k := range props {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	for _, k := range rest {
		addKey(k)
	}
	return out
}

// limitsTable renders the limits the loader and the renderer check.
func limitsTable() string {
	rows := []struct{ what, limit, when string }{
		{"a message's text: `reply` (`reply.text`), `echo` (prefix and the user's text together)", chars(actions.MaxTextLen), "literal text at load; a template's result when it renders"},
		{"`reply.text` of a reply with `buttons`", chars(actions.MaxButtonTextLen), "the same"},
		{"`metadata` of `pass_thread_control`, `take_thread_control`, `request_thread_control`", chars(actions.MaxMetadataLen), "the same"},
		{"`quick_replies` under one reply", fmt.Sprint(actions.MaxQuickReplies), "at load"},
		{"`buttons` of one reply", fmt.Sprint(actions.MaxButtons), "at load"},
		{"`title` of a quick reply or a button", chars(actions.MaxTitleLen), "at load (titles are literal, not templates)"},
		{"`payload` of a quick reply or a postback button", chars(actions.MaxPayloadLen), "at load (payloads are literal)"},
		{"one `when` expression", thousands(engine.MaxExprNodes) + " nodes (operators, names, values)", "at load"},
		{"`handover.pause_on_human`", pauseOnHumanRange.String(), "at load"},
		{"`handover.return_after_idle`", returnAfterIdleRange.String(), "at load"},
		{"cards of one `reply` (a carousel)", fmt.Sprint(actions.MaxCards), "at load"},
		{"`title` and `subtitle` of a card", chars(actions.MaxCardTextLen), "literal text at load; a template's result when it renders"},
		{"`profile.greeting` (each locale)", chars(messenger.MaxGreetingLen), "at load"},
		{"`profile.ice_breakers` (each locale)", fmt.Sprint(messenger.MaxIceBreakers), "at load"},
		{"`profile.persistent_menu` items (each locale; flat, nested menus are refused)", fmt.Sprint(messenger.MaxMenuItems), "at load"},
		{"`title` of a menu item", chars(messenger.MaxMenuTitleLen), "at load"},
		{"a profile postback `payload` (Get Started, ice breaker, menu item)", chars(messenger.MaxProfilePayloadLen), "at load"},
		{"the rules file", fmt.Sprintf("%d MiB", MaxFileBytes>>20), "at load"},
		{"rules in one file", thousands(MaxRules), "at load"},
		{"`range` in a template", "only over `.Transcript`, `.Groups` or `.Vars` (a range over a number could loop without bound); no `define`, `template` or `block`", "at load"},
	}
	var b strings.Builder
	b.WriteString("| what | limit | checked |\n")
	b.WriteString("|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.what, r.limit, r.when)
	}
	return b.String()
}

func chars(n int) string {
	return fmt.Sprintf("%s characters", thousands(n))
}

// thousands prints n with a comma between thousands: 2,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// mdText escapes text for a Markdown table cell: `<name>` would be taken
// for HTML and `|` for a cell border.
func mdText(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;", "|", `\|`).Replace(s)
}
