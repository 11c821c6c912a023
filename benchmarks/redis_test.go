package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/redisstore"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// BenchmarkDecideRedis measures whole decisions on the demo ruleset with
// the features in a local redis-server: cache_hit for a customer already
// in the in-process cache (the same path as the embedded store), cold_miss
// for a customer read from Redis on every decision (one round trip). The
// embedded store's cache hit is engine's BenchmarkDecide.
func BenchmarkDecideRedis(b *testing.B) {
	srv := redistest.Start(b)
	cfg := redisstore.DefaultConfig()
	cfg.URL = srv.URL()
	cfg.LookupTimeout = cfg.WriteTimeout // the machine is shared; do not let noise degrade decisions
	store, err := redisstore.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	data, err := os.ReadFile(demoCustomers)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.Import(context.Background(), bytes.NewReader(data), redisstore.ImportOptions{Name: "customers.jsonl"}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	newEngine := func(src engine.FeatureSource) *engine.Engine {
		e, err := engine.New(engine.Config{RulesDir: "../configs/rules", SchemaPath: demoSchema}, src, zerolog.Nop(),
			engine.WithBudgets(store), engine.WithWriter(store))
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	request := func(id string) *engine.Request {
		return &engine.Request{CustomerID: id, Placements: []engine.PlacementRequest{{ID: "cart_banner"}, {ID: "product_recs"}},
			Context: []engine.ContextField{{Name: "channel", Value: features.String("web")}, {Name: "page", Value: features.String("/cart")}}}
	}

	b.Run("cache_hit", func(b *testing.B) {
		cache, err := features.NewCache(store, features.DefaultCacheConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer cache.Close()
		e := newEngine(cache)
		req := request("c-000042")
		var d engine.Decision
		if err := e.Decide(ctx, req, &d); err != nil || !d.KnownCustomer {
			b.Fatalf("warm-up: %v %+v", err, d)
		}
		cache.Wait()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := e.Decide(ctx, req, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold_miss", func(b *testing.B) {
		e := newEngine(store) // no cache: every decision reads Redis
		reqs := make([]*engine.Request, 3000)
		for i := range reqs {
			reqs[i] = request(fmt.Sprintf("c-%06d", i+1))
		}
		var d engine.Decision
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := e.Decide(ctx, reqs[i%len(reqs)], &d); err != nil || d.Degraded {
				b.Fatalf("decide: %v degraded=%v", err, d.Degraded)
			}
		}
	})
}
