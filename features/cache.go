package features

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"
)

// CacheConfig sizes the record cache.
type CacheConfig struct {
	// MaxBytes bounds the estimated memory of cached records.
	MaxBytes int64 `yaml:"max_bytes"`
	// TTL is how long a record is served without asking the backend again.
	// Each entry gets ±10% jitter so records loaded together do not all
	// expire, and hit the backend, together.
	TTL time.Duration `yaml:"ttl"`
	// NegativeTTL is how long an unknown customer is remembered as unknown.
	// Zero turns negative caching off.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// DefaultCacheConfig returns the configuration used when none is given.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{MaxBytes: 64 << 20, TTL: 5 * time.Minute, NegativeTTL: 30 * time.Second}
}

// Validate reports every invalid field, named as in the YAML configuration.
func (c CacheConfig) Validate() error {
	var errs []error
	if c.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("cache.max_bytes must be positive, got %d", c.MaxBytes))
	}
	if c.TTL <= 0 {
		errs = append(errs, fmt.Errorf("cache.ttl must be positive, got %v", c.TTL))
	}
	if c.NegativeTTL < 0 {
		errs = append(errs, fmt.Errorf("cache.negative_ttl must not be negative, got %v", c.NegativeTTL))
	}
	return errors.Join(errs...)
}

// CacheStats counts Cache lookups since the cache was created.
type CacheStats struct {
	Hits         uint64 // lookups answered from the cache, including NegativeHits
	NegativeHits uint64 // hits that answered "unknown customer"
	Misses       uint64 // lookups that went to the backend, or joined a call already under way
	Panics       uint64 // backend calls that panicked (answered with a *PanicError)
}

// ErrCacheClosed is returned by Lookup on a cache miss after Close.
var ErrCacheClosed = errors.New("features: cache is closed")

// Cache is a Store that keeps recently looked-up records in memory in front
// of another Store. It knows nothing about the backend beyond the Store
// interface.
//
// Concurrent misses for one customer share a single backend call. Backend
// errors are returned to every caller sharing the call and are never cached,
// so the next lookup tries again. Unknown customers are cached for
// NegativeTTL so traffic for ids that do not exist cannot hammer the backend.
type Cache struct {
	backend     Store
	ttl         time.Duration
	negativeTTL time.Duration
	entries     *ristretto.Cache[string, *Record]
	// unknown is the value cached for a customer the backend does not
	// know; entries never holds nil, so that an exit can be told from
	// ristretto's report of a delete that found nothing.
	unknown *Record
	// count is how many entries the cache holds: one more for every set
	// ristretto accepted, one less for every value that left it
	// (rejected, evicted, expired, deleted or replaced).
	count   atomic.Int64
	flights singleflight.Group
	log     zerolog.Logger

	hits, negativeHits, misses, panics atomic.Uint64
	// generation changes on every invalidation; a fetch that started in an
	// older generation may hold data from before the change and is not
	// cached.
	generation atomic.Uint64

	// mu orders fetch starts against Close so Close can wait for fetches
	// whose callers have already given up: they still write to entries.
	mu      sync.Mutex
	closed  bool
	fetches sync.WaitGroup
}

// CacheOption configures a Cache beyond its CacheConfig.
type CacheOption func(*Cache)

// WithCacheLogger logs a backend that panicked, with its stack, at error
// level and at most a few times a minute. Without it the panic reaches only
// the caller, as a *PanicError.
func WithCacheLogger(log zerolog.Logger) CacheOption {
	return func(c *Cache) {
		c.log = log.With().Str("component", "cache").Logger().Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute})
	}
}

