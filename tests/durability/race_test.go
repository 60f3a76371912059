//go:build race

package durability

import "testing"

// skipUnderRace skips a test that measures memory: see memory_test.go.
func skipUnderRace(t *testing.T) {
	t.Skip("measures the binary's memory, which the race detector multiplies; run without -race")
}
