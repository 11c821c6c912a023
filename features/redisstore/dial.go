package redisstore

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// dialState follows whether new connections to Redis can be made. go-redis's
// pool, after as many failed dials as it has connections, stops dialing and
// answers every request for a new connection with its last dial error until
// a background dial, once a second, succeeds. Connections already open may
// work meanwhile, so successful calls alone do not show that the store can
// serve; the last real dial does.
type dialState struct {
	log      zerolog.Logger
	failing  atomic.Bool   // the last dial failed
	failures atomic.Uint64 // dials that failed

	mu sync.Mutex // orders the log lines of changes
}

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
		conn, err := dial(ctx, network, addr)
		if err != nil && ctx.Err() != nil {
			// The dial was called off; it says nothing about Redis.
			return nil, err
		}
		d.record(addr, err)
		return conn, err
	}
}

// record notes a dial's outcome and logs a change.
func (d *dialState) record(addr string, err error) {
	if err != nil {
		d.failures.Add(1)
	}
	failing := err != nil
	if d.failing.Load() == failing {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failing.Swap(failing) == failing {
		return
	}
	if failing {
		d.log.Warn().Str("addr", addr).Err(err).Msg("cannot open new connections to redis")
	} else {
		d.log.Info().Str("addr", addr).Msg("new connections to redis work again")
	}
}
