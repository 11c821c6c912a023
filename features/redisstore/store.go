package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/rs/zerolog"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/valyala/fastjson"
)

// ErrUnavailable is returned, wrapped, by every call made while a circuit
// breaker is open: Redis failed repeatedly and is not being asked until a
// probe succeeds. Such a write is also features.ErrNotApplied.
var ErrUnavailable = errors.New("redis is unavailable (circuit breaker open)")

// Store is the Redis-backed customer store. It is safe for concurrent use.
type Store struct {
	cfg     Config
	client  redis.UniversalClient
	scripts scripts
	// reads guards Lookup, writes every other call: a run of lookup
	// timeouts (5 ms each) must not refuse writes that would succeed.
	reads, writes *breaker
	log           zerolog.Logger
	panicLog      zerolog.Logger // log, sampled: a panic may repeat per message
	now           func() time.Time
	parsers       fastjson.ParserPool
	layouts       *features.Layouts // shared by the records Lookup returns
	dial          dialState
	hooks         []redis.Hook // added to the client, in order

	calls, failures, rejected atomic.Uint64
	badValues                 atomic.Uint64
	invalidations             atomic.Uint64
	resubscribes              atomic.Uint64
	invalidationPanics        atomic.Uint64
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

// Option configures a Store beyond its Config.
type Option func(*Store)

// WithLogger sends the store's state changes to log: a breaker opening or
// closing, new connections failing or working again, an invalidation
// subscription lost or restored. Each is logged once per change. Without
// it they are not logged.
func WithLogger(log zerolog.Logger) Option {
	return func(s *Store) { s.log = log.With().Str("component", "redis").Logger() }
}

// WithHooks adds hooks to the Redis client, outermost first: tracing
// (tracing.Tracer.RedisHook) sees every command and pipeline the store
// sends, with the context of the call that sent it.
func WithHooks(hooks ...redis.Hook) Option {
	return func(s *Store) { s.hooks = append(s.hooks, hooks...) }
}

// Open creates a Store for cfg. It does not contact Redis, so a node can
// start while Redis is away and serve degraded until it comes back; call
// Ping to check the connection.
func Open(cfg Config, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot open the Redis store: %w", err)
	}
	t, err := cfg.target()
	if err != nil {
		return nil, fmt.Errorf("cannot open the Redis store: %w", err)
	}
	s := &Store{cfg: cfg, scripts: newScripts(), now: time.Now, log: zerolog.Nop(), layouts: features.NewLayouts()}
	for _, opt := range opts {
		opt(s)
	}
	s.panicLog = s.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute})
	s.reads = newBreaker("read", cfg.Breaker, s.now, s.log)
	s.writes = newBreaker("write", cfg.Breaker, s.now, s.log)
	s.reads.peer, s.writes.peer = s.writes, s.reads
	s.dial.log = s.log
	s.client = redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         t.addrs,
		IsClusterMode: t.cluster,
		DB:            t.db,
		Username:      t.username,
		Password:      t.password,
		TLSConfig:     t.tls,
		ClientName:    "touchpoint",
		// The store dials, so it knows whether new connections can be
		// made: the pool answers from its last dial error for a while
		// after many dials failed, even once Redis is back.
		Dialer: s.dial.dialer(cfg.DialTimeout, t.tls),
		// No client-side retries: budgets and decision counts are not
		// idempotent, and a lookup has no time for a second attempt. The
		// store retries a write only when it never reached Redis, and the
		// breakers decide when to try again.
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
	for _, h := range s.hooks {
		s.client.AddHook(h)
	}
	return s, nil
}

// Close closes every connection. Subscribe calls still running return.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("cannot close the Redis store: %w", err)
	}
	return nil
}

// ErrAuth is what Ping returns, wrapped, when Redis refuses the
// credentials: a mistake in the configuration rather than an outage, so a
// node should not start with it.
var ErrAuth = errors.New("the Redis server refused the credentials")

// isAuthError reports whether err is Redis refusing the credentials: a
// wrong password or user, a password it needs and was not given, or one
// given to a server that has none.
func isAuthError(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") ||
		(strings.HasPrefix(msg, "ERR") && strings.Contains(msg, "AUTH") && strings.Contains(msg, "password"))
}

// Ping checks that Redis answers, within WriteTimeout.
func (s *Store) Ping(ctx context.Context) error {
	err := s.do(ctx, s.writes, s.cfg.WriteTimeout, func(ctx context.Context) error {
		return s.client.Ping(ctx).Err()
	})
	if isAuthError(err) {
		return fmt.Errorf("%w (check redis.password or redis.password_file, and the URL's user): %w", ErrAuth, err)
	}
	if err != nil {
		return fmt.Errorf("cannot reach Redis: %w", err)
	}
	return nil
}

