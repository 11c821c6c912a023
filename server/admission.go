package server

import (
	runtimemetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// admission bounds the decides in flight, so that a server past what it
// can serve answers the excess at once (503 overloaded) and keeps the
// latency of the decides it takes.
//
// Two kinds of decides are in flight. Those inside the handler: a decide
// waiting on a shared store counts from the moment it starts until it is
// answered. And those waiting for a CPU: a decide on the embedded store is
// CPU-bound and rarely meets another inside the handler, so when a node is
// short of CPU its queue is of requests already read from their
// connections whose goroutines the Go scheduler holds runnable, which no
// counter in the handler sees. The bound applies to the two together; the
// runnable goroutines are read from runtime/metrics at most every
// queueSampleEvery, by the decide that finds the last reading too old (a
// reading costs a few hundred nanoseconds, so most decides pay nothing).
type admission struct {
	limit    int64
	inflight atomic.Int64
	// queued is the smaller of the scheduler's runnable goroutines at the
	// last two readings (last is the latest), the latest taken at request
	// time sampledAt (unix nanoseconds).
	queued    atomic.Int64
	last      int64
	sampledAt atomic.Int64
	// sampling lets one decide read at a time; the others go on with the
	// previous reading.
	sampling sync.Mutex
	// runnable reads the scheduler's queue; tests replace it.
	runnable func() int64
}

// queueSampleEvery is how old a reading of the scheduler's queue may be.
// A queue builds up in milliseconds at the rates where it matters.
const queueSampleEvery = time.Millisecond

func newAdmission(limit int64) *admission {
	return &admission{limit: limit, runnable: runnableGoroutines()}
}

// runnableGoroutines returns a reader of the goroutines ready to run but
// waiting for a CPU, or of nothing when the runtime does not report them.
func runnableGoroutines() func() int64 {
	sample := []runtimemetrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}
	var mu sync.Mutex
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		runtimemetrics.Read(sample)
		if sample[0].Value.Kind() != runtimemetrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	}
}

// admit counts a decide that arrived at now in flight and reports whether
// it may be served; every admitted decide must be followed by done.
func (a *admission) admit(now time.Time) bool {
	if t := now.UnixNano(); t-a.sampledAt.Load() >= int64(queueSampleEvery) && a.sampling.TryLock() {
		// A queue counts only once two readings a millisecond apart both
		// see it: the runnable goroutines jump for a moment at every
		// garbage collection, and a lasting queue is what overload is.
		q := a.runnable()
		a.queued.Store(min(q, a.last))
		a.last = q
		a.sampledAt.Store(t)
		a.sampling.Unlock()
	}
	if a.inflight.Add(1)+a.queued.Load() > a.limit {
		a.inflight.Add(-1)
		return false
	}
	return true
}

// done ends an admitted decide.
func (a *admission) done() { a.inflight.Add(-1) }