// NewCache puts a cache configured by cfg in front of backend.
func NewCache(backend Store, cfg CacheConfig, opts ...CacheOption) (*Cache, error) {
	if backend == nil {
		return nil, errors.New("cannot create feature cache: backend is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create feature cache: %w", err)
	}
	c := &Cache{
		backend:     backend,
		ttl:         cfg.TTL,
		negativeTTL: cfg.NegativeTTL,
		unknown:     &Record{},
		log:         zerolog.Nop(),
	}
	entries, err := ristretto.NewCache(&ristretto.Config[string, *Record]{
		NumCounters: numCounters(cfg.MaxBytes),
		MaxCost:     cfg.MaxBytes,
		BufferItems: 64, // ristretto's recommended Get buffer size
		// Costs are our byte estimates, which already include per-entry
		// overhead. Letting ristretto add its own internal cost on top
		// makes small entries look huge, and it then rejects them silently.
		IgnoreInternalCost: true,
		OnExit: func(rec *Record) {
			if rec != nil {
				c.count.Add(-1)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create feature cache: %w", err)
	}
	c.entries = entries
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

// typicalEntryBytes is a guess at an average entry's cost, used only to size
// ristretto's admission counters; a wrong guess costs hit ratio, not memory.
const typicalEntryBytes = 1024

// numCounters follows ristretto's advice of ten counters per entry the cache
// can hold, bounded so a tiny cache still admits well and a huge one does not
// spend hundreds of megabytes on counters.
func numCounters(maxBytes int64) int64 {
	return min(max(10*(maxBytes/typicalEntryBytes), 1<<10), 1<<24)
}

// Lookup answers from the cache, or asks the backend on a miss. A hit does not
// allocate.
func (c *Cache) Lookup(ctx context.Context, customerID string) (*Record, error) {
	if rec, ok := c.entries.Get(customerID); ok {
		c.hits.Add(1)
		if rec == c.unknown {
			c.negativeHits.Add(1)
			return nil, nil
		}
		return rec, nil
	}
	c.misses.Add(1)
	return c.load(ctx, customerID)
}

// load fetches customerID through the singleflight group. Each caller waits
// only as long as its own context allows; the shared call runs under the
// context of the caller that started it.
func (c *Cache) load(ctx context.Context, customerID string) (*Record, error) {
	// The id outlives this call as the singleflight key and in the fetched
	// record, so it must not alias a caller's reusable buffer.
	id := strings.Clone(customerID)
	for {
		if err := ctx.Err(); err != nil {
			// Do not start a backend call nobody will wait for.
			return nil, err
		}
		ch := c.flights.DoChan(id, func() (any, error) { return c.fetch(ctx, id) })
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case res := <-ch:
			var gone *leaderGoneError
			if errors.As(res.Err, &gone) {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				// Only the caller that started the shared call gave up;
				// this one has not, so it starts a call of its own.
				continue
			}
			if res.Err != nil {
				return nil, res.Err
			}
			rec, _ := res.Val.(*Record)
			return rec, nil
		}
	}
}

// leaderGoneError marks a shared backend call that failed because the context
// it ran under, that of the caller who started it, ended. The other callers
// sharing it should not fail for that.
type leaderGoneError struct{ err error }

func (e *leaderGoneError) Error() string { return e.err.Error() }
func (e *leaderGoneError) Unwrap() error { return e.err }

// PanicError is returned by Lookup when the backend panicked. The panic is
// recovered where the backend ran: singleflight runs it on a goroutine of
// its own and would re-panic there, where nothing can recover, ending the
// process.
type PanicError struct {
	Value any    // what the backend panicked with
	Stack []byte // the backend's stack when it panicked
}

func (e *PanicError) Error() string { return fmt.Sprintf("feature store lookup panicked: %v", e.Value) }

// fetch asks the backend and caches the answer. It runs once per flight, on a
// goroutine owned by the singleflight group, and may outlive the caller that
// started it; Close waits for it.
func (c *Cache) fetch(ctx context.Context, id string) (rec *Record, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrCacheClosed
	}
	c.fetches.Add(1)
	c.mu.Unlock()
	defer c.fetches.Done()
	defer func() {
		if v := recover(); v != nil {
			c.panics.Add(1)
			pe := &PanicError{Value: v, Stack: debug.Stack()}
			c.log.Error().Str("panic", fmt.Sprint(v)).Bytes("stack", pe.Stack).Msg("feature store lookup panicked; the decision is degraded")
			rec, err = nil, pe
		}
	}()

	gen := c.generation.Load()
	rec, err = c.backend.Lookup(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &leaderGoneError{err}
		}
		return nil, err
	}
	if c.generation.Load() != gen {
		return rec, nil // changed while fetching: serve it, but do not keep it
	}
	if rec == nil {
		if c.negativeTTL > 0 {
			c.set(id, c.unknown, entryOverhead+entryOverhead*aliasedSlackPercent/100, c.negativeTTL)
			c.dropIfChanged(id, gen)
		}
		return nil, nil
	}
	c.set(id, rec, recordCost(rec), c.ttl)
	c.dropIfChanged(id, gen)
	return rec, nil
}

// set caches rec for id, counting the entry if ristretto takes it.
func (c *Cache) set(id string, rec *Record, cost int64, ttl time.Duration) {
	if c.entries.SetWithTTL(id, rec, cost, jitter(ttl)) {
		c.count.Add(1)
	}
}

// dropIfChanged undoes a set that an invalidation overtook: one that came
// between the generation check and the set would otherwise keep the old
// answer. It is rare, so its wait for the set does not matter.
func (c *Cache) dropIfChanged(id string, gen uint64) {
	if c.generation.Load() != gen {
		c.entries.Wait()
		c.entries.Del(id)
	}
}

// Invalidate drops a customer's cached record after it changed in the
// backend (on this node or, through the store's notifications, on another);
// an empty id drops every record, for when notifications may have been
// missed.
//
// Ristretto applies sets asynchronously, so a set issued before this call
// could land after the delete and bring the old record back; Invalidate
// first waits for the sets in flight. Writes are rare next to lookups, so
// the wait costs the request path nothing.
func (c *Cache) Invalidate(customerID string) {
	c.generation.Add(1)
	c.entries.Wait()
	if customerID == "" {
		c.entries.Clear()
		return
	}
	c.entries.Del(customerID)
}

// jitter spreads d uniformly over ±10%.
func jitter(d time.Duration) time.Duration {
	spread := int64(d / 5)
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread+1))
}

