package loadtest

import (
	"context"
	"time"
)

// clock reads the run's monotonic time: durations since the run began, so
// wall-clock steps never bend a measurement.
type clock struct{ base time.Time }

func newClock() clock { return clock{base: time.Now()} }

func (c clock) now() time.Duration { return time.Since(c.base) }

// ticker fires at first, first+period, first+2×period … on the run clock.
// The scheduler waits on it between requests.
type ticker interface {
	// wait blocks until the next tick is due and returns the latest tick
	// time that has passed (ticks missed while busy are skipped, not
	// queued). It returns false once ctx is done.
	wait() (last time.Duration, ok bool)
	stop()
}

// runtimeTicker uses a Go timer: portable, but only as precise as the
// runtime's poller timeout (about a millisecond when the process is idle).
type runtimeTicker struct {
	ctx           context.Context
	clk           clock
	first, period time.Duration
	timer         *time.Timer
}

func newRuntimeTicker(ctx context.Context, clk clock, first, period time.Duration) ticker {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &runtimeTicker{ctx: ctx, clk: clk, first: first, period: period, timer: t}
}

func (t *runtimeTicker) wait() (time.Duration, bool) {
	now := t.clk.now()
	next := t.first
	if now >= t.first {
		next = t.first + ((now-t.first)/t.period+1)*t.period
	}
	t.timer.Reset(next - now)
	select {
	case <-t.ctx.Done():
		t.timer.Stop()
		return 0, false
	case <-t.timer.C:
		return next, true
	}
}

func (t *runtimeTicker) stop() { t.timer.Stop() }
