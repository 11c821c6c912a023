package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/demodata"
)

// footprintCustomers is how many demo customers BenchmarkCacheFootprint
// caches: enough that the heap's fixed costs vanish in the average.
const footprintCustomers = 100_000

// BenchmarkCacheFootprint measures the heap a cached demo customer keeps:
// 100,000 demo customers on the embedded store behind a cache large enough
// for all of them, each decided once on the demo ruleset (so the record is
// also bound for the engine), and the heap in use after minus before,
// divided by the customers cached. It also reports what the cache charges
// for them (cost_bytes/customer), which must stay close to the heap for
// features.cache.max_bytes to bound memory.
func BenchmarkCacheFootprint(b *testing.B) {
	var jsonl bytes.Buffer
	if err := demodata.Generate(&jsonl, footprintCustomers, 42); err != nil {
		b.Fatal(err)
	}
	jsonBytes := jsonl.Len()
	store, err := features.LoadJSONL(&jsonl, "demo")
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, footprintCustomers)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%06d", i+1)
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		fp := measureFootprint(b, store, ids)
		b.ReportMetric(fp.heap, "heap_bytes/customer")
		b.ReportMetric(fp.cost, "cost_bytes/customer")
		b.ReportMetric(float64(jsonBytes)/float64(len(ids)), "json_bytes/customer")
	}
	_ = ctx
}

type footprint struct{ heap, cost float64 }

// measureFootprint caches every id through a fresh cache and engine and
// returns the heap and the cache's cost per cached customer.
func measureFootprint(tb testing.TB, store features.Store, ids []string) footprint {
	cfg := features.DefaultCacheConfig()
	cfg.MaxBytes = 4 << 30
	cache, err := features.NewCache(store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer cache.Close()
	e, err := engine.New(engine.Config{RulesDir: "../configs/rules", SchemaPath: demoSchema}, cache, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	var d engine.Decision
	decide := func(id string) {
		req := engine.Request{CustomerID: id, Placements: []engine.PlacementRequest{{ID: "cart_banner"}, {ID: "product_recs"}},
			Context: []engine.ContextField{{Name: "channel", Value: features.String("web")}, {Name: "page", Value: features.String("/cart")}}}
		if err := e.Decide(ctx, &req, &d); err != nil {
			tb.Fatal(err)
		}
	}
	// Warm the engine's pools and the cache's buffers on a customer that
	// is then dropped, so only records remain in the difference.
	decide(ids[0])
	cache.Wait()
	cache.Invalidate("")
	before := heapInUse()
	for i, id := range ids {
		decide(id)
		if i%1000 == 999 {
			cache.Wait() // ristretto drops sets when its buffer is full
		}
	}
	cache.Wait()
	// Every customer decided again must be a hit: all of them are cached.
	hits := cache.Stats().Hits
	for _, id := range ids {
		decide(id)
	}
	if got := cache.Stats().Hits - hits; got != uint64(len(ids)) {
		tb.Fatalf("%d of %d customers were cached; the footprint would be understated", got, len(ids))
	}
	after := heapInUse()
	n := float64(len(ids))
	runtime.KeepAlive(e)
	return footprint{heap: float64(after-before) / n, cost: float64(cache.Usage().Bytes) / n}
}

// heapInUse is go_memstats_heap_inuse_bytes after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
