package engine

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/tracing"
)

// BenchmarkDecide measures the whole decision on the demo ruleset for a
// customer already in the feature cache: lookup, binding, every rule,
// arbitration and content rendering for two placements.
func BenchmarkDecide(b *testing.B) { benchDecide(b, context.Background()) }

// BenchmarkDecideTraced is BenchmarkDecide inside a sampled request span,
// its stages traced and the spans dropped once ended: what tracing costs
// the engine for a request it records.
func BenchmarkDecideTraced(b *testing.B) {
	cfg := tracing.DefaultConfig()
	cfg.Enabled, cfg.SampleRatio = true, 1
	tr, err := tracing.New(cfg, tracing.WithSpanProcessor(discardSpans{}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := tr.StartDecide(context.Background(), nil, nil)
	benchDecide(b, ctx, WithTracer(tr))
}

type discardSpans struct{}

func (discardSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardSpans) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardSpans) Shutdown(context.Context) error                  { return nil }
func (discardSpans) ForceFlush(context.Context) error                { return nil }

func benchDecide(b *testing.B, ctx context.Context, opts ...Option) {
	store, err := features.OpenJSONL("../configs/demo/customers.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	cache, err := features.NewCache(store, features.DefaultCacheConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	// The served configuration: with the decide deadline, whose clock
	// readings are part of the cost.
	e, err := New(Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml", DecideDeadline: DefaultDecideDeadline}, cache, zerolog.Nop(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	req := Request{
		CustomerID: "c-000042",
		Placements: []PlacementRequest{{ID: "cart_banner"}, {ID: "product_recs", Count: 3}},
		Context: []ContextField{
			{Name: "channel", Value: features.String("web")},
			{Name: "page", Value: features.String("/cart")},
			{Name: "device", Value: features.String("mobile")},
		},
	}
	var d Decision
	if err := e.Decide(ctx, &req, &d); err != nil {
		b.Fatal(err)
	}
	cache.Wait()
	if err := e.Decide(ctx, &req, &d); err != nil || !d.KnownCustomer || len(d.Placements[0].Items) == 0 {
		b.Fatalf("warm-up decision: %v %+v", err, d)
	}
	before := cache.Stats().Misses
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.Decide(ctx, &req, &d); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if cache.Stats().Misses != before {
		b.Fatalf("the customer fell out of the cache during the benchmark")
	}
}
