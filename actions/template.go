package actions

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/threadgate/threadgate/rules/diag"
	"gopkg.in/yaml.v3"
)

// Template is a text of an action (a reply, an echo prefix, handover
// metadata) that may read the event: a Go text/template parsed and checked
// when the rules file is loaded. A Template is safe for concurrent use.
type Template struct {
	what   string
	src    string
	maxLen int
	tmpl   *template.Template // nil for a literal
	vars   []varRef           // the .Vars.NAME the template reads
	// reads holds the fields the template reads, or may (see Reads).
	reads Field
}

// varRef is one .Vars.NAME read by a template, with its position.
type varRef struct {
	name      string
	line, col int // inside the template's text, from 1, col in characters
}

// at positions an error inside the value of a scalar node.
type at func(n *yaml.Node, line, col int, format string, args ...any) *diag.Error

// templateFuncs are the functions threadgate adds to text/template's
// built-ins (and, or, not, len, index, slice, print, printf, eq, …).
var templateFuncs = template.FuncMap{
	"lower": func(v any) string { return strings.ToLower(text(v)) },
	"upper": func(v any) string { return strings.ToUpper(text(v)) },
	"trim":  func(v any) string { return strings.TrimSpace(text(v)) },
	"join":  join,
}

// text prints any value (a var may be a number); nil prints empty.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// join joins the items of a list with sep; the list comes last so that it
// can be piped: {{ .Transcript | join ", " }}. It takes a []string (such as
// .Transcript) or a list from vars; a single text is returned as is.
func join(sep string, list any) (string, error) {
	switch l := list.(type) {
	case []string:
		return strings.Join(l, sep), nil
	case string:
		return l, nil // a single value, or a var missing from the event
	case []any:
		parts := make([]string, len(l))
		for i, x := range l {
			parts[i] = text(x)
		}
		return strings.Join(parts, sep), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("join: expected a list, got %T", list)
}

// ParseTemplate parses the string value of node n as a template; what names
// the value in messages (e.g. "reply.text") and maxLen is the limit on the
// text in characters (0: none).
//
// A value without "{{" is a literal: its length is checked here and it is
// rendered as is. Otherwise it is a Go text/template
// (https://pkg.go.dev/text/template) over Data, with the missing keys of
// .Groups and .Vars rendered empty and four functions besides the built-ins:
// lower, upper, trim (surrounding white space) and join (`{{ .Transcript |
// join ", " }}`). ParseTemplate reports, positioned inside the value where
// text/template says where: a template that does not parse, a field that
// Data does not have (`.Txt`, `.Text.Foo`; `.Groups.x` and `.Vars.x` are
// accepted), a function called with the wrong number or type of arguments,
// and a template that is over the limit even for an empty event.
//
// Without the file's text, a position inside a block scalar or on a later
// line of a multi-line scalar cannot be mapped; such errors point at the
// value itself. Compiler.At does better.
func ParseTemplate(n *yaml.Node, what string, maxLen int) (*Template, *diag.Error) {
	return parseTemplate(n, what, maxLen, offset)
}

// offset positions an error inside scalar n where that needs no more than
// the node: on the first line of a plain or quoted scalar.
func offset(n *yaml.Node, line, col int, format string, args ...any) *diag.Error {
	if line > 1 || n == nil || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return diag.At(n, format, args...)
	}
	return diag.Offset(n, line, col, format, args...)
}

// Template parses a template like ParseTemplate, positions errors with c.At
// when it is set, and checks the .Vars.NAME the template reads against
// c.Vars when that is set.
func (c *Compiler) Template(n *yaml.Node, what string, maxLen int) (*Template, *diag.Error) {
	pos := at(offset)
	if c != nil && c.At != nil {
		pos = c.At
	}
	t, err := parseTemplate(n, what, maxLen, pos)
	if err != nil || c == nil || c.Vars == nil {
		return t, err
	}
	for _, v := range t.vars {
		if _, ok := c.Vars[v.name]; !ok {
			return nil, pos(diag.Resolve(n), v.line, v.col, "%s: unknown var %q, %s", what, v.name, knownVars(c.Vars))
		}
	}
	return t, nil
}

