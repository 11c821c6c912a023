package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"time"

	"github.com/redis/go-redis/v9"
)

// Subscription timing. A quiet subscription is pinged after healthInterval;
// no answer within another healthInterval means the connection is dead even
// if the operating system has not noticed, and it is replaced.
const (
	healthInterval      = 5 * time.Second
	resubscribeBackoff  = 50 * time.Millisecond
	maxResubscribeDelay = 2 * time.Second
)

// errStalled ends a subscription whose connection stopped answering.
var errStalled = errors.New("invalidation subscription stopped answering")

// errPanicked ends a subscription whose receiving code panicked.
var errPanicked = errors.New("invalidation subscription panicked")

// Subscribe calls onInvalidate with the id of every customer any node
// changes, and with "" (drop everything) when the subscription was lost and
// re-established, since messages may have been missed meanwhile. It runs
// until ctx is cancelled, reconnecting after errors with a backoff, and
// returns nil then; it returns an error only when the store is closed. The
// caller owns the goroutine it runs on; onInvalidate is called on it, one
// call at a time, and should be quick (features.Cache.Invalidate is). A
// panic in onInvalidate, or in the client while receiving, is logged and
// recovered: the subscription drops everything, as after any loss, and goes
// on, since a node without invalidations would serve stale records.
func (s *Store) Subscribe(ctx context.Context, onInvalidate func(customerID string)) error {
	if onInvalidate == nil {
		return errors.New("cannot subscribe to invalidations: onInvalidate is nil")
	}
	sub := subscription{store: s, onInvalidate: onInvalidate, backoff: resubscribeBackoff}
	defer sub.release()
	for {
		ps := s.client.Subscribe(ctx, s.cfg.InvalidationChannel)
		// Receive does not watch ctx while it waits for a message; closing
		// the subscription wakes it.
		stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
		err := sub.listenSafely(ctx, ps)
		stop()
		_ = ps.Close()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, redis.ErrClosed) {
			return fmt.Errorf("cannot receive invalidations: %w", err)
		}
		// errStalled: start over on a new connection at once.
		sub.setDown(sub.subscribed)
		if errors.Is(err, errPanicked) {
			// Whatever panicked may panic again at once: do not spin.
			if !sleep(ctx, sub.backoff) {
				return nil
			}
			sub.backoff = min(2*sub.backoff, maxResubscribeDelay)
		}
	}
}

// listenSafely is listen with a panic turned into errPanicked.
func (sub *subscription) listenSafely(ctx context.Context, ps *redis.PubSub) (err error) {
	defer func() {
		if r := recover(); r != nil {
			sub.store.invalidationPanics.Add(1)
			sub.store.panicLog.Error().Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).
				Msg("invalidation subscription panicked; subscribing again")
			err = errPanicked
		}
	}()
	return sub.listen(ctx, ps)
}

// deliver calls onInvalidate, recovering a panic in it: the one
// invalidation is lost, so everything is dropped instead.
func (sub *subscription) deliver(id string) {
	defer func() {
		if r := recover(); r != nil {
			sub.store.invalidationPanics.Add(1)
			sub.store.panicLog.Error().Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).
				Msg("invalidation callback panicked; dropping every cached record instead")
			if id != "" {
				sub.deliver("")
			}
		}
	}()
	sub.onInvalidate(id)
}

// subscription is the state of one Subscribe call.
type subscription struct {
	store        *Store
	onInvalidate func(string)
	subscribed   bool // a subscription was confirmed at least once
	down         bool // counted in store.subscriptionsDown
	backoff      time.Duration
}

// listen receives on ps until ctx ends, the client is closed or the
// connection stalls. go-redis reconnects and resubscribes a PubSub on the
// next receive after an error; each confirmation after the first one is a
// resubscribe.
func (sub *subscription) listen(ctx context.Context, ps *redis.PubSub) error {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthInterval)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return err
			}
			var nerr net.Error
			if errors.As(err, &nerr) && nerr.Timeout() {
				if pinged {
					return errStalled
				}
				// A failed ping drops the connection; the next receive
				// reconnects.
				_ = ps.Ping(ctx)
				pinged = true
				continue
			}
			// Connection lost, or Redis not reachable yet.
			sub.setDown(sub.subscribed)
			if !sleep(ctx, sub.backoff) {
				return ctx.Err()
			}
			sub.backoff = min(2*sub.backoff, maxResubscribeDelay)
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			sub.store.invalidations.Add(1)
			sub.deliver(m.Payload)
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if sub.subscribed {
				sub.store.resubscribes.Add(1)
				sub.deliver("")
			}
			sub.subscribed = true
			sub.backoff = resubscribeBackoff
			sub.setDown(false)
		}
	}
}

// setDown records whether this subscription is currently lost, and logs a
// change.
func (sub *subscription) setDown(down bool) {
	if down == sub.down {
		return
	}
	sub.down = down
	// Log first, then change what State reports: whoever sees the new
	// state can also see why in the log.
	if down {
		sub.store.log.Warn().Str("channel", sub.store.cfg.InvalidationChannel).
			Msg("invalidation subscription lost; this node may serve stale records until it is back")
		sub.store.subscriptionsDown.Add(1)
	} else {
		sub.store.log.Info().Str("channel", sub.store.cfg.InvalidationChannel).
			Msg("invalidation subscription restored; cached records dropped")
		sub.store.subscriptionsDown.Add(-1)
	}
}

// release stops counting this subscription as lost, when it ends.
func (sub *subscription) release() {
	if sub.down {
		sub.down = false
		sub.store.subscriptionsDown.Add(-1)
	}
}

// sleep waits for d or until ctx ends, and reports whether it waited in full.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
