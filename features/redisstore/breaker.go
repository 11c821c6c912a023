package redisstore

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Breaker states.
const (
	breakerClosed int32 = iota
	breakerOpen
	breakerHalfOpen
)

// outcome is what a finished call says about Redis's health.
type outcome uint8

const (
	outcomeSuccess outcome = iota // Redis answered
	outcomeFailure                // Redis did not answer in time, or answered that it cannot serve
	outcomeNeutral                // says nothing: the caller gave up, or the store was closed
)

// breaker is a consecutive-failure circuit breaker. Closed, calls go
// through; after threshold failures in a row it opens and calls are refused
// until a backoff has passed; then one probe call goes through (half-open),
// and its outcome closes the breaker or opens it again for twice as long.
// Closed with no failures, allow and record touch only atomics.
type breaker struct {
	threshold  int32
	minBackoff time.Duration
	maxBackoff time.Duration
	now        func() time.Time

	state   atomic.Int32 // breakerClosed, breakerOpen or breakerHalfOpen
	failing atomic.Int32 // consecutive failures while closed
	opens   atomic.Uint64

	mu      sync.Mutex
	backoff time.Duration // the current open period, before jitter
	retryAt time.Time     // when an open breaker lets a probe through
	probing bool          // a half-open probe is under way
}

func newBreaker(cfg BreakerConfig, now func() time.Time) *breaker {
	return &breaker{
		threshold:  int32(cfg.Failures),
		minBackoff: cfg.Backoff,
		maxBackoff: cfg.MaxBackoff,
		now:        now,
		backoff:    cfg.Backoff,
	}
}

// allow reports whether a call may go ahead and whether it is the probe
// whose outcome decides a half-open breaker. Every allowed call must be
// followed by record.
func (b *breaker) allow() (ok, probe bool) {
	if b.state.Load() == breakerClosed {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerClosed:
		return true, false
	case breakerOpen:
		if b.now().Before(b.retryAt) {
			return false, false
		}
		b.state.Store(breakerHalfOpen)
		b.probing = true
		return true, true
	default: // half-open
		if b.probing {
			return false, false
		}
		b.probing = true
		return true, true
	}
}

// record feeds a finished call's outcome to the breaker.
func (b *breaker) record(probe bool, o outcome) {
	if !probe && o == outcomeSuccess && b.failing.Load() == 0 && b.state.Load() == breakerClosed {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch o {
	case outcomeSuccess:
		// Redis answered: whatever the state, it is reachable again.
		b.state.Store(breakerClosed)
		b.failing.Store(0)
		b.backoff = b.minBackoff
	case outcomeFailure:
		switch {
		case probe:
			b.backoff = min(2*b.backoff, b.maxBackoff)
			b.openLocked()
		case b.state.Load() == breakerClosed:
			if b.failing.Add(1) >= b.threshold {
				b.backoff = b.minBackoff
				b.openLocked()
			}
		}
		// A failure of a call that started before the breaker opened
		// changes nothing.
	}
}

func (b *breaker) openLocked() {
	if b.state.Swap(breakerOpen) != breakerOpen {
		b.opens.Add(1)
	}
	b.failing.Store(0)
	// ±10% jitter, so nodes that lost Redis together do not all probe at
	// the same instant.
	spread := int64(b.backoff / 5)
	d := b.backoff
	if spread > 0 {
		d += time.Duration(rand.Int64N(spread+1) - spread/2)
	}
	b.retryAt = b.now().Add(d)
}

// state is the breaker's view: down while open or probing, degraded while
// closed but failing.
func (b *breaker) stateName() string {
	switch {
	case b.state.Load() != breakerClosed:
		return StateDown
	case b.failing.Load() > 0:
		return StateDegraded
	}
	return StateUp
}
