package features

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/touchpoint-dev/touchpoint/features/demodata"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

// fakeStore is a Store that counts backend calls. When gate is non-nil each
// Lookup blocks until gate is closed or, if honorCtx is set, until its context
// ends.
type fakeStore struct {
	records  map[string]*Record
	err      error
	gate     chan struct{}
	honorCtx bool
	calls    atomic.Int64
}

func (f *fakeStore) Lookup(ctx context.Context, id string) (*Record, error) {
	f.calls.Add(1)
	if f.gate != nil {
		if f.honorCtx {
			select {
			case <-f.gate:
			case <-ctx.Done():
				return nil, fmt.Errorf("fake lookup: %w", ctx.Err())
			}
		} else {
			<-f.gate
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.records[id], nil
}

func (f *fakeStore) Ping(context.Context) error { return f.err }

func newFake() *fakeStore {
	return &fakeStore{records: map[string]*Record{
		"c-1": {ID: "c-1", Values: NewValues(map[string]Value{"ltv": Number(1200.5), "tags": List("a", "b")})},
		"c-2": {ID: "c-2", Values: NewValues(map[string]Value{"stage": String("loyalty")})},
	}}
}

func newTestCache(t testing.TB, backend Store, cfg CacheConfig) *Cache {
	t.Helper()
	c, err := NewCache(backend, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func lookup(t testing.TB, c *Cache, id string) *Record {
	t.Helper()
	rec, err := c.Lookup(context.Background(), id)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", id, err)
	}
	return rec
}

func TestCacheConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*CacheConfig)
		want   string
	}{
		{"default", func(*CacheConfig) {}, ""},
		{"no negative caching", func(c *CacheConfig) { c.NegativeTTL = 0 }, ""},
		{"zero max_bytes", func(c *CacheConfig) { c.MaxBytes = 0 }, "cache.max_bytes must be positive, got 0"},
		{"negative max_bytes", func(c *CacheConfig) { c.MaxBytes = -1 }, "cache.max_bytes must be positive, got -1"},
		{"zero ttl", func(c *CacheConfig) { c.TTL = 0 }, "cache.ttl must be positive, got 0s"},
		{"negative negative_ttl", func(c *CacheConfig) { c.NegativeTTL = -time.Second }, "cache.negative_ttl must not be negative, got -1s"},
		{"all at once", func(c *CacheConfig) { *c = CacheConfig{TTL: -time.Minute, NegativeTTL: -time.Second} },
			"cache.max_bytes must be positive, got 0\ncache.ttl must be positive, got -1m0s\ncache.negative_ttl must not be negative, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultCacheConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			assertMessage(t, err, tt.want)
		})
	}
}

func TestDefaultCacheConfig(t *testing.T) {
	want := CacheConfig{MaxBytes: 64 << 20, TTL: 5 * time.Minute, NegativeTTL: 30 * time.Second}
	if got := DefaultCacheConfig(); got != want {
		t.Errorf("DefaultCacheConfig = %+v, want %+v", got, want)
	}
}

func TestNewCacheErrors(t *testing.T) {
	if _, err := NewCache(nil, DefaultCacheConfig()); err == nil {
		t.Error("NewCache(nil backend) succeeded")
	}
	_, err := NewCache(newFake(), CacheConfig{TTL: time.Minute})
	assertMessage(t, err, "cannot create feature cache: cache.max_bytes must be positive, got 0")
}

