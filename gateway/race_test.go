//go:build race

package gateway_test

// raceEnabled tells whether this test binary runs under the race detector,
// whose sync.Pool drops items at random: allocation counts do not hold.
const raceEnabled = true