func knownVars(vars map[string]any) string {
	if len(vars) == 0 {
		return "no vars are defined (add it under vars:)"
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	return "expected one of: " + strings.Join(names, ", ")
}

var (
	parseErrRE = regexp.MustCompile(`^template: [^:]*:(\d+): (.*)$`)
	execErrRE  = regexp.MustCompile(`^template: [^:]*:(\d+):(\d+): executing "[^"]*" at <([^>]*)>: (.*)$`)
	// structuralExec are the execution errors, against an empty event, that
	// no event could avoid. Others (an index out of range, a missing var of
	// the wrong type) depend on the event and are left to render time.
	structuralExec = []string{"can't evaluate field", "wrong number of args", "wrong type for value", "can't give argument", "can't call method", "not defined"}
)

func parseTemplate(n *yaml.Node, what string, maxLen int, pos at) (*Template, *diag.Error) {
	n = diag.Resolve(n)
	src, err := diag.String(n, what)
	if err != nil {
		return nil, err
	}
	t := &Template{what: what, src: src, maxLen: maxLen}
	if !strings.Contains(src, "{{") {
		if c := utf8.RuneCountInString(src); maxLen > 0 && c > maxLen {
			return nil, diag.At(n, "%s: the text is %d characters long, the limit is %d", what, c, maxLen)
		}
		return t, nil
	}
	tm, perr := template.New(strings.ReplaceAll(what, ":", "_")).Option("missingkey=zero").Funcs(templateFuncs).Parse(src)
	if perr != nil {
		line, msg := 1, perr.Error()
		if m := parseErrRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		if strings.HasPrefix(msg, "function ") && strings.HasSuffix(msg, " not defined") {
			msg += " (threadgate adds lower, upper, trim and join to the text/template built-ins)"
		}
		return nil, pos(n, line, 1, "%s: the template does not parse: %s", what, msg)
	}
	if len(tm.Templates()) > 1 {
		return nil, pos(n, 1, 1, "%s: {{ define }} and {{ block }} are not supported in rules: write the text in place", what)
	}
	t.tmpl = tm
	ck := checker{src: src}
	ck.list(tm.Tree.Root, dataType)
	if ck.err != nil {
		return nil, pos(n, ck.err.line, ck.err.col, "%s: %s", what, ck.err.msg)
	}
	t.vars = ck.vars
	t.reads = ck.reads
	// Run once against an empty event: catches what the walk above cannot
	// type (function arguments, fields inside {{ with }} of a var).
	out, xerr := t.execute(&Data{Groups: map[string]string{}, Vars: map[string]any{}})
	switch {
	case errors.Is(xerr, errTooLong):
		return nil, diag.At(n, "%s: the template renders more than %d characters even for an empty event", what, maxLen)
	case xerr != nil:
		m := execErrRE.FindStringSubmatch(xerr.Error())
		if m == nil || !isStructural(m[4]) {
			break
		}
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		return nil, pos(n, line, runeCol(src, line, col), "%s: at <%s>: %s", what, m[3], m[4])
	case maxLen > 0 && utf8.RuneCountInString(out) > maxLen:
		return nil, diag.At(n, "%s: the template renders %d characters even for an empty event, the limit is %d", what, utf8.RuneCountInString(out), maxLen)
	}
	return t, nil
}

func isStructural(msg string) bool {
	if strings.Contains(msg, "interface {}") {
		return false // a var missing from the empty event
	}
	for _, s := range structuralExec {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// runeCol turns a 0-based byte offset inside line (from 1) of src into a
// column in characters counted from 1.
func runeCol(src string, line, byteCol int) int {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) {
		return 1
	}
	l := lines[line-1]
	if byteCol > len(l) {
		byteCol = len(l)
	}
	if byteCol < 0 {
		byteCol = 0
	}
	return utf8.RuneCountInString(l[:byteCol]) + 1
}

// Source returns the template as written.
func (t *Template) Source() string { return t.src }

// Literal reports whether the template is plain text, rendered as is.
func (t *Template) Literal() bool { return t.tmpl == nil }

// Render executes the template for one event. A nil d renders as an empty
// event. A result over the template's limit is an error. A nil Template (an
// optional template that was not given) renders as "".
func (t *Template) Render(d *Data) (string, error) {
	if t == nil {
		return "", nil // an optional template that was not given
	}
	if t.tmpl == nil {
		return t.src, nil
	}
	if d == nil {
		d = &Data{}
	}
	d = t.withVars(d)
	out, err := t.execute(d)
	if errors.Is(err, errTooLong) {
		return "", fmt.Errorf("%s: the rendered text is over the limit of %d characters", t.what, t.maxLen)
	}
	if err != nil {
		if m := execErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			return "", &renderError{msg: fmt.Sprintf("%s: template line %d, column %d, at <%s>: %s", t.what, line, runeCol(t.src, line, col), m[3], execErrKind(m[4])), err: err}
		}
		return "", &renderError{msg: t.what + ": the template failed", err: err}
	}
	if c := utf8.RuneCountInString(out); t.maxLen > 0 && c > t.maxLen {
		return "", fmt.Errorf("%s: the rendered text is %d characters long, the limit is %d", t.what, c, t.maxLen)
	}
	return out, nil
}

// withVars returns d, or a copy of it in which the vars that the template
// reads and d lacks are empty texts: text/template would print a missing
// key of a map[string]any as "<no value>".
func (t *Template) withVars(d *Data) *Data {
	for _, v := range t.vars {
		if _, ok := d.Vars[v.name]; ok {
			continue
		}
		cp := *d
		cp.Vars = make(map[string]any, len(d.Vars)+len(t.vars))
		for k, x := range d.Vars {
			cp.Vars[k] = x
		}
		for _, v := range t.vars {
			if _, ok := cp.Vars[v.name]; !ok {
				cp.Vars[v.name] = ""
			}
		}
		return &cp
	}
	return d
}

// execErrKinds are the kinds of text/template execution errors, each the
// fixed start of its message. The rest of a message may quote the event's
// values (the user's text), so only the kind is shown.
var execErrKinds = []string{
	"index out of range", "slice index out of range", "can't evaluate field", "nil pointer evaluating",
	"wrong type for value", "incompatible types for comparison", "invalid value",
	"wrong number of args", "can't give argument", "missing value for command",
	"range can't iterate over", "can't call method", "invalid type for comparison",
	"error calling",
	"join: expected a list", // threadgate's own function; the rest is a type name
}

// execErrKind returns the kind of a text/template execution error message
// without any value it quotes: "error calling index", "index out of range",
// or "the template failed" for a message of no known kind.
func execErrKind(msg string) string {
	for _, k := range execErrKinds {
		if !strings.HasPrefix(msg, k) {
			continue
		}
		if k == "error calling" {
			// "error calling NAME: …": NAME is a function of the template,
			// and the rest its error, which has a kind of its own.
			name, rest, ok := strings.Cut(strings.TrimPrefix(msg, "error calling "), ": ")
			if !ok || !isIdent(name) {
				return k
			}
			if kind := execErrKind(rest); kind != unknownExecErr {
				return k + " " + name + ": " + kind
			}
			return k + " " + name
		}
		return k
	}
	return unknownExecErr
}

const unknownExecErr = "the template failed"

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// renderError is a template execution error whose message names the
// template, the position and the kind of error, never the event's values
// (so it can be logged); it still unwraps to text/template's error.
type renderError struct {
	msg string
	err error
}

func (e *renderError) Error() string { return e.msg }
func (e *renderError) Unwrap() error { return e.err }

var errTooLong = errors.New("template output over the limit")

// execute runs the template, stopping as soon as the output is certainly
// over the limit (a character is at most utf8.UTFMax bytes).
func (t *Template) execute(d *Data) (string, error) {
	w := writerPool.Get().(*limitWriter)
	defer func() {
		w.b = strings.Builder{} // the output's bytes now belong to the string returned
		writerPool.Put(w)
	}()
	w.max = -1
	if t.maxLen > 0 {
		w.max = t.maxLen * utf8.UTFMax
	}
	// Room for the text and the event's text, which templates most often
	// print, so that the output does not grow at each write; at most
	// maxPresize, since the string returned keeps all of it.
	w.b.Grow(min(len(t.src)+len(d.Text), maxPresize))
	if err := t.tmpl.Execute(w, d); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// maxPresize is the most room execute makes for a template's output
// before it runs.
const maxPresize = 512

// writerPool holds limitWriters for execute: a writer given to
// text/template escapes, and would otherwise be allocated for each render.
var writerPool = sync.Pool{New: func() any { return new(limitWriter) }}

type limitWriter struct {
	b   strings.Builder
	max int // in bytes; negative: none
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.max >= 0 && w.b.Len()+len(p) > w.max {
		return 0, errTooLong
	}
	return w.b.Write(p)
}

// dataType is the type that a template's dot starts as.
var dataType = reflect.TypeOf(Data{})

// dataFields lists Data's fields for messages: ".Text, .Payload, …".
func dataFields() string {
	parts := make([]string, 0, dataType.NumField())
	for i := 0; i < dataType.NumField(); i++ {
		if f := dataType.Field(i); f.IsExported() {
			parts = append(parts, "."+f.Name)
		}
	}
	return strings.Join(parts, ", ")
}

// checker walks a parsed template and checks every field it reads against
// the type of dot at that place, including in branches that an empty event
// does not take. A nil type means "unknown" (a var, a function's result):
// nothing is checked there.
type checker struct {
	src  string
	err  *checkErr
	vars []varRef
	// reads holds the fields read (FieldUser, FieldTranscript); all of them
	// once the template hands the whole of the event's data (dot at the
	// top, or $) to a function or a variable, through which it may read
	// them.
	reads Field
}

type checkErr struct {
	line, col int
	msg       string
}

func (c *checker) list(l *parse.ListNode, dot reflect.Type) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		c.node(n, dot)
	}
}

