package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// dialState follows whether new connections to Redis can be made. go-redis
// keeps several pools (commands, pipelines, pub/sub), and each, after as
// many failed dials as it has connections, stops dialing and answers every
// request for a new connection with its last dial error until a background
// dial, once a second, succeeds. So a call can fail with a dial error that
// is seconds old while Redis accepts connections again, and connections
// already open may work meanwhile: successful calls alone do not show that
// the store can serve, and a dial error alone does not show it cannot.
//
// The store dials itself and numbers its dials. A dial error older than a
// dial that has since succeeded is a pool answering from memory: no news
// about Redis, and the call, which sent nothing, can be tried again.
type dialState struct {
	log      zerolog.Logger
	seq      atomic.Uint64 // numbers dials
	lastOK   atomic.Uint64 // the number of the latest dial that succeeded
	failing  atomic.Bool   // the last dial failed
	failures atomic.Uint64 // dials that failed
	// staleAt is when a call last failed with a stale dial error, in Unix
	// nanoseconds: a pool could not make connections then.
	staleAt atomic.Int64

	mu sync.Mutex // orders the log lines of changes
}

// dialError is a failed dial, numbered.
type dialError struct {
	err error
	seq uint64
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// staleFor is how long after a call met a stale dial error the store still
// reports that new connections may fail: go-redis's pools redial once a
// second.
const staleFor = 2 * time.Second

// dialer returns the dial function for the client: a plain or TLS dial
// within timeout whose outcome is recorded.
func (d *dialState) dialer(timeout time.Duration, tlsConfig *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: timeout}
	dial := nd.DialContext
	if tlsConfig != nil {
		td := &tls.Dialer{NetDialer: nd, Config: tlsConfig}
		dial = td.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		seq := d.seq.Add(1)
		conn, err := dial(ctx, network, addr)
		if err != nil && ctx.Err() != nil {
			// The dial was called off; it says nothing about Redis.
			return nil, err
		}
		d.record(addr, seq, err)
		if err != nil {
			return nil, &dialError{err: err, seq: seq}
		}
		return conn, nil
	}
}

// record notes the outcome of dial number seq and logs a change.
func (d *dialState) record(addr string, seq uint64, err error) {
	if err != nil {
		d.failures.Add(1)
	} else {
		for cur := d.lastOK.Load(); seq > cur && !d.lastOK.CompareAndSwap(cur, seq); cur = d.lastOK.Load() {
		}
	}
	failing := err != nil
	if d.failing.Load() == failing {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failing.Load() == failing {
		return
	}
	// Log first, then change what State reads (under mu, so one change is
	// logged once): whoever sees the new state can also see why.
	if failing {
		d.log.Warn().Str("addr", addr).Err(err).Msg("cannot open new connections to redis")
	} else {
		d.log.Info().Str("addr", addr).Msg("new connections to redis work again")
	}
	d.failing.Store(failing)
}

// stale reports whether err is a dial error older than a dial that has
// since succeeded, and remembers when a call met one.
func (d *dialState) stale(err error, now time.Time) bool {
	var de *dialError
	if !errors.As(err, &de) || de.seq >= d.lastOK.Load() {
		return false
	}
	d.staleAt.Store(now.UnixNano())
	return true
}

// degraded reports whether new connections may fail: the last dial failed,
// or a call met a pool answering from an old dial error lately.
func (d *dialState) degraded(now time.Time) bool {
	return d.failing.Load() || now.Sub(time.Unix(0, d.staleAt.Load())) < staleFor
}
