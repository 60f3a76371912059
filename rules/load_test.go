package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	goldenfile "github.com/threadgate/threadgate/internal/golden"

	"github.com/threadgate/threadgate/engine"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	goldenfile.Check(t, path, got, *update)
}

func yamlFiles(t testing.TB, dir string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".test.yaml") { // rule-test files, not rules files
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatalf("no .yaml files in %s", dir)
	}
	return files
}

// TestBadFiles loads every file under testdata/bad and compares all of its
// messages with the file's .errors golden file.
func TestBadFiles(t *testing.T) {
	t.Parallel()
	for _, path := range yamlFiles(t, "testdata/bad") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			f, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded with %d rules, want errors", f.RuleCount)
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want *Errors: %v", err, err)
			}
			lines := errs.Lines()
			if !sort.StringsAreSorted(lines) && !sortedByPosition(lines) {
				t.Errorf("messages are not sorted by position:\n%s", err)
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, path+":") {
					t.Errorf("message without the file's path: %s", l)
				}
			}
			if err.Error() != strings.Join(lines, "\n") {
				t.Errorf("Error() and Lines() disagree")
			}
			golden(t, strings.TrimSuffix(path, ".yaml")+".errors", strings.Join(lines, "\n")+"\n")
		})
	}
}

func sortedByPosition(lines []string) bool {
	key := func(l string) (int, int) {
		var line, col int
		parts := strings.SplitN(l, ":", 4)
		if len(parts) < 4 {
			return 0, 0
		}
		fmt.Sscan(parts[1], &line)
		fmt.Sscan(parts[2], &col)
		return line, col
	}
	for i := 1; i < len(lines); i++ {
		l1, c1 := key(lines[i-1])
		l2, c2 := key(lines[i])
		if l1 > l2 || (l1 == l2 && c1 > c2) {
			return false
		}
	}
	return true
}

// TestGoodFiles loads every file under testdata/good and compares a summary
// of the compiled rules with the file's .golden file.
func TestGoodFiles(t *testing.T) {
	t.Parallel()
	for _, path := range yamlFiles(t, "testdata/good") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			f, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if f.RuleCount != len(f.Set.Rules()) {
				t.Errorf("RuleCount = %d, Set has %d rules", f.RuleCount, len(f.Set.Rules()))
			}
			golden(t, strings.TrimSuffix(path, ".yaml")+".golden", summary(f))
		})
	}
}

// summary describes a compiled file, one rule per paragraph.
func summary(f *File) string {
	var b strings.Builder
	for _, name := range sortedKeys(f.Apps) {
		fmt.Fprintf(&b, "app %s = %s\n", name, f.Apps[name])
	}
	for _, name := range sortedKeys(f.Vars) {
		fmt.Fprintf(&b, "var %s = %#v\n", name, f.Vars[name])
	}
	b.WriteString(handoverSummary(f))
	for _, r := range f.Set.Rules() {
		fmt.Fprintf(&b, "\nrule %q (line %d)\n", r.Name, r.Line)
		fmt.Fprintf(&b, "  events: %s\n", kindText(r.Events))
		if r.Standby {
			b.WriteString("  standby: true\n")
		}
		if r.EvenWhenPaused {
			b.WriteString("  paused: any\n")
		}
		if r.ReadsOwner {
			b.WriteString("  reads owner: true\n")
		}
		for _, c := range r.Conditions {
			_, indexed := c.(engine.IndexedCondition)
			fmt.Fprintf(&b, "  %s: %s (indexed: %v)\n", c.Key(), c.Describe(), indexed)
		}
		if r.When != nil {
			fmt.Fprintf(&b, "  when: %s\n", strings.TrimSpace(r.When.Source))
		}
		for _, a := range r.Actions {
			fmt.Fprintf(&b, "  do: %s\n", a.Kind())
		}
		if r.Continue {
			b.WriteString("  continue: true\n")
		}
	}
	return b.String()
}

// TestExamples loads every file in examples/, so that the examples never rot.
func TestExamples(t *testing.T) {
	t.Parallel()
	files := yamlFiles(t, "../examples")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			if first != "# yaml-language-server: $schema=../rules/schema.json" {
				t.Errorf("first line is %q, want the yaml-language-server schema comment", first)
			}
			if _, err := Load(path); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
	var errs *Errors
	if errors.As(err, &errs) {
		t.Errorf("a missing file gave *Errors, want an I/O error")
	}
}

