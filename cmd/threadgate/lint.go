package main

import (
	"fmt"
	"os"

	"github.com/threadgate/threadgate/rules"
)

// lintFile returns the warnings of the rules file at path.
func lintFile(path string) ([]rules.Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	_, warnings, err := rules.Lint(path, data)
	return warnings, err
}

// checkSummary is check's line for a file that is valid.
func checkSummary(path string, c *rules.Checked, warnings int) string {
	s := fmt.Sprintf("%s: ok, %d rules", path, c.File.RuleCount)
	if c.Tests > 0 {
		s += fmt.Sprintf(", %s passed", plural(c.Tests, "rule test", "rule tests"))
	}
	if warnings > 0 {
		s += ", " + plural(warnings, "warning", "warnings")
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
