//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package loadtest

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used, so a
// step can report how much of a core the generator needed.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