// Ping checks the backend; the cache itself has nothing to check.
func (c *Cache) Ping(ctx context.Context) error {
	return c.backend.Ping(ctx)
}

// Stats returns the lookup counters. Counters are read one at a time, so under
// load the snapshot is approximate.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Hits:         c.hits.Load(),
		NegativeHits: c.negativeHits.Load(),
		Misses:       c.misses.Load(),
		Panics:       c.panics.Load(),
	}
}

// CacheUsage is what a Cache holds.
type CacheUsage struct {
	Entries int64 // records cached, and customers remembered as unknown
	Bytes   int64 // their estimated memory, bounded by MaxBytes
}

// Usage reports what the cache holds. Writes reach the cache
// asynchronously, so it may lag lookups that have just returned.
func (c *Cache) Usage() CacheUsage {
	return CacheUsage{Entries: c.count.Load(), Bytes: c.entries.MaxCost() - c.entries.RemainingCost()}
}

// Wait blocks until entries cached by lookups that have already returned are
// visible to later lookups. The cache applies writes asynchronously, so only
// tests and warm-up code need this.
func (c *Cache) Wait() {
	c.entries.Wait()
}

// Close waits for backend calls still under way, then releases the cache. It
// does not close the backend, which the cache does not own. Ristretto is not
// safe to close while it is being read, so Close must not run concurrently
// with Lookup or Wait. After Close every lookup misses and returns
// ErrCacheClosed.
func (c *Cache) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.fetches.Wait()
	c.entries.Close()
}

