package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/valyala/fastjson"
)

// ErrUnavailable is returned, wrapped, by every call made while the circuit
// breaker is open: Redis failed repeatedly and is not being asked until a
// probe succeeds.
var ErrUnavailable = errors.New("redis is unavailable (circuit breaker open)")

// Store is the Redis-backed customer store. It is safe for concurrent use.
type Store struct {
	cfg     Config
	client  redis.UniversalClient
	scripts scripts
	breaker *breaker
	now     func() time.Time
	parsers fastjson.ParserPool

	calls, failures, rejected atomic.Uint64
	badValues                 atomic.Uint64
	invalidations             atomic.Uint64
	resubscribes              atomic.Uint64
	// subscriptionsDown counts Subscribe calls currently without a live
	// subscription after having had one; while any is, this node may miss
	// invalidations and reports itself degraded.
	subscriptionsDown atomic.Int32

	// importFailed, when set by a test, is called as Import learns that a
	// batch failed.
	importFailed func(seq int)
}

var (
	_ features.Store   = (*Store)(nil)
	_ features.Writer  = (*Store)(nil)
	_ features.Budgets = (*Store)(nil)
)

// Open creates a Store for cfg. It does not contact Redis, so a node can
// start while Redis is away and serve degraded until it comes back; call
// Ping to check the connection.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot open the Redis store: %w", err)
	}
	t, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("cannot open the Redis store: redis.url: %w", err)
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         t.addrs,
		IsClusterMode: t.cluster,
		DB:            t.db,
		Username:      t.username,
		Password:      t.password,
		TLSConfig:     t.tls,
		ClientName:    "touchpoint",
		// No client-side retries: budgets and decision counts are not
		// idempotent, and a lookup has no time for a second attempt. The
		// breaker decides when to try again.
		MaxRetries:    -1,
		DialTimeout:   cfg.DialTimeout,
		DialerRetries: 1,
		ReadTimeout:   cfg.WriteTimeout,
		WriteTimeout:  cfg.WriteTimeout,
		// Deadlines come from each call's context.
		ContextTimeoutEnabled: true,
		PoolSize:              cfg.PoolSize,
		MinIdleConns:          cfg.MinIdleConns,
		PoolTimeout:           cfg.WriteTimeout,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	return &Store{
		cfg:     cfg,
		client:  client,
		scripts: newScripts(),
		breaker: newBreaker(cfg.Breaker, time.Now),
		now:     time.Now,
	}, nil
}

// Close closes every connection. Subscribe calls still running return.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("cannot close the Redis store: %w", err)
	}
	return nil
}

// Ping checks that Redis answers, within WriteTimeout.
func (s *Store) Ping(ctx context.Context) error {
	err := s.do(ctx, s.cfg.WriteTimeout, func(ctx context.Context) error {
		return s.client.Ping(ctx).Err()
	})
	if err != nil {
		return fmt.Errorf("cannot reach Redis: %w", err)
	}
	return nil
}

// Lookup reads the customer's features, counters and consent in one round
// trip within LookupTimeout. It answers (nil, nil) for a customer with none
// of them, and fails at once with ErrUnavailable while the breaker is open.
func (s *Store) Lookup(ctx context.Context, customerID string) (*features.Record, error) {
	if customerID == "" {
		return nil, nil
	}
	k := keysFor(customerID)
	var f, n, c *redis.MapStringStringCmd
	err := s.do(ctx, s.cfg.LookupTimeout, func(ctx context.Context) error {
		pipe := s.client.Pipeline()
		f = pipe.HGetAll(ctx, k.features())
		n = pipe.HGetAll(ctx, k.counters())
		c = pipe.HGetAll(ctx, k.consent())
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot look up customer %q: %w", customerID, err)
	}
	rec, bad := decodeRecord(&s.parsers, customerID, f.Val(), n.Val(), c.Val(), s.cutoff())
	if bad > 0 {
		s.badValues.Add(uint64(bad))
	}
	return rec, nil
}

// cutoff is the oldest counter day kept.
func (s *Store) cutoff() int32 {
	return features.Day(s.now()) - int32(s.cfg.CounterDays)
}

// Store states, as State reports them.
const (
	StateUp       = "up"
	StateDegraded = "degraded"
	StateDown     = "down"
)

// State is "up" when Redis answers, "degraded" when calls are failing but
// the breaker is still closed or an invalidation subscription is being
// re-established, and "down" while the breaker is open and calls fail fast.
func (s *Store) State() string {
	st := s.breaker.stateName()
	if st == StateUp && s.subscriptionsDown.Load() > 0 {
		return StateDegraded
	}
	return st
}

// Stats counts the store's work since Open.
type Stats struct {
	Calls         uint64 // calls sent to Redis (a pipeline counts once)
	Failures      uint64 // calls that failed for lack of Redis: errors, timeouts, overload replies
	Rejected      uint64 // calls refused at once because the breaker was open
	BreakerOpens  uint64 // times the breaker opened
	BadValues     uint64 // stored entries Lookup could not decode and skipped
	Invalidations uint64 // invalidation messages received by Subscribe
	Resubscribes  uint64 // subscriptions re-established after a loss
}

// Stats returns the counters. They are read one at a time, so under load the
// snapshot is approximate.
func (s *Store) Stats() Stats {
	return Stats{
		Calls:         s.calls.Load(),
		Failures:      s.failures.Load(),
		Rejected:      s.rejected.Load(),
		BreakerOpens:  s.breaker.opens.Load(),
		BadValues:     s.badValues.Load(),
		Invalidations: s.invalidations.Load(),
		Resubscribes:  s.resubscribes.Load(),
	}
}

// do runs op against Redis through the breaker, with timeout on top of
// ctx's own deadline.
func (s *Store) do(ctx context.Context, timeout time.Duration, op func(ctx context.Context) error) error {
	ok, probe := s.breaker.allow()
	if !ok {
		s.rejected.Add(1)
		return ErrUnavailable
	}
	s.calls.Add(1)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := op(cctx)
	cancel()
	o := classify(ctx, err)
	if o == outcomeFailure {
		s.failures.Add(1)
	}
	s.breaker.record(probe, o)
	return err
}

// classify says what a call's error tells about Redis's health. ctx is the
// caller's context, without the store's own timeout.
func classify(ctx context.Context, err error) outcome {
	if err == nil || errors.Is(err, redis.Nil) {
		return outcomeSuccess
	}
	if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
		// The caller gave up or the store is closing: no news about Redis.
		return outcomeNeutral
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		if isOverloadReply(rerr.Error()) {
			return outcomeFailure
		}
		// Any other reply (a script error, a wrong type) came from a
		// working server.
		return outcomeSuccess
	}
	// Network errors, timeouts, an exhausted pool.
	return outcomeFailure
}

// isOverloadReply reports whether an error reply comes from a Redis that
// cannot serve right now (starting, stuck in a script, cluster reshaping).
func isOverloadReply(msg string) bool {
	msg = strings.TrimPrefix(msg, "ERR ")
	for _, p := range [...]string{"LOADING", "BUSY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "max number of clients"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