func (c *checker) node(n parse.Node, dot reflect.Type) {
	switch n := n.(type) {
	case *parse.ActionNode:
		c.pipe(n.Pipe, dot)
	case *parse.IfNode:
		c.pipe(n.Pipe, dot)
		c.list(n.List, dot)
		c.list(n.ElseList, dot)
	case *parse.WithNode:
		c.pipe(n.Pipe, dot)
		c.list(n.List, c.pipeType(n.Pipe, dot))
		c.list(n.ElseList, dot)
	case *parse.RangeNode:
		c.pipe(n.Pipe, dot)
		var elem reflect.Type
		if t := c.pipeType(n.Pipe, dot); t != nil {
			switch t.Kind() {
			case reflect.Slice, reflect.Array, reflect.Map:
				elem = t.Elem()
			}
		}
		if elem == nil {
			// A range over a number (or over what may be one) can loop
			// two billion times and hold a worker: only the event's own
			// lists are bounded.
			c.fail(int(n.Pos), "range: only over .Transcript, .Groups or .Vars (a range over a number or another value could loop without bound)")
			return
		}
		c.list(n.List, elem)
		c.list(n.ElseList, dot)
	case *parse.TemplateNode:
		c.fail(int(n.Pos), "{{ template }} and {{ block }} are not supported in rules: write the text in place")
	}
}

