package loadtest

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// progressEvery is how often the live line is redrawn.
const progressEvery = 250 * time.Millisecond

// startProgress redraws a one-line status on cfg.Progress while a step
// runs; the returned stop clears the line and waits for the drawer to exit.
func (r *runner) startProgress(p plan, rec *recorder, start time.Duration) (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-t.C:
				fmt.Fprint(w, "\r"+r.progressLine(p, rec, start)+"\x1b[K")
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func (r *runner) progressLine(p plan, rec *recorder, start time.Duration) string {
	var b strings.Builder
	switch {
	case p.kind == kindWarmup:
		b.WriteString("warm-up")
	case p.kind == kindProbe:
		fmt.Fprintf(&b, "probe %d", p.index)
	case p.of > 1:
		fmt.Fprintf(&b, "step %d/%d", p.index, p.of)
	default:
		b.WriteString("run")
	}
	if p.rate > 0 {
		fmt.Fprintf(&b, " · open loop %s req/s", fmtRate(p.rate))
	} else {
		fmt.Fprintf(&b, " · CLOSED loop ×%d", p.concurrency)
	}
	el := r.clk.now() - start
	if el < 0 {
		el = 0
	}
	fmt.Fprintf(&b, " · %.1fs", el.Seconds())
	if p.duration > 0 {
		fmt.Fprintf(&b, "/%s", p.duration)
	}
	fmt.Fprintf(&b, " · done %s · ok %s · errors %s", fmtInt(rec.liveDone.Load()), fmtInt(rec.liveOK.Load()), fmtInt(rec.liveErr.Load()))
	if p99 := rec.liveP99.Load(); p99 > 0 {
		fmt.Fprintf(&b, " · p99 %s (last second)", fmtUS(p99))
	}
	return b.String()
}
