//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package loadtest

import "time"

// processCPU is unavailable here; steps report no generator CPU.
func processCPU() (time.Duration, bool) { return 0, false }
