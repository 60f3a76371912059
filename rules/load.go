// Package rules reads a threadgate rules file (format version 1): it
// parses the YAML, validates every key, compiles match conditions, regexes,
// templates and `when` expressions, resolves handover targets, and returns
// a File with a typed field per top-level key and an immutable
// *engine.Set. It also parses rule-test files, lints a parsed file (Lint)
// and describes the format as a JSON Schema (Schema).
//
// Every mistake in the file is reported, not only the first, each as
// `PATH:LINE:COL: message`. `serve`, `check`, `test` and `explain` all parse
// rules through this package, so they can never disagree; package reload
// reads a file with its tests and keeps the rules in force.
package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules/diag"
	"github.com/threadgate/threadgate/rules/ruletest"
	"gopkg.in/yaml.v3"
)

// Version is the only rules-file version this package reads.
const Version = 1

// File is a rules file that loaded without mistakes. Each top-level key of
// the file has a typed field (see topKeys).
type File struct {
	// Path is the file's path as given to Load or Parse.
	Path string
	// Hash is the hex SHA-256 of the file's content.
	Hash string
	// Set is the compiled rule set.
	Set *engine.Set
	// Apps maps handover target names to app IDs (decimal strings): the
	// `apps` key.
	Apps map[string]string
	// Vars holds the file's free values (string, int, float64 or bool): the
	// `vars` key.
	Vars map[string]any
	// Pages holds the `pages` key: the named Pages and Instagram accounts,
	// by name.
	Pages map[string]engine.Page
	// Handover holds the `handover` settings, with Pages by ID: the
	// settings Set.Handover returns.
	Handover engine.Handover
	// Tests holds the cases of the `tests` key, in file order.
	Tests []*ruletest.Case
	// Profile is the file's `profile` section: the Page's Messenger profile
	// (the zero value when the file has none).
	Profile Profiles
	// RuleCount is the number of rules in the file.
	RuleCount int

	// root is the file's root mapping, which Lint reads.
	root *yaml.Node
}

// Errors is the error of a rules file that did not load: every mistake
// found, with its position.
type Errors struct {
	// Path is the file's path.
	Path string
	// List holds the mistakes.
	List diag.List
}

// Error returns every mistake, sorted by position, one per line.
func (e *Errors) Error() string {
	return strings.Join(e.Lines(), "\n")
}

// Lines returns every mistake as `PATH:LINE:COL: message`, sorted by line,
// column and message.
func (e *Errors) Lines() []string {
	l := append(diag.List(nil), e.List...)
	l.Sort()
	out := make([]string, len(l))
	for i, d := range l {
		out[i] = fmt.Sprintf("%s:%d:%d: %s", e.Path, d.Line, d.Column, d.Msg)
	}
	return out
}

// Limits of a rules file, so that no file can take the daemon down: a
// file over them is refused with a positioned error, and the rules in force
// stay. 10,000 rules load in well under a second; the limits leave twice
// that room.
const (
	// MaxFileBytes is the largest rules file read, in bytes.
	MaxFileBytes = 8 << 20
	// MaxRules is the most rules in one file.
	MaxRules = 20000
)

// ReadFile reads a rules file, at most MaxFileBytes+1 bytes of it: enough
// for Parse to tell that a larger file is over the limit without reading
// all of it into memory.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}

