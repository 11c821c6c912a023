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
// answered, and no more than limit are. And those waiting for a CPU: a
// decide on the embedded store is CPU-bound and rarely meets another inside
// the handler, so when a node is short of CPU its queue is of requests
// already read from their connections whose goroutines the Go scheduler
// holds runnable, which no counter in the handler sees.
//
// That queue is read from runtime/metrics at most every queueSampleEvery,
// by the decide that finds the last reading too old (a reading costs a few
// hundred nanoseconds, so most decides pay nothing). A queue longer than
// limit for queueHold is overload: a stall (a garbage collection, a
// neighbour on the machine taking the CPU) leaves a backlog that a server
// with room drains within milliseconds, and refusing it would turn a short
// delay into errors. Under overload decides are refused while the handler
// and the queue together hold more than half the limit, which keeps the
// wait of an admitted decide to about half the limit's worth of decides;
// overload ends once the queue has stayed within half the limit for
// queueHold.
type admission struct {
	limit    int64
	inflight atomic.Int64
	// queued is the scheduler's queue at the last reading while overloaded,
	// and zero otherwise.
	queued atomic.Int64
	// sampledAt is the request time of the last reading, unix nanoseconds.
	sampledAt atomic.Int64
	// sampling lets one decide read at a time, and guards the state below;
	// the others go on with the previous reading.
	sampling   sync.Mutex
	overloaded bool
	// since is when the readings began to say the state should change
	// (unix nanoseconds; zero while they do not).
	since int64
	// runnable reads the scheduler's queue; tests replace it.
	runnable func() int64
}

// queueSampleEvery is how old a reading of the scheduler's queue may be;
// queueHold is how long a reading must hold before overload begins or
// ends.
const (
	queueSampleEvery = time.Millisecond
	queueHold        = 20 * time.Millisecond
)

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
		a.read(t)
		a.sampling.Unlock()
	}
	n, q := a.inflight.Add(1), a.queued.Load()
	if n > a.limit || q > 0 && n+q > a.limit/2 {
		a.inflight.Add(-1)
		return false
	}
	return true
}

// read takes a reading of the scheduler's queue at t and moves in or out
// of overload; the caller holds sampling.
func (a *admission) read(t int64) {
	q := a.runnable()
	a.sampledAt.Store(t)
	// Whether this reading says the state should change.
	change := q > a.limit
	if a.overloaded {
		change = q <= a.limit/2
	}
	switch {
	case !change:
		a.since = 0
	case a.since == 0:
		a.since = t
	case t-a.since >= int64(queueHold):
		a.overloaded, a.since = !a.overloaded, 0
	}
	if a.overloaded {
		a.queued.Store(max(q, 1))
	} else {
		a.queued.Store(0)
	}
}

// done ends an admitted decide.
func (a *admission) done() { a.inflight.Add(-1) }
