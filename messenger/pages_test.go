package messenger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	tokA = "EAAG-token-of-page-a-0123456789"
	tokB = "IGQV-token-of-account-b-987654"
)

func TestParsePageTokens(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    PageTokens
		wantErr string
	}{
		{"yaml", "\"111\": " + tokA + "\n222: " + tokB + "\n", PageTokens{"111": tokA, "222": tokB}, ""},
		{"json", `{"111": "` + tokA + `", "222": "` + tokB + `"}`, PageTokens{"111": tokA, "222": tokB}, ""},
		{"kubernetes secret value with trailing newline", "111: |\n  " + tokA + "\n", PageTokens{"111": tokA}, ""},
		{"empty", "", nil, "the file is empty"},
		{"comment only", "# nothing\n", nil, "the file is empty"},
		{"list", "- " + tokA + "\n", nil, "line 1: expected a mapping of Page IDs"},
		{"no pages", "{}", nil, "no pages listed"},
		{"bad id", "shop: " + tokA + "\n", nil, "line 1: a key is not a numeric Page ID"},
		{"twice", "111: " + tokA + "\n111: " + tokB + "\n", nil, "line 2: Page 111 is listed twice"},
		{"no token", "111:\n222: \"\"\n", nil, "as a string; line 2: Page 222 has no token"},
		{"token with space", "111: " + tokA + " extra\n", nil, "line 1: the token of Page 111 holds white space"},
		{"nested", "111: {token: " + tokA + "}\n", nil, "line 1: Page 111 has no token"},
		{"syntax", "111: " + tokA + "\n  bad: [\n", nil, "not valid YAML or JSON: line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePageTokens([]byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrPagesFile) {
					t.Fatalf("err = %v, want %q wrapping ErrPagesFile", err, tt.wantErr)
				}
				for _, tok := range []string{tokA, tokB} {
					if strings.Contains(err.Error(), tok) {
						t.Errorf("the error shows a token: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d pages, want %d", len(got), len(tt.want))
			}
			for id, tok := range tt.want {
				if got[id] != tok {
					t.Errorf("page %s: wrong token", id)
				}
			}
		})
	}
}

func TestLoadPageTokens(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pages.yaml")
	if err := os.WriteFile(path, []byte("111: "+tokA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPageTokens(path)
	if err != nil || p["111"] != tokA {
		t.Fatalf("LoadPageTokens = %v, %v", p, err)
	}
	if _, err := LoadPageTokens(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte("x: "+tokA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPageTokens(path); err == nil || !strings.HasPrefix(err.Error(), path+": ") || strings.Contains(err.Error(), tokA) {
		t.Errorf("bad file: %v, want an error naming the file and not the token", err)
	}
}

func TestPagesAndDefault(t *testing.T) {
	src := PagesAndDefault{Pages: PageTokens{"111": tokA, "222": tokB}, Default: "default-token-value"}
	tests := []struct {
		page string
		want string
		ok   bool
	}{
		{"111", tokA, true},
		{"222", tokB, true},
		{"333", "default-token-value", true},
		{"", "default-token-value", true},
	}
	for _, tt := range tests {
		if got, ok := src.Token(tt.page); got != tt.want || ok != tt.ok {
			t.Errorf("Token(%q) = %q, %v; want %q, %v", tt.page, got, ok, tt.want, tt.ok)
		}
	}
	noDefault := PagesAndDefault{Pages: PageTokens{"111": tokA}}
	if tok, ok := noDefault.Token("333"); ok || tok != "" {
		t.Errorf("a page without a token got %q, %v", tok, ok)
	}
	for _, s := range []string{fmt.Sprint(src), fmt.Sprintf("%v %+v %#v %s", src, src, src, src)} {
		if strings.Contains(s, tokA) || strings.Contains(s, "default-token-value") {
			t.Errorf("formatting shows a token: %s", s)
		}
	}
}
