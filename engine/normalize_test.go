package engine

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"spec example", "  Chat with AGENT! ", "chat with agent"},
		{"already normal", "chat with agent", "chat with agent"},
		{"empty", "", ""},
		{"only punctuation", " ?!... ", ""},
		{"inner white space collapsed", "chat\t with\n\nagent", "chat with agent"},
		{"non-breaking space", "chat\u00a0with agent", "chat with agent"},
		{"inner punctuation kept", "chat, with agent", "chat, with agent"},
		{"trailing emoji trimmed", "hello 👋", "hello"},
		{"leading symbols trimmed", "«hello»", "hello"},
		{"sharp s folds to ss", "straße", "strasse"},
		{"capital sharp s", "STRASSE", "strasse"},
		{"greek final sigma", "ΟΔΟΣ", "οδοσ"},
		{"greek final sigma lower", "οδος", "οδοσ"},
		{"accented capitals", "CAFÉ", "café"},
		{"decomposed accent composed", "cafe\u0301", "café"},
		{"turkish dotless i is its own letter", "ılık", "ılık"},
		{"digits kept", "Order #1234!", "order #1234"},
		{"full-width letters", "ＡＧＥＮＴ", "ａｇｅｎｔ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := Normalize(Normalize(tt.in)); got != Normalize(tt.in) {
				t.Errorf("Normalize is not idempotent on %q: %q then %q", tt.in, Normalize(tt.in), got)
			}
		})
	}
}

func TestNormalizeEquivalence(t *testing.T) {
	// Pairs that a user would consider the same phrase.
	same := [][2]string{
		{"  Chat with AGENT! ", "chat with agent"},
		{"STRASSE", "straße"},
		{"Straße", "STRASSE"},
		{"ΟΔΟΣ", "οδος"},
		{"Ὀδυσσεύς", "ὀδυσσεύς"},
		{"İstanbul", "i̇stanbul"}, // capital dotted I folds to i + combining dot
		{"cafe\u0301", "CAFÉ"},
	}
	for _, p := range same {
		if Normalize(p[0]) != Normalize(p[1]) {
			t.Errorf("Normalize(%q) = %q, Normalize(%q) = %q, want equal", p[0], Normalize(p[0]), p[1], Normalize(p[1]))
		}
	}
	// Default (not Turkish) folding: these stay different.
	different := [][2]string{
		{"ISTANBUL", "ıstanbul"},
		{"chat with agent", "chat with agents"},
		{"chat, with agent", "chat with agent"},
	}
	for _, p := range different {
		if Normalize(p[0]) == Normalize(p[1]) {
			t.Errorf("Normalize(%q) == Normalize(%q) == %q, want different", p[0], p[1], Normalize(p[0]))
		}
	}
}

func TestContainsWords(t *testing.T) {
	tests := []struct {
		text, phrase string
		want         bool
	}{
		{"an agent please", "agent", true},
		{"reagents", "agent", false},
		{"agents", "agent", false},
		{"agent", "agent", true},
		{"agent, please", "agent", true},
		{"my agent", "agent", true},
		{"reagent agent", "agent", true}, // the second occurrence is on boundaries
		{"i want my money back", "money back", true},
		{"i want my money backup", "money back", false},
		{"my e-mail is", "e-mail", true},
		{"order #1234 please", "#1234", true},
		{"order #12345", "#1234", false},
		{"die strasse hier", Normalize("Straße"), true},
		{"café au lait", "café", true},
		{"cafés", "café", false},
		{"agent_smith", "agent", false},
		{"", "agent", false},
		{"agent", "", false},
		{"ag", "agent", false},
		{"日本語のエージェント", "エージェント", false}, // no spaces between words: only whole-text matches count
		{"エージェント", "エージェント", true},
	}
	for _, tt := range tests {
		if got := ContainsWords(tt.text, tt.phrase); got != tt.want {
			t.Errorf("ContainsWords(%q, %q) = %v, want %v", tt.text, tt.phrase, got, tt.want)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	for b.Loop() {
		Normalize("  Chat with AGENT, please! ")
	}
}

// TestNormalizeASCIIFastPath checks that the ASCII fast path gives what
// the general path (trim, fold, collapse) gives, on random ASCII strings.
func TestNormalizeASCIIFastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	const alphabet = "aZ zQ!?.,-_#'\"\t\n\r\v\f()[]{}~`@$%^&*+=<>|/\\:;09"
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.IntN(12))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		fast, ok := normalizeASCII(s)
		if !ok {
			t.Fatalf("normalizeASCII(%q) refused an ASCII string", s)
		}
		if slow := normalizeGeneral(s); fast != slow {
			t.Fatalf("normalizeASCII(%q) = %q, the general path gives %q", s, fast, slow)
		}
	}
	if _, ok := normalizeASCII("café"); ok {
		t.Errorf("normalizeASCII accepted a non-ASCII string")
	}
}

// normalizeGeneral is Normalize without the ASCII fast path.
func normalizeGeneral(s string) string {
	s = strings.TrimFunc(s, trimmable)
	return strings.Join(strings.Fields(folder.String(s)), " ")
}
