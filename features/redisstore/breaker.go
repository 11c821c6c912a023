package redisstore

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
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
	// outcomeFailure: no connection could be made or kept, or Redis
	// answered that it cannot serve. Such failures open the breaker by
	// their number alone.
	outcomeFailure
	// outcomeSlow: the call timed out. A busy machine times out single
	// calls, and a stall of this process times out every call in flight
	// at once; neither means Redis is down, so timeouts open the breaker
	// only when no call has succeeded for a while.
	outcomeSlow
	outcomeNeutral // says nothing: the caller gave up, or the store was closed
)

// breaker is a circuit breaker. Closed, calls go through. It opens after
// threshold calls in a row failed, if they include threshold connection
// failures or no call has succeeded for span; open, it refuses calls until a
// backoff has passed; then one probe call goes through (half-open), and its
// outcome closes the breaker or opens it again, for twice as long if the
// probe could not connect. Closed with no failures, allow and record touch
// only atomics.
type breaker struct {
	name       string // "read" or "write", for logs
	threshold  int32
	span       time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	now        func() time.Time
	log        zerolog.Logger

	state   atomic.Int32 // breakerClosed, breakerOpen or breakerHalfOpen
	failing atomic.Int32 // consecutive failed calls while closed
	opens   atomic.Uint64
	// lastFailure is when the last failed call ended, in Unix nanoseconds.
	lastFailure atomic.Int64

	mu           sync.Mutex
	hardFailures int32         // connection failures among the failing calls
	failingSince time.Time     // when the first of the failing calls ended
	backoff      time.Duration // the current open period, before jitter
	retryAt      time.Time     // when an open breaker lets a probe through
	probing      bool          // a half-open probe is under way
	openedHard   bool          // it opened because calls could not connect

	// peer is the store's other breaker. Both reach Redis over the same
	// connections, so a call of one that succeeds shows that the other, if
	// it opened because calls could not connect, can close; one that
	// opened because calls were slow stays open until its own probe.
	peer *breaker
}

func newBreaker(name string, cfg BreakerConfig, now func() time.Time, log zerolog.Logger) *breaker {
	return &breaker{
		name:       name,
		threshold:  int32(cfg.Failures),
		span:       cfg.Span,
		minBackoff: cfg.Backoff,
		maxBackoff: cfg.MaxBackoff,
		now:        now,
		log:        log,
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

// record feeds a finished call's outcome, and its error, to the breaker.
func (b *breaker) record(probe bool, o outcome, err error) {
	if o == outcomeSuccess && (probe || b.state.Load() == breakerClosed) {
		// Redis answered just now. Runs after the unlock below.
		defer b.peerReachable()
	}
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
		if !probe && b.state.Load() != breakerClosed {
			// A call that started before the breaker opened, on a
			// connection that still worked then: only a probe tells
			// whether Redis answers now.
			return
		}
		if b.state.Swap(breakerClosed) != breakerClosed {
			b.log.Info().Str("breaker", b.name).Msg("redis circuit breaker closed: redis answers again")
		}
		b.failing.Store(0)
		b.hardFailures = 0
		b.backoff = b.minBackoff
	case outcomeFailure, outcomeSlow:
		switch {
		case probe:
			if o == outcomeFailure {
				b.backoff = min(2*b.backoff, b.maxBackoff)
			}
			b.openLocked(err, o == outcomeFailure)
		case b.state.Load() == breakerClosed:
			now := b.now()
			b.lastFailure.Store(now.UnixNano())
			if b.failing.Add(1) == 1 {
				b.failingSince = now
			}
			if o == outcomeFailure {
				b.hardFailures++
			}
			if b.failing.Load() >= b.threshold && (b.hardFailures >= b.threshold || now.Sub(b.failingSince) >= b.span) {
				b.backoff = b.minBackoff
				b.openLocked(err, b.hardFailures >= b.threshold)
			}
		}
		// A failure of a call that started before the breaker opened
		// changes nothing.
	}
}

// openLocked opens the breaker; err is the failure that made it open, and
// hard says whether it opened for want of a connection.
func (b *breaker) openLocked(err error, hard bool) {
	b.openedHard = hard
	if b.state.Swap(breakerOpen) == breakerClosed {
		b.opens.Add(1)
		b.log.Warn().Str("breaker", b.name).Err(err).Int32("failures", b.failing.Load()).
			Int32("connection_failures", b.hardFailures).Dur("failing_for", b.now().Sub(b.failingSince)).
			Msg("redis circuit breaker opened: calls fail fast until a probe succeeds")
	}
	b.failing.Store(0)
	b.hardFailures = 0
	// ±10% jitter, so nodes that lost Redis together do not all probe at
	// the same instant.
	spread := int64(b.backoff / 5)
	d := b.backoff
	if spread > 0 {
		d += time.Duration(rand.Int64N(spread+1) - spread/2)
	}
	b.retryAt = b.now().Add(d)
}

// peerReachable tells the peer that Redis answered.
func (b *breaker) peerReachable() {
	if p := b.peer; p != nil && p.state.Load() != breakerClosed {
		p.reachable()
	}
}

// reachable closes a breaker that opened because calls could not connect:
// another call has just reached Redis.
func (b *breaker) reachable() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() == breakerClosed || !b.openedHard {
		return
	}
	b.state.Store(breakerClosed)
	b.failing.Store(0)
	b.hardFailures = 0
	b.backoff = b.minBackoff
	b.log.Info().Str("breaker", b.name).Msg("redis circuit breaker closed: redis answers again")
}

// stateName is the breaker's view: down while open or probing, degraded
// while closed but failing. A failure older than span with no call since
// is old news: a breaker that sees few calls (writes) would otherwise stay
// degraded until the next one.
func (b *breaker) stateName() string {
	switch {
	case b.state.Load() != breakerClosed:
		return StateDown
	case b.failing.Load() > 0 && b.now().Sub(time.Unix(0, b.lastFailure.Load())) < b.span:
		return StateDegraded
	}
	return StateUp
}
