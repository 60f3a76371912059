package messenger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrPagesFile is wrapped by every error about the content of a pages file.
var ErrPagesFile = errors.New("messenger: invalid pages file")

// LoadPageTokens reads a pages file: a YAML or JSON mapping of Page IDs (or
// Instagram account IDs) to their access tokens, such as
//
//	"111222333444555": EAAG...
//	"17841400000000000": IGQV...
//
// It is meant to be mounted from a secret store (a Kubernetes Secret, a
// Docker secret). Errors name the file, the line and the Page ID, never a
// token.
func LoadPageTokens(path string) (PageTokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pages file: %w", err)
	}
	p, err := ParsePageTokens(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePageTokens parses the content of a pages file (see LoadPageTokens).
// Every mistake is reported, each with its line; no token appears in the
// error.
func ParsePageTokens(data []byte) (PageTokens, error) {
	var doc yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file is empty, expected a mapping of Page IDs to access tokens", ErrPagesFile)
	}
	if err != nil {
		// yaml.v3's syntax errors give a line and what is wrong, not the
		// text around it; keep only that much anyway.
		msg := err.Error()
		if i := strings.Index(msg, "line "); i >= 0 {
			msg = msg[i:]
		}
		return nil, fmt.Errorf("%w: not valid YAML or JSON: %s", ErrPagesFile, firstLine(msg))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: line %d: expected a mapping of Page IDs to access tokens such as \"111222333444555\": TOKEN", ErrPagesFile, root.Line)
	}
	out := PageTokens{}
	var problems []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		id := strings.TrimSpace(k.Value)
		switch {
		case k.Kind != yaml.ScalarNode || !IsNumericID(id):
			problems = append(problems, fmt.Sprintf("line %d: a key is not a numeric Page ID, expected digits such as \"111222333444555\"", k.Line))
			continue
		case out[id] != "":
			problems = append(problems, fmt.Sprintf("line %d: Page %s is listed twice", k.Line, id))
			continue
		}
		token := strings.TrimSpace(v.Value)
		switch {
		case v.Kind != yaml.ScalarNode || v.Tag == "!!null" || token == "":
			problems = append(problems, fmt.Sprintf("line %d: Page %s has no token, expected its access token as a string", v.Line, id))
			continue
		case strings.ContainsAny(token, " \t\r\n"):
			problems = append(problems, fmt.Sprintf("line %d: the token of Page %s holds white space, expected the token alone", v.Line, id))
			continue
		}
		out[id] = token
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrPagesFile, strings.Join(problems, "; "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no pages listed, expected a mapping of Page IDs to access tokens", ErrPagesFile)
	}
	return out, nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// PagesAndDefault is a TokenSource for a gateway serving several Pages:
// each Page listed in Pages gets its own token, any other Page gets
// Default (the single PAGE_ACCESS_TOKEN), or none when Default is empty.
// A listed Page never gets another Page's token.
type PagesAndDefault struct {
	Pages   PageTokens
	Default string
}

// Token returns the token of pageID.
func (p PagesAndDefault) Token(pageID string) (string, bool) {
	if t, ok := p.Pages[pageID]; ok {
		return t, t != ""
	}
	return p.Default, p.Default != ""
}

// String hides the tokens from fmt and logs.
func (p PagesAndDefault) String() string {
	return fmt.Sprintf("PagesAndDefault(%d pages, default %v, redacted)", len(p.Pages), p.Default != "")
}

// GoString hides the tokens from %#v.
func (p PagesAndDefault) GoString() string { return p.String() }
