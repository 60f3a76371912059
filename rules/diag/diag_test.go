package diag

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func TestAtAndOffset(t *testing.T) {
	t.Parallel()
	m := node(t, "a: plain text\nb: 'quoted'\n")
	plain, quoted := m.Content[1], m.Content[3]
	if e := At(plain, "x %d", 1); e.Error() != "1:4: x 1" {
		t.Errorf("At = %q", e.Error())
	}
	if e := At(nil, "x"); e.Line != 1 || e.Column != 1 {
		t.Errorf("At(nil) = %d:%d", e.Line, e.Column)
	}
	if e := Offset(plain, 1, 7, "x"); e.Line != 1 || e.Column != 10 {
		t.Errorf("Offset plain = %d:%d, want 1:10", e.Line, e.Column)
	}
	if e := Offset(quoted, 1, 2, "x"); e.Line != 2 || e.Column != 6 {
		t.Errorf("Offset quoted = %d:%d, want 2:6", e.Line, e.Column)
	}
	if e := Offset(plain, 3, 5, "x"); e.Line != 3 || e.Column != 5 {
		t.Errorf("Offset on a later line = %d:%d, want 3:5", e.Line, e.Column)
	}
}

func TestListSort(t *testing.T) {
	t.Parallel()
	l := List{{Line: 2, Column: 1, Msg: "b"}, {Line: 1, Column: 5, Msg: "a"}, {Line: 1, Column: 5, Msg: "0"}, {Line: 1, Column: 2, Msg: "z"}}
	l.Add(nil, &Error{Line: 1, Column: 1, Msg: "first"})
	l.Sort()
	var got []string
	for _, e := range l {
		got = append(got, e.Error())
	}
	want := []string{"1:1: first", "1:2: z", "1:5: 0", "1:5: a", "2:1: b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sorted = %q, want %q", got, want)
	}
}

func TestKindName(t *testing.T) {
	t.Parallel()
	m := node(t, "{a: x, b: 1, c: 1.5, d: true, e: ~, f: [1], g: {h: 1}}")
	want := []string{"a string", "a number", "a number", "a boolean", "nothing (null)", "a list", "a mapping"}
	for i, w := range want {
		if got := KindName(m.Content[2*i+1]); got != w {
			t.Errorf("KindName(%s) = %q, want %q", m.Content[2*i].Value, got, w)
		}
	}
	if KindName(nil) != "nothing" {
		t.Errorf("KindName(nil) = %q", KindName(nil))
	}
}

func TestFields(t *testing.T) {
	t.Parallel()
	fields, errs := Fields(node(t, "a: 1\nb: 2\na: 3\nc: 4\n[x]: 5\n"), "where", []string{"a", "b"})
	var keys []string
	for _, f := range fields {
		keys = append(keys, f.Key.Value)
	}
	if !reflect.DeepEqual(keys, []string{"a", "b"}) {
		t.Errorf("keys = %v", keys)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	want := []string{
		`3:1: where: key "a" is given twice`,
		`4:1: where: unknown key "c", expected one of: a, b`,
		`5:1: where: keys must be plain words, got a list`,
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("errors = %q\nwant %q", msgs, want)
	}
	if _, errs := Fields(node(t, "[1]"), "where", nil); len(errs) != 1 || !strings.Contains(errs[0].Msg, "where: expected a mapping, got a list") {
		t.Errorf("not a mapping: %v", errs)
	}
	// Aliases are followed.
	m := node(t, "x: &m {a: 1}\ny: *m\n")
	if fields, errs := Fields(m.Content[3], "y", []string{"a"}); len(errs) != 0 || len(fields) != 1 {
		t.Errorf("alias: %v %v", fields, errs)
	}
}

func TestScalars(t *testing.T) {
	t.Parallel()
	m := node(t, "s: hi\nq: '12'\nn: 12\nb: true\nz: ~\nl: [a, 'b']\ne: []\nbad: [a, 1]\n")
	v := func(i int) *yaml.Node { return m.Content[2*i+1] }
	if s, err := String(v(0), "s"); s != "hi" || err != nil {
		t.Errorf("String = %q, %v", s, err)
	}
	if s, err := String(v(1), "q"); s != "12" || err != nil {
		t.Errorf("String of a quoted number = %q, %v", s, err)
	}
	if _, err := String(v(2), "n"); err == nil || !strings.Contains(err.Msg, "put it in quotes") {
		t.Errorf("String of a number: %v", err)
	}
	if s, err := Scalar(v(2), "n"); s != "12" || err != nil {
		t.Errorf("Scalar = %q, %v", s, err)
	}
	if _, err := Scalar(v(4), "z"); err == nil {
		t.Errorf("Scalar of null succeeded")
	}
	if b, err := Bool(v(3), "b"); !b || err != nil {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if _, err := Bool(v(0), "s"); err == nil {
		t.Errorf("Bool of a string succeeded")
	}
	if items, errs := Strings(v(5), "l"); len(errs) != 0 || len(items) != 2 || items[1].Value != "b" || items[1].Node.Line != 6 {
		t.Errorf("Strings = %v, %v", items, errs)
	}
	if items, errs := Strings(v(0), "s"); len(errs) != 0 || len(items) != 1 {
		t.Errorf("Strings of one string = %v, %v", items, errs)
	}
	if _, errs := Strings(v(6), "e"); len(errs) != 1 || !strings.Contains(errs[0].Msg, "the list is empty") {
		t.Errorf("Strings of an empty list: %v", errs)
	}
	if items, errs := Strings(v(7), "bad"); len(errs) != 1 || len(items) != 1 {
		t.Errorf("Strings with a number: %v, %v", items, errs)
	}
}
