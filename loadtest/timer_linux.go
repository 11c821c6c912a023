//go:build linux

package loadtest

import (
	"context"
	"encoding/binary"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdTicker is a periodic timerfd registered with Go's network poller.
// The runtime's own timers wake a sleeping goroutine no more precisely
// than the poller's millisecond timeout whenever nothing else is happening,
// which at 20,000 requests per second would send requests in late bursts.
// A timerfd makes epoll itself wake at each planned instant without
// spinning a core, and being periodic it is armed once per step, not once
// per request: each tick costs one read.
type timerfdTicker struct {
	clk           clock
	f             *os.File
	first, period time.Duration
	fired         uint64
	stopWatch     func() bool
	buf           [8]byte
}

func newTicker(ctx context.Context, clk clock, first, period time.Duration) ticker {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newRuntimeTicker(ctx, clk, first, period)
	}
	// Go's monotonic clock is CLOCK_MONOTONIC on Linux, so the two differ
	// by a constant; reading them back to back finds it within a microsecond.
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		unix.Close(fd)
		return newRuntimeTicker(ctx, clk, first, period)
	}
	offset := ts.Nano() - int64(clk.now())
	spec := unix.ItimerSpec{
		Value:    unix.NsecToTimespec(offset + int64(first)),
		Interval: unix.NsecToTimespec(int64(period)),
	}
	if err := unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		unix.Close(fd)
		return newRuntimeTicker(ctx, clk, first, period)
	}
	t := &timerfdTicker{clk: clk, f: os.NewFile(uintptr(fd), "timerfd"), first: first, period: period}
	// An interrupt unblocks a pending read through an expired deadline.
	if err := t.f.SetReadDeadline(time.Time{}); err != nil {
		t.f.Close()
		return newRuntimeTicker(ctx, clk, first, period)
	}
	t.stopWatch = context.AfterFunc(ctx, func() { t.f.SetReadDeadline(time.Unix(1, 0)) })
	return t
}

func (t *timerfdTicker) wait() (time.Duration, bool) {
	n, err := t.f.Read(t.buf[:])
	if err != nil || n != 8 {
		return 0, false
	}
	t.fired += binary.NativeEndian.Uint64(t.buf[:])
	return t.first + time.Duration(t.fired-1)*t.period, true
}

func (t *timerfdTicker) stop() {
	t.stopWatch()
	t.f.Close()
}
