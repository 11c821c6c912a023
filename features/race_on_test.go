//go:build race

package features

// raceEnabled skips allocation assertions: the race detector allocates and
// makes sync.Pool drop items on purpose.
const raceEnabled = true