func TestParseFile(t *testing.T) {
	t.Parallel()
	src := []byte("version: 1\napps: {zendesk: \"200646160103180\"}\nvars: {brand: Acme, n: 3, on: true, ratio: 0.5}\nrules:\n  - name: echo\n    do: [echo: \"[bot] \"]\n")
	f, err := Parse("inline.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	// The file's hash is the SHA-256 of its bytes, as sha256sum prints it.
	sum := sha256.Sum256(src)
	if want := hex.EncodeToString(sum[:]); f.Hash != want {
		t.Errorf("Hash = %q, want %q", f.Hash, want)
	}
	g, err := Parse("other.yaml", append([]byte(nil), src...))
	if err != nil {
		t.Fatal(err)
	}
	if g.Hash != f.Hash {
		t.Errorf("same content, different hashes: %s, %s", f.Hash, g.Hash)
	}
	h, err := Parse("inline.yaml", append(src, '\n'))
	if err != nil {
		t.Fatal(err)
	}
	if h.Hash == f.Hash {
		t.Errorf("different content, same hash")
	}
	if f.Path != "inline.yaml" || f.RuleCount != 1 {
		t.Errorf("Path, RuleCount = %q, %d", f.Path, f.RuleCount)
	}
	if f.Apps["zendesk"] != "200646160103180" {
		t.Errorf("Apps = %v", f.Apps)
	}
	wantVars := map[string]any{"brand": "Acme", "n": 3, "on": true, "ratio": 0.5}
	if fmt.Sprint(f.Vars) != fmt.Sprint(wantVars) {
		t.Errorf("Vars = %#v, want %#v", f.Vars, wantVars)
	}
	if f.Set.AppName("200646160103180") != "zendesk" {
		t.Errorf("AppName = %q", f.Set.AppName("200646160103180"))
	}
}

func TestErrorsFormat(t *testing.T) {
	t.Parallel()
	_, err := Parse("x.yaml", []byte("version: 2\nrules: []\nfoo: 1\n"))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want *Errors", err)
	}
	want := []string{
		`x.yaml:1:10: version: unsupported version 2, expected 1`,
		`x.yaml:2:8: rules: the list is empty, expected at least one rule`,
		`x.yaml:3:1: top level: unknown key "foo", expected one of: ` + strings.Join(topLevelKeys(), ", "),
	}
	if got := errs.Lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Lines() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if errs.Path != "x.yaml" || len(errs.List) != 3 {
		t.Errorf("Path, len(List) = %q, %d", errs.Path, len(errs.List))
	}
}

// TestTopKeys checks that the table of top-level keys drives the loader,
// the JSON Schema and the messages: each key decodes into its typed field,
// each is a property of the schema with its description, the required
// ones are required, and an unknown key lists them in the table's order.
func TestTopKeys(t *testing.T) {
	t.Parallel()
	src := `version: 1
apps: {zendesk: 200646160103180}
vars: {brand: Acme}
pages: {shop: 111222333444555}
handover: {pause_on_human: 30m, return_after_idle: 2h, on_request: grant, dialect: routing}
tests:
  - name: hi
    message: hi
    expect: {rule: a}
rules:
  - name: a
    match: {page: shop}
    do: [echo: x]
`
	f, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	shop := engine.Page{Name: "shop", ID: "111222333444555"}
	wantHandover := engine.Handover{PauseOnHuman: 30 * time.Minute, ReturnAfterIdle: 2 * time.Hour, OnRequest: engine.RequestGrant,
		Dialect: engine.DialectRouting, Pages: map[string]engine.Page{shop.ID: shop}}
	switch {
	case f.Apps["zendesk"] != "200646160103180", f.Vars["brand"] != "Acme":
		t.Errorf("apps, vars = %v, %v", f.Apps, f.Vars)
	case !reflect.DeepEqual(f.Pages, map[string]engine.Page{"shop": shop}):
		t.Errorf("pages = %v", f.Pages)
	case !reflect.DeepEqual(f.Handover, wantHandover), !reflect.DeepEqual(f.Set.Handover(), wantHandover):
		t.Errorf("handover = %+v, set's %+v, want %+v", f.Handover, f.Set.Handover(), wantHandover)
	case len(f.Tests) != 1 || f.Tests[0].Name != "hi":
		t.Errorf("tests = %v", f.Tests)
	case f.RuleCount != 1 || f.Set.Rule("a") == nil:
		t.Errorf("rules = %d", f.RuleCount)
	}

	schema := Schema()
	props := schema["properties"].(map[string]any)
	var required []any
	for _, k := range topKeys {
		p, ok := props[k.Name].(map[string]any)
		if !ok || p["description"] != k.Doc {
			t.Errorf("schema of %s = %v, want the description %q", k.Name, props[k.Name], k.Doc)
		}
		if k.Missing != "" {
			required = append(required, k.Name)
		}
	}
	if len(props) != len(topKeys) || !reflect.DeepEqual(schema["required"], required) {
		t.Errorf("schema properties %d, required %v; want %d and %v", len(props), schema["required"], len(topKeys), required)
	}

	_, err = Parse("x.yaml", []byte("greeting: hi\n"))
	want := "x.yaml:1:1: rules: missing, expected a list of rules, each with a name and do\n" +
		"x.yaml:1:1: top level: unknown key \"greeting\", expected one of: version, apps, vars, pages, handover, profile, tests, rules\n" +
		"x.yaml:1:1: version: missing, expected version: 1 at the top of the file"
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
}
