//go:build !race

package testbinary

// raceEnabled tells whether this test binary runs under the race detector.
const raceEnabled = false