func (c *checker) pipe(p *parse.PipeNode, dot reflect.Type) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			c.arg(arg, dot)
		}
	}
}

func (c *checker) arg(n parse.Node, dot reflect.Type) {
	switch n := n.(type) {
	case *parse.FieldNode:
		c.fields(dot, n.Ident, int(n.Pos), dot == dataType)
	case *parse.DotNode:
		if dot == dataType {
			// {{ . }}, {{ printf "%v" . }}, {{ $d := . }}: the whole data
			// is handed on, and may be read anywhere.
			c.reads |= FieldUser | FieldTranscript
		}
	case *parse.VariableNode:
		switch {
		case len(n.Ident) > 1 && n.Ident[0] == "$":
			c.fields(dataType, n.Ident[1:], int(n.Pos), true)
		case len(n.Ident) > 1:
			// $x.Transcript: $x may hold the event's data, but then it
			// was declared from dot or $, which counted already.
		case n.Ident[0] == "$":
			c.reads |= FieldUser | FieldTranscript // {{ $ }}, {{ with $ }}
		}
	case *parse.PipeNode:
		c.pipe(n, dot)
	case *parse.ChainNode:
		c.arg(n.Node, dot)
	}
}

// pipeType is the type of a pipeline that is a single field, or nil.
func (c *checker) pipeType(p *parse.PipeNode, dot reflect.Type) reflect.Type {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return nil
	}
	switch n := p.Cmds[0].Args[0].(type) {
	case *parse.DotNode:
		return dot
	case *parse.FieldNode:
		t, _ := resolve(dot, n.Ident)
		return t
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			t, _ := resolve(dataType, n.Ident[1:])
			return t
		}
	}
	return nil
}