func TestCacheHitAndMiss(t *testing.T) {
	fake := newFake()
	c := newTestCache(t, fake, DefaultCacheConfig())

	first := lookup(t, c, "c-1")
	if first != fake.records["c-1"] {
		t.Fatalf("miss returned %+v, want the backend's record", first)
	}
	c.Wait()
	for range 3 {
		if got := lookup(t, c, "c-1"); got != first {
			t.Fatalf("hit returned %+v, want the cached record", got)
		}
	}
	lookup(t, c, "c-2")

	if got := fake.calls.Load(); got != 2 {
		t.Errorf("backend calls = %d, want 2", got)
	}
	if got, want := c.Stats(), (CacheStats{Hits: 3, Misses: 2}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestCacheNegative(t *testing.T) {
	fake := newFake()
	c := newTestCache(t, fake, DefaultCacheConfig())
	for range 3 {
		if rec := lookup(t, c, "c-404"); rec != nil {
			t.Fatalf("unknown customer returned %+v", rec)
		}
		c.Wait()
	}
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("backend calls = %d, want 1", got)
	}
	if got, want := c.Stats(), (CacheStats{Hits: 2, NegativeHits: 2, Misses: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestCacheNegativeCachingOff(t *testing.T) {
	fake := newFake()
	cfg := DefaultCacheConfig()
	cfg.NegativeTTL = 0
	c := newTestCache(t, fake, cfg)
	for range 3 {
		if rec := lookup(t, c, "c-404"); rec != nil {
			t.Fatalf("unknown customer returned %+v", rec)
		}
		c.Wait()
	}
	if got := fake.calls.Load(); got != 3 {
		t.Errorf("backend calls = %d, want 3", got)
	}
}

func TestCacheBackendErrorNotCached(t *testing.T) {
	fake := newFake()
	fake.err = errors.New("backend down")
	c := newTestCache(t, fake, DefaultCacheConfig())

	for range 2 {
		rec, err := c.Lookup(t.Context(), "c-1")
		if !errors.Is(err, fake.err) || rec != nil {
			t.Fatalf("Lookup = %+v, %v; want backend error", rec, err)
		}
		c.Wait()
	}
	fake.err = nil
	if rec := lookup(t, c, "c-1"); rec == nil {
		t.Fatal("after recovery: no record")
	}
	if got := fake.calls.Load(); got != 3 {
		t.Errorf("backend calls = %d, want 3", got)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	fake.err = errors.New("backend down")
	if err := c.Ping(t.Context()); !errors.Is(err, fake.err) {
		t.Errorf("Ping = %v, want backend error", err)
	}
}

// The concurrency tests run in a synctest bubble: synctest.Wait returns once
// every goroutine is blocked, which tells the test "all callers are now
// waiting" without sleeping or polling.

func TestCacheSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFake()
		fake.gate = make(chan struct{})
		c := newTestCache(t, fake, DefaultCacheConfig())

		const callers = 50
		results := make([]*Record, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { results[i] = lookup(t, c, "c-1") })
		}
		synctest.Wait() // every caller is blocked on the one backend call
		if got := fake.calls.Load(); got != 1 {
			t.Fatalf("backend calls while blocked = %d, want 1", got)
		}
		close(fake.gate)
		wg.Wait()

		for i, rec := range results {
			if rec != fake.records["c-1"] {
				t.Fatalf("caller %d got %+v", i, rec)
			}
		}
		if got := fake.calls.Load(); got != 1 {
			t.Errorf("backend calls = %d, want 1", got)
		}
		if got := c.Stats().Misses; got != callers {
			t.Errorf("Misses = %d, want %d", got, callers)
		}
	})
}

// TestCacheSharedCallLeaderGivesUp checks that when the caller whose context
// runs the shared backend call gives up, callers still willing to wait get an
// answer instead of the other caller's cancellation.
func TestCacheSharedCallLeaderGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFake()
		fake.gate = make(chan struct{})
		fake.honorCtx = true
		c := newTestCache(t, fake, DefaultCacheConfig())

		leaderCtx, cancel := context.WithCancel(t.Context())
		var leaderErr error
		leaderDone := make(chan struct{})
		go func() {
			defer close(leaderDone)
			_, leaderErr = c.Lookup(leaderCtx, "c-1")
		}()
		synctest.Wait() // the leader is in the backend

		var follower *Record
		var followerErr error
		followerDone := make(chan struct{})
		go func() {
			defer close(followerDone)
			follower, followerErr = c.Lookup(t.Context(), "c-1")
		}()
		synctest.Wait() // the follower joined the leader's call

		cancel()
		<-leaderDone
		if !errors.Is(leaderErr, context.Canceled) {
			t.Errorf("leader error = %v, want context.Canceled", leaderErr)
		}
		synctest.Wait() // the follower started its own call
		if got := fake.calls.Load(); got != 2 {
			t.Errorf("backend calls = %d, want 2", got)
		}
		close(fake.gate)
		<-followerDone
		if followerErr != nil || follower != fake.records["c-1"] {
			t.Errorf("follower = %+v, %v; want the record", follower, followerErr)
		}
	})
}

