//go:build race

package engine_test

// raceEnabled tells whether this test binary runs under the race detector,
// which makes sync.Pool drop some of what it is given back.
const raceEnabled = true