// resolve follows idents from type t. It returns the resulting type (nil
// when unknown) and the index of the first ident that t cannot have, or -1.
func resolve(t reflect.Type, idents []string) (reflect.Type, int) {
	for i, id := range idents {
		if t == nil {
			return nil, -1
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			f, ok := t.FieldByName(id)
			if !ok || !f.IsExported() {
				return nil, i
			}
			t = f.Type
		case reflect.Map:
			t = t.Elem()
		case reflect.Interface:
			return nil, -1
		default:
			return nil, i
		}
	}
	return t, -1
}

// fields checks a field chain; pos is text/template's position of it,
// which is at or inside the chain's text.
func (c *checker) fields(dot reflect.Type, idents []string, pos int, fromData bool) {
	if len(idents) == 0 {
		return
	}
	// offsets[i] is the byte offset of ".ident[i]" in the source.
	offsets := make([]int, len(idents))
	chain := "." + strings.Join(idents, ".")
	start := strings.LastIndex(c.src[:min(pos+len(chain), len(c.src))], chain)
	if start < 0 {
		start = pos
	}
	for i, id := range idents {
		offsets[i] = start
		start += 1 + len(id)
	}
	if fromData || dot == nil {
		// A dot of unknown type ({{ with $ }}, {{ with $x }}) may be the
		// event's data, or a map with a key of that name: counting it is
		// harmless.
		switch idents[0] {
		case "User":
			c.reads |= FieldUser
		case "Transcript":
			c.reads |= FieldTranscript
		}
	}
	if fromData && len(idents) > 1 && idents[0] == "Vars" {
		line, col := c.position(offsets[1])
		c.vars = append(c.vars, varRef{name: idents[1], line: line, col: col})
	}
	_, bad := resolve(dot, idents)
	if bad < 0 || c.err != nil {
		return
	}
	line, col := c.position(offsets[bad])
	var msg string
	if bad == 0 && fromData {
		msg = fmt.Sprintf("unknown field .%s, a template can read %s", idents[0], dataFields())
	} else if bad == 0 {
		msg = fmt.Sprintf("dot is %s here (inside with or range) and has no field .%s", typeName(dot), idents[0])
	} else {
		prefix := "." + strings.Join(idents[:bad], ".")
		t, _ := resolve(dot, idents[:bad])
		msg = fmt.Sprintf("%s is %s and has no field .%s", prefix, typeName(t), idents[bad])
	}
	c.err = &checkErr{line: line, col: col, msg: msg}
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a text"
	case reflect.Slice:
		return "a list"
	}
	return "a " + t.String()
}

// position turns a byte offset of the source into a line and a column in
// characters, both from 1.
func (c *checker) position(off int) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > len(c.src) {
		off = len(c.src)
	}
	before := c.src[:off]
	line = 1 + strings.Count(before, "\n")
	lineStart := strings.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCountInString(before[lineStart:]) + 1
}

// fail records the first mistake found, at byte offset off of the source.
func (c *checker) fail(off int, msg string) {
	if c.err != nil {
		return
	}
	line, col := c.position(off)
	c.err = &checkErr{line: line, col: col, msg: msg}
}
