package actions

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// call is one Platform call recorded by recorder.
type call struct {
	Method string
	To     messenger.Recipient
	Msg    *messenger.Message // SendMessage
	Arg    string             // the sender action, target app ID, or metadata
	Meta   string             // PassThreadControl's metadata
}

// recorder is a Platform that records its calls in order and fails the
// methods named in fail.
type recorder struct {
	calls []call
	fail  map[string]error
}

var _ Platform = (*recorder)(nil)

func (r *recorder) record(c call) error {
	r.calls = append(r.calls, c)
	return r.fail[c.Method]
}

func (r *recorder) SendMessage(_ context.Context, to messenger.Recipient, msg *messenger.Message) error {
	return r.record(call{Method: "SendMessage", To: to, Msg: msg})
}

func (r *recorder) SenderAction(_ context.Context, to messenger.Recipient, action string) error {
	return r.record(call{Method: "SenderAction", To: to, Arg: action})
}

func (r *recorder) PassThreadControl(_ context.Context, to messenger.Recipient, appID, metadata string) error {
	return r.record(call{Method: "PassThreadControl", To: to, Arg: appID, Meta: metadata})
}

func (r *recorder) TakeThreadControl(_ context.Context, to messenger.Recipient, metadata string) error {
	return r.record(call{Method: "TakeThreadControl", To: to, Arg: metadata})
}

func (r *recorder) RequestThreadControl(_ context.Context, to messenger.Recipient, metadata string) error {
	return r.record(call{Method: "RequestThreadControl", To: to, Arg: metadata})
}

func (r *recorder) ReleaseThreadControl(_ context.Context, to messenger.Recipient) error {
	return r.record(call{Method: "ReleaseThreadControl", To: to})
}

var testApps = map[string]string{"zendesk": "200646160103180", "page_inbox": "263902037430900"}

// testCompiler is what the decode tests compile with.
func testCompiler() *Compiler {
	return &Compiler{Apps: testApps, Vars: map[string]any{"brand": "Acme", "tags": []any{"a", "b"}}}
}

// valueNode parses a one-key YAML document such as "reply: hi" and returns
// the key's value node, positioned as in a file.
func valueNode(t testing.TB, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("bad test YAML %q: %v", src, err)
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode || len(m.Content) != 2 {
		t.Fatalf("test YAML %q is not a one-key mapping", src)
	}
	return m.Content[1]
}

// decode compiles "KIND: VALUE" with the registered spec of KIND.
func decode(t testing.TB, src string, c *Compiler) (Action, []string) {
	t.Helper()
	kind, _, _ := strings.Cut(src, ":")
	spec, ok := Lookup(strings.TrimSpace(kind))
	if !ok {
		t.Fatalf("no action kind %q", kind)
	}
	a, errs := spec.Decode(valueNode(t, src), c)
	return a, errStrings(errs)
}

func errStrings(errs diag.List) []string {
	errs.Sort()
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// decodeCase is one row of a decode table: a YAML snippet and the errors
// it must give (none: it must compile).
type decodeCase struct {
	name string
	src  string
	want []string
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			a, got := decode(t, tt.src, testCompiler())
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decode %q:\n got %q\nwant %q", tt.src, got, tt.want)
			}
			if len(tt.want) == 0 && a == nil {
				t.Fatalf("decode %q: no errors but no action", tt.src)
			}
			if len(tt.want) > 0 && a != nil {
				t.Fatalf("decode %q: errors but an action", tt.src)
			}
		})
	}
}

// plan compiles src (which must be valid) and plans it for d.
func plan(t testing.TB, src string, d *Data) (Step, error) {
	t.Helper()
	a, errs := decode(t, src, testCompiler())
	if len(errs) > 0 {
		t.Fatalf("decode %q: %v", src, errs)
	}
	return a.Plan(d)
}

// execute runs one step against a fresh recorder.
func execute(t testing.TB, s Step, fail map[string]error) ([]call, error) {
	t.Helper()
	r := &recorder{fail: fail}
	err := s.Execute(context.Background(), r, testTo)
	return r.calls, err
}

var testTo = messenger.Recipient{PageID: "111", UserID: "222"}

var errGraph = errors.New("graph: (#10) outside of allowed window")

// mustContain fails unless err's message has every part.
func mustContain(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

// planCase plans src for d and checks the error against wantErr. It returns
// the step and true when the case goes on, false when it ended with the
// expected error.
func planCase(t *testing.T, src string, d *Data, wantErr string) (Step, bool) {
	t.Helper()
	s, err := plan(t, src, d)
	if wantErr != "" {
		if err == nil || err.Error() != wantErr {
			t.Fatalf("error: got %v, want %s", err, wantErr)
		}
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, true
}
