package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/messenger"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// samples holds one valid action of every kind.
var samples = map[string]string{
	"echo":                   `echo: "[bot] "`,
	"reply":                  `reply: {text: hi, quick_replies: [{title: a, payload: b}], buttons: [{title: c, url: "https://example.com"}]}`,
	"pass_thread_control":    `pass_thread_control: {target: zendesk, metadata: m}`,
	"take_thread_control":    `take_thread_control: {metadata: m}`,
	"request_thread_control": `request_thread_control: {metadata: m}`,
	"release_thread_control": `release_thread_control: {}`,
	"sender_action":          `sender_action: typing_on`,
}

func TestRegistry(t *testing.T) {
	names := Names()
	if !sort.StringsAreSorted(names) {
		t.Errorf("Names() = %v is not sorted", names)
	}
	specs := Specs()
	if len(specs) != len(names) {
		t.Fatalf("Specs() has %d kinds, Names() %d", len(specs), len(names))
	}
	if len(samples) != len(names) {
		t.Fatalf("the test has samples of %d kinds, the registry %d: add a sample", len(samples), len(names))
	}
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			got, ok := Lookup(s.Name)
			if !ok || got.Name != s.Name {
				t.Fatalf("Lookup(%q) = %v, %v", s.Name, got.Name, ok)
			}
			if s.Doc == "" || !strings.HasSuffix(s.Doc, ".") || strings.Count(s.Doc, ". ") > 0 {
				t.Errorf("Doc %q is not one sentence", s.Doc)
			}
			if s.Schema == nil || s.Schema["description"] == nil || s.Decode == nil || s.FieldNames == nil {
				t.Errorf("incomplete spec: %+v", s)
			}
			if s.ExpectField != "" && !contains(s.FieldNames, s.ExpectField) {
				t.Errorf("ExpectField %q is not in FieldNames %v", s.ExpectField, s.FieldNames)
			}
			src, ok := samples[s.Name]
			if !ok {
				t.Fatalf("no sample for %s", s.Name)
			}
			a, errs := decode(t, src, testCompiler())
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if a.Kind() != s.Name {
				t.Errorf("action Kind() = %q", a.Kind())
			}
			st, err := a.Plan(&Data{Text: "hello"})
			if err != nil {
				t.Fatal(err)
			}
			if st.Kind() != s.Name {
				t.Errorf("step Kind() = %q", st.Kind())
			}
			for k := range st.Fields() {
				if !contains(s.FieldNames, k) {
					t.Errorf("Fields() key %q is not in FieldNames %v", k, s.FieldNames)
				}
			}
			if _, err := json.Marshal(st.Fields()); err != nil {
				t.Errorf("Fields() does not marshal: %v", err)
			}
		})
	}
	if _, ok := Lookup("nope"); ok {
		t.Error(`Lookup("nope") found a kind`)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestIndexRefusesDuplicates(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `"echo" is listed twice`) {
			t.Fatalf("recover() = %v", r)
		}
	}()
	index([]Spec{echoSpec, echoSpec})
}

// TestSchemaGolden keeps the JSON Schema fragments of all kinds in
// testdata/schema.golden.json; run with -update after changing one.
func TestSchemaGolden(t *testing.T) {
	props := map[string]any{}
	for _, s := range Specs() {
		props[s.Name] = s.Schema
	}
	got, err := json.MarshalIndent(props, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "schema.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("schemas differ from %s; run go test ./actions -run TestSchemaGolden -update and review the diff", path)
	}
}

// printer is a Platform that prints what it would send, as JSON.
type printer struct{}

func (printer) SendMessage(_ context.Context, to messenger.Recipient, msg *messenger.Message) error {
	b, _ := json.Marshal(msg)
	fmt.Printf("send to %s: %s\n", to.UserID, b)
	return nil
}
func (printer) SenderAction(_ context.Context, to messenger.Recipient, a string) error {
	fmt.Printf("%s to %s\n", a, to.UserID)
	return nil
}
func (printer) PassThreadControl(_ context.Context, to messenger.Recipient, appID, metadata string) error {
	fmt.Printf("pass %s to app %s, metadata %q\n", to.UserID, appID, metadata)
	return nil
}
func (printer) TakeThreadControl(context.Context, messenger.Recipient, string) error    { return nil }
func (printer) RequestThreadControl(context.Context, messenger.Recipient, string) error { return nil }
func (printer) ReleaseThreadControl(context.Context, messenger.Recipient) error         { return nil }

// The rules loader looks each action's key up in the registry and decodes
// its value; the engine plans the actions for an event, and the gateway
// executes the steps in order.
func ExampleLookup() {
	var doc yaml.Node
	_ = yaml.Unmarshal([]byte(`
- reply:
    text: "Order {{ .Groups.order }}: want a person to check it?"
    quick_replies:
      - {title: "Yes please", payload: AGENT}
- pass_thread_control: {target: zendesk, metadata: "order {{ .Groups.order }}"}
`), &doc)
	c := &Compiler{Apps: map[string]string{"zendesk": "200646160103180"}}
	d := &Data{Text: "where is order 1234", Groups: map[string]string{"order": "1234"}}
	for _, item := range doc.Content[0].Content {
		key, value := item.Content[0], item.Content[1]
		spec, ok := Lookup(key.Value)
		if !ok {
			fmt.Println("unknown action", key.Value)
			continue
		}
		action, errs := spec.Decode(value, c)
		if len(errs) > 0 {
			fmt.Println(errs[0])
			continue
		}
		step, err := action.Plan(d)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(step.Kind(), Format(step.Fields()))
		_ = step.Execute(context.Background(), printer{}, messenger.Recipient{PageID: "111", UserID: "222"})
	}
	// Output:
	// reply {quick_replies: [{payload: "AGENT", title: "Yes please"}], text: "Order 1234: want a person to check it?"}
	// send to 222: {"text":"Order 1234: want a person to check it?","quick_replies":[{"content_type":"text","title":"Yes please","payload":"AGENT"}]}
	// pass_thread_control {app_id: "200646160103180", metadata: "order 1234", target: "zendesk"}
	// pass 222 to app 200646160103180, metadata "order 1234"
}

func ExampleNames() {
	fmt.Println(strings.Join(Names(), "\n"))
	// Output:
	// echo
	// pass_thread_control
	// release_thread_control
	// reply
	// request_thread_control
	// sender_action
	// take_thread_control
}
