package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/demodata"
)

// BenchmarkDecideEmbedded decides for 10,000 demo customers in turn on
// the embedded store: cached through a cache that holds them all, and
// uncached, where every decision decodes the customer's record and binds
// it to the schema as a cache miss does. The difference is what a miss
// costs a decision.
func BenchmarkDecideEmbedded(b *testing.B) {
	const n = 10_000
	var jsonl bytes.Buffer
	if err := demodata.Generate(&jsonl, n, 42); err != nil {
		b.Fatal(err)
	}
	store, err := features.LoadJSONL(&jsonl, "demo")
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]engine.Request, n)
	for i := range reqs {
		reqs[i] = engine.Request{CustomerID: fmt.Sprintf("c-%06d", i+1),
			Placements: []engine.PlacementRequest{{ID: "cart_banner"}, {ID: "product_recs"}},
			Context:    []engine.ContextField{{Name: "channel", Value: features.String("web")}, {Name: "page", Value: features.String("/cart")}}}
	}
	run := func(b *testing.B, src engine.FeatureSource) {
		e, err := engine.New(engine.Config{RulesDir: "../configs/rules", SchemaPath: demoSchema}, src, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		var d engine.Decision
		for i := range reqs { // warm the cache, if any, and the engine
			if err := e.Decide(ctx, &reqs[i], &d); err != nil || !d.KnownCustomer {
				b.Fatalf("warm-up: %v %+v", err, d)
			}
		}
		if c, ok := src.(*features.Cache); ok {
			c.Wait()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := e.Decide(ctx, &reqs[i%n], &d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cached", func(b *testing.B) {
		cfg := features.DefaultCacheConfig()
		cfg.MaxBytes = 1 << 30
		cache, err := features.NewCache(store, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer cache.Close()
		run(b, cache)
	})
	b.Run("uncached", func(b *testing.B) { run(b, store) })
}
