package rules

import "testing"

func TestTestFilePath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"rules.yaml":              "rules.test.yaml",
		"/etc/threadgate/bot.yml": "/etc/threadgate/bot.test.yml",
		"rules":                   "rules.test.yaml",
	} {
		if got := TestFilePath(in); got != want {
			t.Errorf("TestFilePath(%q) = %q, want %q", in, got, want)
		}
	}
}