// TestCacheBackendTimeoutShared checks that a backend's own timeout, as
// opposed to the starting caller giving up, fails every caller sharing the
// call without retries.
func TestCacheBackendTimeoutShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFake()
		fake.gate = make(chan struct{})
		fake.err = fmt.Errorf("redis: %w", context.DeadlineExceeded)
		c := newTestCache(t, fake, DefaultCacheConfig())

		const callers = 5
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { _, errs[i] = c.Lookup(t.Context(), "c-1") })
		}
		synctest.Wait()
		close(fake.gate)
		wg.Wait()
		for i, err := range errs {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("caller %d: error %v, want the backend's timeout", i, err)
			}
		}
		if got := fake.calls.Load(); got != 1 {
			t.Errorf("backend calls = %d, want 1", got)
		}
	})
}

func TestCacheCanceledBeforeLookup(t *testing.T) {
	fake := newFake()
	c := newTestCache(t, fake, DefaultCacheConfig())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Lookup(ctx, "c-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lookup error = %v, want context.Canceled", err)
	}
	if got := fake.calls.Load(); got != 0 {
		t.Errorf("backend calls = %d, want 0", got)
	}
}

func TestCacheCallerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFake()
		fake.gate = make(chan struct{})
		c := newTestCache(t, fake, DefaultCacheConfig())

		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Lookup(ctx, "c-1") // the backend ignores ctx; the caller must not wait for it
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lookup error = %v, want context.DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != 50*time.Millisecond {
			t.Errorf("Lookup returned after %v, want 50ms", waited)
		}
		close(fake.gate) // let the abandoned backend call finish before Close
	})
}

// TestCacheCloseWaitsForFetch checks that Close waits for a backend call whose
// caller gave up, since that call still writes to the cache.
func TestCacheCloseWaitsForFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFake()
		fake.gate = make(chan struct{})
		c, err := NewCache(fake, DefaultCacheConfig())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		lookupDone := make(chan error)
		go func() {
			_, err := c.Lookup(ctx, "c-1")
			lookupDone <- err
		}()
		synctest.Wait() // the backend call is under way
		cancel()
		if err := <-lookupDone; !errors.Is(err, context.Canceled) {
			t.Fatalf("Lookup error = %v, want context.Canceled", err)
		}

		var closed atomic.Bool
		go func() {
			c.Close()
			closed.Store(true)
		}()
		synctest.Wait()
		if closed.Load() {
			t.Fatal("Close returned while a backend call was running")
		}
		close(fake.gate)
		synctest.Wait()
		if !closed.Load() {
			t.Fatal("Close did not return after the backend call finished")
		}

		if _, err := c.Lookup(t.Context(), "c-1"); !errors.Is(err, ErrCacheClosed) {
			t.Errorf("Lookup after Close = %v, want ErrCacheClosed", err)
		}
		c.Close() // idempotent
	})
}

// TestCacheTTL runs in a bubble for its fake clock: the sleeps below advance
// time instantly instead of waiting.
func TestCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFake()
		cfg := CacheConfig{MaxBytes: 1 << 20, TTL: time.Minute, NegativeTTL: 10 * time.Second}
		c := newTestCache(t, fake, cfg)

		lookup(t, c, "c-1")
		lookup(t, c, "c-404")
		c.Wait()

		// Within the jittered lifetime of the negative entry (9s..11s): both hit.
		time.Sleep(8 * time.Second)
		lookup(t, c, "c-1")
		lookup(t, c, "c-404")
		if got := fake.calls.Load(); got != 2 {
			t.Fatalf("backend calls at 8s = %d, want 2", got)
		}

		// Past it, but inside the record's (54s..66s): only the unknown id misses.
		time.Sleep(12 * time.Second)
		lookup(t, c, "c-1")
		lookup(t, c, "c-404")
		if got := fake.calls.Load(); got != 3 {
			t.Fatalf("backend calls at 20s = %d, want 3", got)
		}
		c.Wait()

		// Past the record's lifetime: it misses too.
		time.Sleep(50 * time.Second)
		lookup(t, c, "c-1")
		if got := fake.calls.Load(); got != 4 {
			t.Fatalf("backend calls at 70s = %d, want 4", got)
		}
	})
}

