package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// spin keeps Redis busy running a script for d, so every other command
// waits: a healthy Redis that answers late. It returns when the script
// ends.
func spin(srv *redistest.Server, d time.Duration) {
	_, _ = srv.Do("EVAL", fmt.Sprintf("local t = redis.call('TIME'); while true do local n = redis.call('TIME'); if (n[1] - t[1]) * 1000000 + n[2] - t[2] >= %d then break end end", d.Microseconds()), "0")
}

// keepBusy spins Redis in short scripts, one after another, until the
// returned stop is called; stop returns once the last script has ended.
func keepBusy(srv *redistest.Server) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
				spin(srv, 200*time.Millisecond)
			}
		}
	}()
	return func() { close(quit); <-done }
}

// TestTimeoutBurstDoesNotOpenBreaker: a burst of lookup timeouts from a
// Redis that is slow for a moment (or a machine that stalls) degrades those
// lookups only; counted alone they opened the breaker, and writes got 503.
func TestTimeoutBurstDoesNotOpenBreaker(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.LookupTimeout = 20 * time.Millisecond
	cfg.Breaker.Span = time.Minute // the burst is far shorter, however busy the machine
	s := openStore(t, cfg)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	stop := keepBusy(srv)
	timeouts := 0
	eventually(t, 20*time.Second, "ten lookups timing out", func() bool {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 10 {
			wg.Go(func() {
				if _, err := s.Lookup(ctx, "burst-1"); err != nil {
					mu.Lock()
					timeouts++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return timeouts >= 10
	})
	if st := s.State(); st == StateDown {
		t.Errorf("State = %s after a burst of %d timeouts; want degraded at worst", st, timeouts)
	}
	stop()
	if err := s.PutFeatures(ctx, "burst-1", map[string]features.Value{"x": features.Number(1)}); err != nil {
		t.Errorf("PutFeatures after the burst: %v", err)
	}
	if rec, err := s.Lookup(ctx, "burst-1"); err != nil || !rec.Known() {
		t.Errorf("Lookup after the burst = %+v, %v", rec, err)
	}
	if st := s.Stats(); st.BreakerOpens != 0 || st.Rejected != 0 {
		t.Errorf("Stats = %+v; want the breaker never opened", st)
	}
}

// TestOpenReadBreakerLetsWritesThrough: lookups timing out for long enough
// open the read breaker, but writes, with their own time and breaker, still
// go through.
func TestOpenReadBreakerLetsWritesThrough(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.LookupTimeout = 20 * time.Millisecond
	cfg.Breaker = BreakerConfig{Failures: 3, Span: 50 * time.Millisecond, Backoff: time.Minute, MaxBackoff: time.Minute}
	var logs syncBuilder
	s := openStore(t, cfg, WithLogger(zerolog.New(&logs)))
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	stop := keepBusy(srv)
	eventually(t, 20*time.Second, "the read breaker open", func() bool {
		_, err := s.Lookup(ctx, "rw-1")
		return errors.Is(err, ErrUnavailable)
	})
	if s.State() != StateDown {
		t.Errorf("State = %s with the read breaker open; want down", s.State())
	}
	// The write waits for the scripts like any command, then succeeds.
	write := make(chan error, 1)
	go func() { write <- s.PutFeatures(ctx, "rw-1", map[string]features.Value{"x": features.Number(1)}) }()
	stop()
	if err := <-write; err != nil {
		t.Errorf("PutFeatures with the read breaker open: %v", err)
	}
	if _, err := s.Lookup(ctx, "rw-1"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Lookup = %v; want the read breaker still open (its backoff is a minute)", err)
	}
	if !strings.Contains(logs.String(), `"breaker":"read"`) || strings.Contains(logs.String(), `"breaker":"write"`) {
		t.Errorf("logs:\n%s\nwant the read breaker opening, and nothing of the write breaker", logs.String())
	}
}

// TestWriteErrorsSayWhetherApplied: a write that timed out on a paused
// Redis may have been applied (it was, once Redis resumes), so its error
// is not features.ErrNotApplied; one the breaker refused, or that could not
// connect, is.
func TestWriteErrorsSayWhetherApplied(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.WriteTimeout = 300 * time.Millisecond
	cfg.Breaker.Failures = 1000 // keep the breaker out of the first part
	s := openStore(t, cfg)
	raw := rawClient(t, srv.URL())
	ctx := context.Background()
	batch := []features.Event{event("paused-1", "p-1", features.EventClick, "t", time.Now())}
	// Load the script first: sent during the pause, EVALSHA of an unknown
	// script would be refused once Redis resumes, and then nothing would
	// be applied.
	if _, err := s.ApplyEvents(ctx, []features.Event{event("paused-1", "p-0", features.EventClick, "t", time.Now())}); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	_, err := s.ApplyEvents(ctx, batch)
	srv.Resume()
	if err == nil || errors.Is(err, features.ErrNotApplied) {
		t.Fatalf("ApplyEvents on a paused Redis = %v; want a timeout that is not ErrNotApplied", err)
	}
	eventually(t, 10*time.Second, "the event id in Redis", func() bool {
		n, err := raw.Exists(ctx, keysFor("paused-1").event("p-1")).Result()
		return err == nil && n == 1
	})
	if n, err := s.ApplyEvents(ctx, batch); n != 0 || err != nil {
		t.Errorf("retried batch = %d, %v; want 0 new: it was applied", n, err)
	}

	// Redis gone, breaker closed: the write cannot connect, however long
	// it tries (long enough that its last try ends well within its time).
	srv.Kill()
	cfg.WriteTimeout = 2 * time.Second
	s1 := openStore(t, cfg)
	err = s1.PutFeatures(ctx, "gone-1", map[string]features.Value{"x": features.Number(1)})
	if !errors.Is(err, features.ErrNotApplied) || errors.Is(err, ErrUnavailable) {
		t.Errorf("PutFeatures without Redis = %v; want ErrNotApplied for a failed connection", err)
	}

	// Breaker open: refused at once.
	cfg.Breaker.Failures = 1
	s2 := openStore(t, cfg)
	_ = s2.PutFeatures(ctx, "gone-1", map[string]features.Value{"x": features.Number(1)})
	for _, write := range map[string]func() error{
		"PutFeatures": func() error { return s2.PutFeatures(ctx, "gone-1", map[string]features.Value{"x": features.Number(1)}) },
		"ApplyEvents": func() error { _, err := s2.ApplyEvents(ctx, batch); return err },
		"Consume":     func() error { _, err := s2.Consume(ctx, "tp", 1, 10, 0); return err },
	} {
		if err := write(); !errors.Is(err, features.ErrNotApplied) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("a write with the breaker open = %v; want ErrUnavailable and ErrNotApplied", err)
		}
	}
}

// TestWritesAfterRedisReturns: once the client's pool has failed to dial as
// many times as it has connections, it answers new connections with its
// last dial error until a background dial succeeds, up to a second after
// Redis is back. The store must not say up meanwhile, and a write must not
// fail for it.
func TestWritesAfterRedisReturns(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.PoolSize = 2
	cfg.MinIdleConns = 0
	cfg.Breaker.Failures = 1000 // the pool, not the breaker, is under test
	s := openStore(t, cfg)
	ctx := context.Background()
	if err := s.PutFeatures(ctx, "back-1", map[string]features.Value{"x": features.Number(1)}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	for range 3 {
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_ = s.PutFeatures(wctx, "back-1", map[string]features.Value{"x": features.Number(2)})
		cancel()
	}
	if st := s.Stats(); st.DialFailures < 2 {
		t.Fatalf("Stats = %+v; want the pool's dials to have failed", st)
	}
	srv.Restart()
	if err := s.PutFeatures(ctx, "back-1", map[string]features.Value{"x": features.Number(3)}); err != nil {
		t.Fatalf("PutFeatures once Redis is back: %v", err)
	}
	eventually(t, 10*time.Second, "State up", func() bool { return s.State() == StateUp })
}

// syncBuilder is a strings.Builder safe for concurrent writes, for logs.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuilder) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuilder) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSubscribePanics: a panicking invalidation callback must not end the
// subscription (or the process): the one invalidation becomes "drop
// everything" and the next ones arrive as usual. A panic in the receiving
// code ends one listen, not Subscribe.
func TestSubscribePanics(t *testing.T) {
	srv := redistest.Start(t)
	var logs syncBuilder
	s := openStore(t, testConfig(srv.URL()), WithLogger(zerolog.New(&logs)))
	ctx := context.Background()
	in := &inbox{ch: make(chan struct{}, 1)}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(sctx, func(id string) {
			if id == "boom" {
				panic("callback bug")
			}
			in.mu.Lock()
			in.ids = append(in.ids, id)
			in.mu.Unlock()
			select {
			case in.ch <- struct{}{}:
			default:
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Subscribe: %v", err)
		}
	}()
	put := func(id string) func() {
		return func() { _ = s.PutFeatures(ctx, id, map[string]features.Value{"x": features.Number(1)}) }
	}
	in.waitFor(t, "before", 20*time.Second, put("before"))
	put("boom")()
	in.waitFor(t, "", 10*time.Second, nil) // the lost invalidation drops everything
	in.waitFor(t, "after", 10*time.Second, put("after"))
	if st := s.Stats(); st.Panics != 1 {
		t.Errorf("Stats = %+v; want one panic", st)
	}
	if !strings.Contains(logs.String(), "invalidation callback panicked") || !strings.Contains(logs.String(), "callback bug") {
		t.Errorf("logs:\n%s\nwant the panic logged", logs.String())
	}

	// The receiving side: listen on a nil subscription panics inside the
	// client; listenSafely turns that into an error.
	sub := subscription{store: s, onInvalidate: func(string) {}, backoff: resubscribeBackoff}
	if err := sub.listenSafely(ctx, nil); !errors.Is(err, errPanicked) {
		t.Errorf("listenSafely of a panicking receive = %v; want errPanicked", err)
	}
}

// TestSubscriptionStateLogs: a lost subscription and its return are logged
// once each, however many reconnects fail in between.
func TestSubscriptionStateLogs(t *testing.T) {
	srv := redistest.Start(t)
	var logs syncBuilder
	s := openStore(t, testConfig(srv.URL()), WithLogger(zerolog.New(&logs)))
	ctx := context.Background()
	in := subscribe(t, s)
	in.waitFor(t, "log-1", 20*time.Second, func() {
		_ = s.PutFeatures(ctx, "log-1", map[string]features.Value{"x": features.Number(1)})
	})
	srv.Kill()
	eventually(t, 20*time.Second, "the subscription lost", func() bool { return s.State() != StateUp })
	// Let several reconnects fail: the resubscribe backoff starts at 50ms.
	eventually(t, 20*time.Second, "dials failing", func() bool { return s.Stats().DialFailures >= 5 })
	srv.Restart()
	in.waitFor(t, "", 20*time.Second, nil)
	eventually(t, 20*time.Second, "State up", func() bool { return s.State() == StateUp })
	// The subscription's changes happen on one goroutine: exactly once
	// each. Dials run on many, and one refused just before Redis returned
	// may be told after one that worked: once or twice each, not per dial.
	for msg, want := range map[string][2]int{
		"invalidation subscription lost":      {1, 1},
		"invalidation subscription restored":  {1, 1},
		"cannot open new connections":         {1, 2},
		"new connections to redis work again": {1, 2},
	} {
		if got := strings.Count(logs.String(), msg); got < want[0] || got > want[1] {
			t.Errorf("%q logged %d times, want %d to %d; logs:\n%s", msg, got, want[0], want[1], logs.String())
		}
	}
}

// TestStateFollowsDials: while the last dial failed, new connections cannot
// be made, whatever the calls on open connections say, and the store is
// not up. A dial error older than a dial that succeeded since is a pool
// answering from memory: it says nothing about Redis, but the store is not
// up for a while either.
func TestStateFollowsDials(t *testing.T) {
	cfg := testConfig("redis://127.0.0.1:1/0")
	cfg.MinIdleConns = 0 // no dials of the store's own
	s := openStore(t, cfg)
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	if st := s.State(); st != StateUp {
		t.Fatalf("State of a new store = %s", st)
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	old := &dialError{err: refused, seq: s.dial.seq.Add(1)}
	s.dial.record("127.0.0.1:1", old.seq, refused)
	if st := s.State(); st != StateDegraded {
		t.Errorf("State after a failed dial = %s, want degraded", st)
	}
	if s.dial.stale(old, now) {
		t.Error("the latest dial error is stale")
	}
	s.dial.record("127.0.0.1:1", s.dial.seq.Add(1), nil)
	if st := s.State(); st != StateUp {
		t.Errorf("State after a dial that worked = %s, want up", st)
	}
	// A pool still answers with the old error: no failure for the breaker,
	// but not up until the pools have had time to redial.
	s.settle(context.Background(), s.writes, false, fmt.Errorf("cannot put: %w", old))
	if st := s.State(); st != StateDegraded || s.writes.failing.Load() != 0 {
		t.Errorf("after a stale dial error: State %s, %d failures counted; want degraded and none", st, s.writes.failing.Load())
	}
	now = now.Add(staleFor)
	if st := s.State(); st != StateUp {
		t.Errorf("State %v after the stale error = %s, want up", staleFor, st)
	}
	if st := s.Stats(); st.DialFailures != 1 {
		t.Errorf("Stats = %+v; want one dial failure", st)
	}
}