// Size estimates for recordCost. They follow the heap a cached record keeps
// alive, allocation by allocation, so that MaxBytes bounds memory: the
// estimate is checked against the measured heap in the tests.
const (
	// entryOverhead covers ristretto's per-entry bookkeeping (the stored
	// item in its sharded map, the expiry bucket and the policy's cost
	// entry, with the maps' spare slots), which IgnoreInternalCost leaves
	// out: about 175 bytes in a heap profile.
	entryOverhead = 176
	// The heap in use holds more than the objects cached records keep:
	// the allocator's spans keep the holes that the temporaries of the
	// misses that cached them left between them. Records whose strings
	// point into their store's memory (the embedded store) are decoded
	// with little garbage, about a quarter more; records that own their
	// strings are built from a reply (Redis) and leave about half as much
	// again. The estimate as a whole is checked against the heap by
	// TestCacheCostMatchesHeap in cache_test.go and in features/redisstore.
	aliasedSlackPercent = 25
	ownedSlackPercent   = 45
	recordBytes         = int64(unsafe.Sizeof(Record{}))
	mapHeaderBytes      = 48
	slotBytes           = int64(unsafe.Sizeof("") + unsafe.Sizeof(Value{}))
	stringBytes         = int64(unsafe.Sizeof(""))
	// counterBytesEach is one element of Record.Counters; event types are a
	// few shared strings, subjects are counted by length.
	counterBytesEach = int64(unsafe.Sizeof(Counter{}))
)

// recordCost estimates the bytes rec keeps in the cache: the record, its
// features' words and strings, and the text it owns. A layout shared by the
// store's records is paid once, not per record; one of its own is the
// record's.
func recordCost(rec *Record) int64 {
	n := entryOverhead + allocSize(recordBytes) + allocSize(int64(len(rec.ID)))
	v := &rec.Values
	n += allocSize(8*int64(len(v.words))) + allocSize(stringBytes*int64(len(v.strs)))
	if l := v.layout; l != nil {
		if !l.aliased {
			size := 0
			for _, s := range v.strs {
				size += len(s)
			}
			n += allocSize(int64(size)) // one buffer; see pack
		}
		if !l.shared {
			n += allocSize(int64(unsafe.Sizeof(Layout{}))) + allocSize(stringBytes*int64(len(l.names))) + allocSize(int64(len(l.kinds)))
			if !l.aliased {
				for _, name := range l.names {
					n += allocSize(int64(len(name)))
				}
			}
		}
	}
	// Counters and consent come from events, which any client can send for
	// any id: a record's cost must grow with them too, or a cache full of
	// counter-laden records would hold far more than MaxBytes.
	n += allocSize(counterBytesEach * int64(len(rec.Counters)))
	for i := range rec.Counters {
		n += allocSize(int64(len(rec.Counters[i].Subject)))
	}
	if rec.Consent != nil {
		n += mapCost(len(rec.Consent), consentSlotBytes)
		for channel := range rec.Consent {
			n += int64(len(channel))
		}
	}
	if rec.Values.layout != nil && rec.Values.layout.aliased {
		return n + n*aliasedSlackPercent/100
	}
	return n + n*ownedSlackPercent/100
}

// allocSize is the heap an allocation of n bytes takes (0 for none): the
// smallest of the Go allocator's size classes that holds it.
func allocSize(n int64) int64 {
	if n <= 0 {
		return 0
	}
	sizeClasses := [...]int64{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
		288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048}
	if n > sizeClasses[len(sizeClasses)-1] {
		return (n + 255) &^ 255 // larger classes are spaced more widely; close enough
	}
	i, _ := slices.BinarySearch(sizeClasses[:], n)
	return sizeClasses[i]
}

// mapBytes approximates the heap of a map[string]Value with n entries. Go's
// maps keep slots in groups of eight with a control word each, fill at most
// 7/8 of them and grow by doubling, so a map often holds twice the slots it
// uses.
func mapBytes(n int) int64 { return mapCost(n, slotBytes) }

// mapCost approximates the heap of a map with n entries of slot bytes each
// (key and value), as mapBytes explains. Even a map of one entry holds a
// group of eight slots.
func mapCost(n int, slot int64) int64 {
	slots := int64(8)
	for slots*7/8 < int64(n) {
		slots *= 2
	}
	return mapHeaderBytes + slots*slot + slots
}