func TestJitter(t *testing.T) {
	const d = 10 * time.Second
	lo, hi := d, d
	for range 10000 {
		j := jitter(d)
		lo, hi = min(lo, j), max(hi, j)
	}
	if lo < 9*time.Second || hi > 11*time.Second {
		t.Errorf("jitter range [%v, %v] exceeds ±10%%", lo, hi)
	}
	if lo > 9100*time.Millisecond || hi < 10900*time.Millisecond {
		t.Errorf("jitter range [%v, %v] does not spread over ±10%%", lo, hi)
	}
	if got := jitter(1); got != 1 {
		t.Errorf("jitter(1ns) = %v, want 1ns", got)
	}
}

func TestRecordCost(t *testing.T) {
	small := &Record{ID: "c-1", Values: NewValues(map[string]Value{"a": Number(1)})}
	big := &Record{ID: "c-1", Values: NewValues(map[string]Value{
		"a": Number(1), "s": String(strings.Repeat("x", 1000)), "l": List("one", "two", "three"),
	})}
	cs, cb := recordCost(small), recordCost(big)
	if cs < entryOverhead || cb < cs+1000 {
		t.Errorf("recordCost small = %d, big = %d; want big ≥ small + 1000 ≥ overhead", cs, cb)
	}
}

// TestCacheEvictsWithinBudget fills a small cache far past its budget and
// checks it kept serving: admitted entries hit, the rest reach the backend.
func TestCacheEvictsWithinBudget(t *testing.T) {
	fake := &fakeStore{records: map[string]*Record{}}
	for i := range 2000 {
		id := fmt.Sprintf("c-%d", i)
		fake.records[id] = &Record{ID: id, Values: NewValues(map[string]Value{"s": String(strings.Repeat("x", 200))})}
	}
	cost := recordCost(fake.records["c-0"])
	c := newTestCache(t, fake, CacheConfig{MaxBytes: 100 * cost, TTL: time.Hour})
	for i := range 2000 {
		lookup(t, c, fmt.Sprintf("c-%d", i))
	}
	c.Wait()
	if used := c.entries.MaxCost() - c.entries.RemainingCost(); used > 100*cost {
		t.Errorf("cache holds %d bytes, budget %d", used, 100*cost)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := newTestCache(t, newFake(), DefaultCacheConfig())
	ctx := context.Background()
	lookup(t, c, "c-1")
	lookup(t, c, "c-404")
	c.Wait()
	allocs := testing.AllocsPerRun(1000, func() {
		if rec, _ := c.Lookup(ctx, "c-1"); rec == nil {
			t.Fatal("miss")
		}
		if rec, _ := c.Lookup(ctx, "c-404"); rec != nil {
			t.Fatal("negative miss")
		}
	})
	if allocs != 0 {
		t.Errorf("cache hit allocates %v times", allocs)
	}
}

// TestCacheOverMemoryStore runs the combination the engine uses.
func TestCacheOverMemoryStore(t *testing.T) {
	store, err := LoadJSONL(strings.NewReader(syntheticCustomers(100)), "c.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, store, DefaultCacheConfig())
	var s Store = c
	for range 2 {
		rec, err := s.Lookup(t.Context(), "c-000007")
		if err != nil || rec == nil || rec.Values.Map()["points"].Num != 6 {
			t.Fatalf("Lookup = %+v, %v", rec, err)
		}
		c.Wait()
	}
	if got, want := c.Stats(), (CacheStats{Hits: 1, Misses: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := newTestCache(b, newFake(), DefaultCacheConfig())
	ctx := context.Background()
	lookup(b, c, "c-1")
	c.Wait()
	b.ReportAllocs()
	for b.Loop() {
		if rec, _ := c.Lookup(ctx, "c-1"); rec == nil {
			b.Fatal("miss")
		}
	}
}

func BenchmarkCacheHitParallel(b *testing.B) {
	fake := &fakeStore{records: map[string]*Record{}}
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%06d", i)
		fake.records[ids[i]] = &Record{ID: ids[i], Values: NewValues(map[string]Value{"n": Number(float64(i))})}
	}
	c := newTestCache(b, fake, DefaultCacheConfig())
	ctx := context.Background()
	for _, id := range ids {
		lookup(b, c, id)
	}
	c.Wait()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if rec, _ := c.Lookup(ctx, ids[i%len(ids)]); rec == nil {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkCacheMiss measures a miss end to end: lookup, backend call through
// singleflight, and the cache write. Every id is new, so every lookup misses.
func BenchmarkCacheMiss(b *testing.B) {
	rec := &Record{ID: "c-1", Values: NewValues(map[string]Value{"ltv": Number(1200.5), "stage": String("loyalty")})}
	c := newTestCache(b, constStore{rec}, DefaultCacheConfig())
	ctx := context.Background()
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%09d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if got, _ := c.Lookup(ctx, ids[i]); got == nil {
			b.Fatal("no record")
		}
	}
}

// constStore answers every lookup with one record.
type constStore struct{ rec *Record }

func (s constStore) Lookup(context.Context, string) (*Record, error) { return s.rec, nil }
func (s constStore) Ping(context.Context) error                      { return nil }

func TestCacheInvalidate(t *testing.T) {
	store, err := LoadJSONL(strings.NewReader(`{"id":"a","features":{"x":1}}`+"\n"+`{"id":"b","features":{"x":2}}`+"\n"), "t.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: store}
	c, err := NewCache(counting, DefaultCacheConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := c.Lookup(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	c.Wait()
	c.Lookup(ctx, "a")
	if n := counting.calls.Load(); n != 2 {
		t.Fatalf("backend calls = %d, want 2 before invalidation", n)
	}
	c.Invalidate("a")
	c.Wait()
	c.Lookup(ctx, "a")
	c.Lookup(ctx, "b")
	if n := counting.calls.Load(); n != 3 {
		t.Fatalf("backend calls = %d, want 3: only a is fetched again", n)
	}
	c.Wait()
	c.Invalidate("")
	c.Wait()
	c.Lookup(ctx, "b")
	if n := counting.calls.Load(); n != 4 {
		t.Fatalf("backend calls = %d, want 4 after dropping everything", n)
	}
}

type countingStore struct {
	Store
	calls atomic.Int64
}

func (s *countingStore) Lookup(ctx context.Context, id string) (*Record, error) {
	s.calls.Add(1)
	return s.Store.Lookup(ctx, id)
}

// panickyStore panics on every Lookup.
type panickyStore struct{}

func (panickyStore) Lookup(context.Context, string) (*Record, error) { panic("backend bug") }
func (panickyStore) Ping(context.Context) error                      { return nil }

// TestCacheBackendPanic: singleflight re-panics a panicking fetch on a
// goroutine of its own, which would end the process; the cache recovers it
// and answers every caller sharing the fetch with an error instead.
func TestCacheBackendPanic(t *testing.T) {
	var logs strings.Builder
	c, err := NewCache(panickyStore{}, DefaultCacheConfig(), WithCacheLogger(zerolog.New(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rec, err := c.Lookup(context.Background(), "c-1")
			var pe *PanicError
			if rec != nil || !errors.As(err, &pe) || pe.Value != "backend bug" || !strings.Contains(string(pe.Stack), "panickyStore") {
				t.Errorf("Lookup = %+v, %v; want a PanicError with the backend's stack", rec, err)
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.Panics == 0 {
		t.Errorf("Stats = %+v; want the panic counted", st)
	}
	// Nothing was cached: the next lookup asks the backend again.
	if _, err := c.Lookup(context.Background(), "c-1"); err == nil {
		t.Error("a panic was cached as an answer")
	}
	if !strings.Contains(logs.String(), `"level":"error"`) || !strings.Contains(logs.String(), "backend bug") {
		t.Errorf("logs = %s; want the panic logged", logs.String())
	}
}

// syncStore is a backend whose records a test changes between lookups.
type syncStore struct {
	mu      sync.Mutex
	records map[string]*Record
}

func (s *syncStore) Lookup(_ context.Context, id string) (*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[id], nil
}

func (s *syncStore) Ping(context.Context) error { return nil }

func (s *syncStore) put(id string, rec *Record) {
	s.mu.Lock()
	s.records[id] = rec
	s.mu.Unlock()
}

// A write followed by its invalidation is seen by the next lookup on the
// same node, even right after the lookup that cached the old answer:
// ristretto applies sets asynchronously, so a set issued before an
// invalidation must not land after it. Read-your-writes is what the
// customer API promises.
func TestCacheReadsItsWritesAfterInvalidate(t *testing.T) {
	store := &syncStore{records: map[string]*Record{}}
	c := newTestCache(t, store, DefaultCacheConfig())
	for i := 0; i < 2000; i++ {
		id := fmt.Sprintf("c-%d", i)
		if rec := lookup(t, c, id); rec != nil {
			t.Fatalf("%s known before it was written", id)
		}
		store.put(id, &Record{ID: id, Values: NewValues(map[string]Value{"x": Number(1)})})
		c.Invalidate(id)
		if rec := lookup(t, c, id); rec == nil {
			t.Fatalf("%s: the lookup after the write and its invalidation still sees the customer as unknown (round %d)", id, i)
		}
		store.put(id, &Record{ID: id, Values: NewValues(map[string]Value{"x": Number(2)})})
		c.Invalidate(id)
		if rec := lookup(t, c, id); rec == nil || rec.Values.Map()["x"].Num != 2 {
			t.Fatalf("%s: stale record %+v after the second write (round %d)", id, rec, i)
		}
	}
}

// TestCacheCostMatchesHeap checks that what the cache charges for demo
// customers is within 20% of the heap they really keep, so that
// max_bytes bounds memory: the heap in use after caching them minus
// before, against Usage().Bytes.
func TestCacheCostMatchesHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what allocations cost")
	}
	const n = 20_000
	var jsonl bytes.Buffer
	if err := demodata.Generate(&jsonl, n, 7); err != nil {
		t.Fatal(err)
	}
	store, err := LoadJSONL(&jsonl, "demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%06d", i+1)
	}
	heap, cost := cachedFootprint(t, store, ids)
	t.Logf("%d customers: heap %d bytes each, cost %d", n, heap/n, cost/n)
	if ratio := float64(cost) / float64(heap); ratio < 0.8 || ratio > 1.2 {
		t.Errorf("the cache charges %d bytes for a heap of %d (%.2f×); want within 20%%", cost, heap, ratio)
	}
}

// cachedFootprint looks every id up through a new cache over store and
// returns the heap the cached records keep and what the cache charged
// for them. Every id must be cached, or both would be understated.
func cachedFootprint(t *testing.T, store Store, ids []string) (heap, cost int64) {
	c := newTestCache(t, store, CacheConfig{MaxBytes: 1 << 30, TTL: time.Hour})
	ctx := t.Context()
	before := heapInUse()
	for i, id := range ids {
		if rec, err := c.Lookup(ctx, id); err != nil || rec == nil {
			t.Fatalf("Lookup(%s) = %v, %v", id, rec, err)
		}
		if i%1000 == 999 {
			c.Wait() // ristretto drops sets while its buffer is full
		}
	}
	c.Wait()
	after := heapInUse()
	if u := c.Usage(); u.Entries != int64(len(ids)) {
		t.Fatalf("Usage().Entries = %d, want %d", u.Entries, len(ids))
	}
	hits := c.Stats().Hits
	for _, id := range ids {
		lookup(t, c, id)
	}
	if got := c.Stats().Hits - hits; got != uint64(len(ids)) {
		t.Fatalf("%d of %d customers were cached", got, len(ids))
	}
	return int64(after - before), c.Usage().Bytes
}

// heapInUse is go_memstats_heap_inuse_bytes after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