// Load reads and parses the rules file at path. A file that cannot be read
// gives the wrapped I/O error (errors.Is(err, fs.ErrNotExist) works); a file
// with mistakes gives *Errors.
func Load(path string) (*File, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a rules file held in data; path is used in
// messages and in the result. On mistakes it returns *Errors holding all of
// them.
func Parse(path string, data []byte) (*File, error) {
	sum := sha256.Sum256(data)
	f := &File{Path: path, Hash: hex.EncodeToString(sum[:])}
	if len(data) > MaxFileBytes {
		return nil, &Errors{Path: path, List: diag.List{{Line: 1, Column: 1, Msg: fmt.Sprintf(
			"the file is over the limit of %d MiB: split the bot's rules or shorten them (the 10,000-rule benchmark file is about 1 MiB)", MaxFileBytes>>20)}}}
	}
	p := &parser{src: newSource(data)}
	root := p.document(data)
	if root != nil {
		p.file(root, f)
	}
	if len(p.errs) > 0 {
		p.errs.Sort()
		return nil, &Errors{Path: path, List: p.errs}
	}
	return f, nil
}

// parser holds what one Parse accumulates.
type parser struct {
	src  *source
	errs diag.List
	// compiled holds the rules of the file, once decoded.
	compiled []*engine.Rule
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// document decodes the YAML text into one document's root node, reporting
// syntax errors, empty files and files with several documents.
func (p *parser) document(data []byte) (root *yaml.Node) {
	// yaml.v3 has panicked on malformed input in the past; a rules file
	// must never take the gateway down.
	defer func() {
		if r := recover(); r != nil {
			p.errs.Add(&diag.Error{Line: 1, Column: 1, Msg: fmt.Sprintf("the file is not valid YAML: the YAML parser failed (%v)", r)})
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		p.errs.Add(&diag.Error{Line: 1, Column: 1, Msg: "the file is empty, expected a mapping with version: 1 and rules"})
		return nil
	}
	if err != nil {
		p.errs.Add(yamlError(err, data))
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.errs.Add(yamlError(err, data))
		return nil
	default:
		at := &next
		if len(next.Content) > 0 {
			at = next.Content[0]
		}
		p.errs.Add(diag.At(at, "a second YAML document starts here (after ---), expected one document per rules file"))
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.errs.Add(&diag.Error{Line: 1, Column: 1, Msg: "the file is empty, expected a mapping with version: 1 and rules"})
		return nil
	}
	root = doc.Content[0]
	// Only a file with a "*" can hold an alias.
	if n := len(data); bytes.IndexByte(data, '*') >= 0 && tooManyNodes(root, 16*n+10000) {
		p.errs.Add(diag.At(root, "the file's aliases (*name) expand to more than %d values, expected a file that is mostly written out; use fewer aliases", 16*n+10000))
		return nil
	}
	return root
}

// yamlError turns a yaml.v3 syntax error in data into a positioned error.
// yaml.v3 says "yaml: line N: problem"; without a line, the error is put at
// 1:1.
func yamlError(err error, data []byte) *diag.Error {
	msg := err.Error()
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			line = n
		}
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if e := tabError(msg, line, data); e != nil {
		return e
	}
	return &diag.Error{Line: line, Column: 1, Msg: fmt.Sprintf("the file is not valid YAML: %s", msg)}
}

// tabError recognizes yaml.v3's errors about a tab in the indentation and
// points at the tab itself. yaml.v3 reports "found a tab character that
// violates indentation" on the line before the tab's, and a tab before a
// key or list item as "found character that cannot start any token".
func tabError(msg string, line int, data []byte) *diag.Error {
	if !strings.Contains(msg, "tab character") && !strings.Contains(msg, "cannot start any token") {
		return nil
	}
	src := newSource(data)
	for _, n := range []int{line, line + 1} {
		l, ok := src.line(n)
		if !ok {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if col := strings.IndexByte(indent, '\t'); col >= 0 {
			return &diag.Error{Line: n, Column: col + 1, Msg: "the file is not valid YAML: a tab in the indentation; indent with spaces (YAML does not allow tabs there)"}
		}
	}
	return nil
}

// tooManyNodes reports whether the tree, with every alias expanded, holds
// more than limit nodes. It stops counting at the limit, so a file whose
// aliases nest into an exponential tree costs no more than limit steps.
func tooManyNodes(root *yaml.Node, limit int) bool {
	budget := limit
	stack := []*yaml.Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == nil {
			continue
		}
		budget--
		if budget < 0 {
			return true
		}
		if n.Kind == yaml.AliasNode {
			stack = append(stack, n.Alias)
			continue
		}
		stack = append(stack, n.Content...)
	}
	return false
}

// file decodes the root mapping into f and, when the file has no
// mistakes, builds its rule set.
func (p *parser) file(root *yaml.Node, f *File) {
	root = diag.Resolve(root)
	if root.Kind != yaml.MappingNode {
		p.errs.Add(diag.At(root, "the file must be a mapping with version: 1 and rules, got %s", diag.KindName(root)))
		return
	}
	f.Apps = map[string]string{}
	f.Vars = map[string]any{}
	p.decodeTop(root, f)
	if len(p.errs) > 0 {
		return
	}
	if len(f.Pages) > 0 {
		f.Handover.Pages = make(map[string]engine.Page, len(f.Pages))
		for _, pg := range f.Pages {
			f.Handover.Pages[pg.ID] = pg
		}
	}
	f.RuleCount = len(p.compiled)
	f.Set = engine.NewSet(p.compiled, f.Apps, f.Vars, f.Handover)
	f.root = root
}

func (p *parser) version(n *yaml.Node) {
	n = diag.Resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.errs.Add(diag.At(n, "version: expected the number 1, got %s", diag.KindName(n)))
		return
	}
	if v, err := strconv.Atoi(n.Value); err != nil || v != Version {
		p.errs.Add(diag.At(n, "version: unsupported version %s, expected 1", n.Value))
	}
}

// apps decodes `apps`: names to numeric app IDs.
func (p *parser) apps(n *yaml.Node) map[string]string {
	out := map[string]string{}
	r := diag.Resolve(n)
	if r.Kind == yaml.ScalarNode && r.Tag == "!!null" {
		return out // an empty section, e.g. every entry commented out
	}
	if r.Kind != yaml.MappingNode {
		p.errs.Add(diag.At(r, "apps: expected a mapping of names to app IDs such as zendesk: 200646160103180, got %s", diag.KindName(r)))
		return out
	}
	fields, errs := diag.Fields(n, "apps", nil)
	p.errs.Add(errs...)
	lineOf := map[string]int{}
	for _, fl := range fields {
		name := fl.Key.Value
		if strings.TrimSpace(name) == "" {
			p.errs.Add(diag.At(fl.Key, "apps: an app name is empty, expected a name such as zendesk"))
			continue
		}
		v := diag.Resolve(fl.Value)
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Tag == "!!bool" {
			p.errs.Add(diag.At(v, "apps.%s: expected a numeric app ID such as 200646160103180, got %s", name, diag.KindName(v)))
			continue
		}
		id := strings.TrimSpace(v.Value)
		if !messenger.IsNumericID(id) {
			p.errs.Add(diag.At(v, "apps.%s: app ID %q is not a number, expected digits only such as 200646160103180", name, v.Value))
			continue
		}
		if prev, dup := lineOf[id]; dup {
			p.errs.Add(diag.At(v, "apps.%s: app ID %s is already listed on line %d, expected each app once", name, id, prev))
			continue
		}
		lineOf[id] = v.Line
		out[name] = id
	}
	return out
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// vars decodes `vars`: names to scalars.
func (p *parser) vars(n *yaml.Node) map[string]any {
	out := map[string]any{}
	r := diag.Resolve(n)
	if r.Kind == yaml.ScalarNode && r.Tag == "!!null" {
		return out // an empty section, e.g. every entry commented out
	}
	if r.Kind != yaml.MappingNode {
		p.errs.Add(diag.At(r, "vars: expected a mapping of names to values such as brand: Acme, got %s", diag.KindName(r)))
		return out
	}
	fields, errs := diag.Fields(n, "vars", nil)
	p.errs.Add(errs...)
	for _, fl := range fields {
		name := fl.Key.Value
		if !identifier.MatchString(name) {
			p.errs.Add(diag.At(fl.Key, "vars: the name %q cannot be used in templates and expressions, expected letters, digits and _ starting with a letter, such as brand_name", name))
			continue
		}
		v := diag.Resolve(fl.Value)
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			p.errs.Add(diag.At(v, "vars.%s: expected a string, number or boolean, got %s", name, diag.KindName(v)))
			continue
		}
		var val any
		switch v.Tag {
		case "!!int":
			var i int
			if err := v.Decode(&i); err != nil {
				p.errs.Add(diag.At(v, "vars.%s: the number %s is too large, expected a whole number that fits in 64 bits or a string in quotes", name, v.Value))
				continue
			}
			val = i
		case "!!float":
			var x float64
			if err := v.Decode(&x); err != nil {
				p.errs.Add(diag.At(v, "vars.%s: %q is not a number, expected a number or a string in quotes", name, v.Value))
				continue
			}
			val = x
		case "!!bool":
			var b bool
			if err := v.Decode(&b); err != nil {
				p.errs.Add(diag.At(v, "vars.%s: %q is not true or false", name, v.Value))
				continue
			}
			val = b
		case "!!str":
			val = v.Value
		default:
			p.errs.Add(diag.At(v, "vars.%s: expected a string, number or boolean, got a value tagged %s", name, v.Tag))
			continue
		}
		out[name] = val
	}
	return out
}

// rules decodes the `rules` list.
func (p *parser) rules(n *yaml.Node, f *File) []*engine.Rule {
	n = diag.Resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.errs.Add(diag.At(n, "rules: expected a list of rules (each starting with - name: ...), got %s", diag.KindName(n)))
		return nil
	}
	if len(n.Content) == 0 {
		p.errs.Add(diag.At(n, "rules: the list is empty, expected at least one rule"))
		return nil
	}
	if len(n.Content) > MaxRules {
		p.errs.Add(diag.At(n.Content[MaxRules], "rules: this is rule %d of %d, the limit is %d rules in a file", MaxRules+1, len(n.Content), MaxRules))
		return nil
	}
	type result struct {
		rule *engine.Rule
		name *yaml.Node
		errs diag.List
	}
	items := n.Content
	results := make([]result, len(items))
	compile := func(lo, hi int) {
		sub := &parser{src: p.src}
		for i := lo; i < hi; i++ {
			r, name := sub.rule(items[i], i+1, f)
			results[i] = result{r, name, sub.errs}
			sub.errs = nil
		}
	}
	// Rules compile independently (the tree, the source, apps and vars are
	// only read), so a large file is split across the CPUs.
	workers := min(runtime.GOMAXPROCS(0), len(items)/rulesPerWorker)
	if workers <= 1 {
		compile(0, len(items))
	} else {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			lo, hi := w*len(items)/workers, (w+1)*len(items)/workers
			wg.Go(func() { compile(lo, hi) })
		}
		wg.Wait()
	}

	out := make([]*engine.Rule, 0, len(items))
	nameLine := make(map[string]int, len(items))
	for _, res := range results {
		p.errs.Add(res.errs...)
		if res.name != nil {
			if prev, dup := nameLine[res.name.Value]; dup {
				p.errs.Add(diag.At(res.name, "rule %q: the name is already used by the rule on line %d, expected a unique name", res.name.Value, prev))
			} else {
				nameLine[res.name.Value] = res.name.Line
			}
		}
		if res.rule != nil {
			out = append(out, res.rule)
		}
	}
	return out
}

// rulesPerWorker is the least number of rules worth a goroutine of their
// own when a file is compiled.
const rulesPerWorker = 256

// sortedKeys returns the keys of a set in sorted order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
