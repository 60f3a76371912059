package engine

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

var folder = cases.Fold()

// Normalize returns s the way `text` and `contains` compare it: Unicode case
// folding, white space and punctuation trimmed at both ends, and inner runs of
// white space collapsed to one space. "  Chat with AGENT! " becomes
// "chat with agent". Accented letters are composed first (Unicode NFC), so
// "café" typed as "cafe" plus a combining accent equals "café".
func Normalize(s string) string {
	if out, ok := normalizeASCII(s); ok {
		return out
	}
	s = strings.TrimFunc(s, trimmable)
	if s == "" {
		return ""
	}
	if !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
	}
	s = folder.String(s)
	if !needsCollapse(s) {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// asciiTrim marks the ASCII bytes that Normalize trims at both ends (white
// space, punctuation, symbols) and asciiSpace the ASCII white space.
var asciiTrim, asciiSpace [utf8.RuneSelf]bool

func init() {
	for b := rune(0); b < utf8.RuneSelf; b++ {
		asciiTrim[b] = trimmable(b)
		asciiSpace[b] = unicode.IsSpace(b)
	}
}

// normalizeASCII is Normalize for a string of ASCII bytes, where case
// folding is lower-casing and NFC changes nothing: one pass, at most one
// allocation. It reports false for any other string.
func normalizeASCII(s string) (string, bool) {
	start, end := 0, len(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return "", false
		}
	}
	for start < end && asciiTrim[s[start]] {
		start++
	}
	for end > start && asciiTrim[s[end-1]] {
		end--
	}
	s = s[start:end]
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || (asciiSpace[c] && (c != ' ' || (i > 0 && s[i-1] == ' '))) {
			clean = false
			break
		}
	}
	if clean {
		return s, true
	}
	b := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if asciiSpace[c] {
			space = true
			continue
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b), true
}

func trimmable(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
}

func needsCollapse(s string) bool {
	prevSpace := false
	for _, r := range s {
		sp := unicode.IsSpace(r)
		if sp && (prevSpace || r != ' ') {
			return true
		}
		prevSpace = sp
	}
	return false
}

// ContainsWords reports whether the normalized text holds the normalized
// phrase on word boundaries: "agent" is in "an agent please" but not in
// "reagents". Both arguments must already be normalized.
func ContainsWords(text, phrase string) bool {
	if phrase == "" {
		return false
	}
	for i := 0; i <= len(text)-len(phrase); {
		j := strings.Index(text[i:], phrase)
		if j < 0 {
			return false
		}
		start := i + j
		end := start + len(phrase)
		if boundaryBefore(text, start) && boundaryAfter(text, end) {
			return true
		}
		i = start + 1
	}
	return false
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '_'
}

func boundaryBefore(s string, i int) bool {
	if i == 0 {
		return true
	}
	r := lastRune(s[:i])
	first := firstRune(s[i:])
	return !isWordRune(r) || !isWordRune(first)
}

func boundaryAfter(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	r := firstRune(s[i:])
	last := lastRune(s[:i])
	return !isWordRune(r) || !isWordRune(last)
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

func lastRune(s string) rune {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}