// Lookup reads the customer's features, counters and consent in one round
// trip within LookupTimeout. It answers (nil, nil) for a customer with none
// of them, and fails at once with ErrUnavailable while the read breaker is
// open. A record without features (Values == nil) is an unknown customer
// with counters or consent.
func (s *Store) Lookup(ctx context.Context, customerID string) (*features.Record, error) {
	if customerID == "" {
		return nil, nil
	}
	k := keysFor(customerID)
	var f, n, c *redis.MapStringStringCmd
	err := s.do(ctx, s.reads, s.cfg.LookupTimeout, func(ctx context.Context) error {
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
	rec, bad := decodeRecord(&s.parsers, s.layouts, customerID, f.Val(), n.Val(), c.Val(), s.cutoff())
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

// State is "up" when Redis answers, "down" while a circuit breaker is open
// and calls fail fast, and "degraded" in between: calls are failing but the
// breakers are still closed, new connections cannot be made, or an
// invalidation subscription is being re-established.
func (s *Store) State() string {
	r, w := s.reads.stateName(), s.writes.stateName()
	switch {
	case r == StateDown || w == StateDown:
		return StateDown
	case r == StateDegraded || w == StateDegraded || s.dial.degraded(s.now()) || s.subscriptionsDown.Load() > 0:
		return StateDegraded
	}
	return StateUp
}

// Stats counts the store's work since Open.
type Stats struct {
	Calls         uint64 // calls sent to Redis (a pipeline counts once)
	Failures      uint64 // calls that failed for lack of Redis: errors, timeouts, overload replies
	Rejected      uint64 // calls refused at once because a breaker was open
	BreakerOpens  uint64 // times a breaker opened (read and write together)
	DialFailures  uint64 // new connections that could not be made
	BadValues     uint64 // stored entries Lookup could not decode and skipped
	Invalidations uint64 // invalidation messages received by Subscribe
	Resubscribes  uint64 // subscriptions re-established after a loss
	Panics        uint64 // invalidation callbacks or receives that panicked and were recovered
}

// Stats returns the counters. They are read one at a time, so under load the
// snapshot is approximate.
func (s *Store) Stats() Stats {
	return Stats{
		Calls:         s.calls.Load(),
		Failures:      s.failures.Load(),
		Rejected:      s.rejected.Load(),
		BreakerOpens:  s.reads.opens.Load() + s.writes.opens.Load(),
		DialFailures:  s.dial.failures.Load(),
		BadValues:     s.badValues.Load(),
		Invalidations: s.invalidations.Load(),
		Resubscribes:  s.resubscribes.Load(),
		Panics:        s.invalidationPanics.Load(),
	}
}

// do runs op against Redis through breaker b, with timeout on top of
// ctx's own deadline. An error for a call the breaker refused, or that
// could not get a connection, is also features.ErrNotApplied: nothing
// reached Redis.
func (s *Store) do(ctx context.Context, b *breaker, timeout time.Duration, op func(ctx context.Context) error) error {
	ok, probe := b.allow()
	if !ok {
		s.rejected.Add(1)
		return notApplied{ErrUnavailable}
	}
	s.calls.Add(1)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := op(cctx)
	cancel()
	s.settle(ctx, b, probe, err)
	if err != nil && notSent(err) {
		return notApplied{err}
	}
	return err
}

// write is do for writes, which have time to wait: one that could not get
// a connection never reached Redis, so it is tried again, with a short
// backoff, until it gets one, its time is up or the write breaker opens.
// Each try counts with the breaker, so when Redis is down the breaker opens
// after a few tries and every write fails fast again; when a few dials
// merely failed, the write goes through on a later try.
func (s *Store) write(ctx context.Context, op func(ctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	var err error
	for wait := writeRetryBackoff; ; wait = min(2*wait, maxWriteRetryBackoff) {
		ok, probe := s.writes.allow()
		if !ok {
			s.rejected.Add(1)
			return notApplied{ErrUnavailable}
		}
		s.calls.Add(1)
		err = op(cctx)
		s.settle(ctx, s.writes, probe, err)
		if err == nil || !notSent(err) {
			return err
		}
		if dl, _ := cctx.Deadline(); time.Until(dl) < wait || !sleep(cctx, wait) {
			return notApplied{err}
		}
	}
}

// Backoff between tries of a write that could not get a connection.
const (
	writeRetryBackoff    = 10 * time.Millisecond
	maxWriteRetryBackoff = 200 * time.Millisecond
)

// settle counts a finished call and feeds its outcome to b.
func (s *Store) settle(ctx context.Context, b *breaker, probe bool, err error) {
	o := classify(ctx, err)
	if o == outcomeFailure && s.dial.stale(err, s.now()) {
		// A pool answered from an old dial error while dials work again:
		// no news about Redis.
		o = outcomeNeutral
	}
	if o == outcomeFailure || o == outcomeSlow {
		s.failures.Add(1)
	}
	b.record(probe, o, err)
}

// notApplied marks an error after which nothing reached Redis: it is both
// the error and features.ErrNotApplied, with the error's message.
type notApplied struct{ err error }

func (e notApplied) Error() string   { return e.err.Error() }
func (e notApplied) Unwrap() []error { return []error{e.err, features.ErrNotApplied} }

// notSent reports whether err means the command never left this process:
// no connection could be had (a dial failed, or the pool answered with its
// last dial error, or gave no connection in time) or the client is closed.
// A timeout or a broken connection after sending is not: Redis may have
// run the command. A pipeline's error counts only if every command in it
// failed so (see pipelineNotSent).
func notSent(err error) bool {
	if err == nil {
		return false
	}
	var sent sentError
	if errors.As(err, &sent) {
		return false
	}
	if errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) || errors.Is(err, redis.ErrClosed) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return outcomeFailure // even a dial that timed out: no connection
	}
	var nerr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.As(err, &nerr) && nerr.Timeout() {
		return outcomeSlow
	}
	// Refused or reset connections, an exhausted pool.
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
