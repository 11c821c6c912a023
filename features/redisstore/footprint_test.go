package redisstore

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/demodata"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// TestCacheCostMatchesHeap checks, for records read from Redis, that what
// the cache charges is within 20% of the heap they really keep: the heap
// in use after caching demo customers minus before, against the cache's
// Usage().Bytes. Records from Redis own their strings, unlike the
// embedded store's, so their cost is estimated differently.
func TestCacheCostMatchesHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what allocations cost")
	}
	const n = 10_000
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	// One connection, opened before the measurement: the pool's buffers
	// are not the records'.
	cfg.PoolSize, cfg.MinIdleConns = 1, 0
	s := openStore(t, cfg)
	var jsonl bytes.Buffer
	if err := demodata.Generate(&jsonl, n, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(t.Context(), &jsonl, ImportOptions{Name: "demo.jsonl"}); err != nil {
		t.Fatal(err)
	}
	c, err := features.NewCache(s, features.CacheConfig{MaxBytes: 1 << 30, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	lookup := func(id string) {
		if rec, err := c.Lookup(ctx, id); err != nil || !rec.Known() {
			t.Fatalf("Lookup(%s) = %v, %v", id, rec, err)
		}
	}
	// The first lookup dials and sizes the connection's buffers.
	lookup("c-000001")
	c.Wait()
	c.Invalidate("")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%06d", i+1)
	}
	before := heapInUse()
	for i, id := range ids {
		lookup(id)
		if i%1000 == 999 {
			c.Wait() // ristretto drops sets while its buffer is full
		}
	}
	c.Wait()
	after := heapInUse()
	u := c.Usage()
	if u.Entries != n {
		t.Fatalf("Usage().Entries = %d, want %d: the heap would be understated", u.Entries, n)
	}
	heap := int64(after - before)
	t.Logf("%d customers: heap %d bytes each, cost %d", n, heap/n, u.Bytes/n)
	if ratio := float64(u.Bytes) / float64(heap); ratio < 0.8 || ratio > 1.2 {
		t.Errorf("the cache charges %d bytes for a heap of %d (%.2f×); want within 20%%", u.Bytes, heap, ratio)
	}
}

// heapInUse is go_memstats_heap_inuse_bytes after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
