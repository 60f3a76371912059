//go:build !race

package durability

import "testing"

// skipUnderRace skips a test that measures memory under the race
// detector: see memory_test.go.
func skipUnderRace(*testing.T) {}
