//go:build race

package redisstore

// raceEnabled skips heap measurements: the race detector changes what
// allocations cost.
const raceEnabled = true
