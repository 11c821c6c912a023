package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/decisionlog"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// BenchmarkDecideWithModel measures the demo decision on the cart page
// where models do the ranking: the cart coupon's propensity from the
// XGBoost model coupon_response, and every recommendation list's from the
// logistic recs_click, evaluated per candidate. The demo offers one cart
// coupon; the benchmark adds three more discounts (one rule file beside
// the demo's) so that the coupon model ranks four candidates too. The
// customer is the demo customer whose request runs models for the most
// candidates; ranked/op and model_runs/op say how many.
func BenchmarkDecideWithModel(b *testing.B) {
	dir := b.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../configs/rules")); err != nil {
		b.Fatal(err)
	}
	writeFile(b, filepath.Join(dir, "bench_coupons.yaml"), benchCoupons())
	var reqs []engine.Request
	for _, id := range demoCustomerIDs(b) {
		reqs = append(reqs, engine.Request{
			CustomerID: id,
			Placements: []engine.PlacementRequest{{ID: "cart_banner"}, {ID: "product_recs", Count: 5}},
			Context: []engine.ContextField{
				{Name: "channel", Value: features.String("web")},
				{Name: "page", Value: features.String("/cart")},
			},
		})
	}
	e, cache := benchEngine(b, dir, reqs)
	// Keep the request that ranks the most candidates with models.
	best, bestRuns := 0, 0
	var d engine.Decision
	for i := range reqs {
		req := reqs[i]
		req.Explain = true
		if err := e.Decide(context.Background(), &req, &d); err != nil {
			b.Fatal(err)
		}
		runs := 0
		for _, c := range d.Explain.Candidates {
			runs += len(c.Models)
		}
		if runs > bestRuns {
			best, bestRuns = i, runs
		}
	}
	reqs = reqs[best : best+1]
	fx := &decideFixture{e: e, cache: cache}
	fx.matched, fx.ranked = explainCounts(b, e, reqs)
	if fx.ranked < 10 {
		b.Fatalf("the busiest demo request ranks %v candidates (%d with models), want at least 10", fx.ranked, bestRuns)
	}
	fx.run(b, reqs)
	b.ReportMetric(float64(bestRuns), "model_runs/op")
}

// demoCustomerIDs lists the demo customers' ids in file order.
func demoCustomerIDs(tb testing.TB) []string {
	tb.Helper()
	f, err := os.Open(demoCustomers)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// benchCoupons offers 5, 15 and 20% cart coupons beside the demo's 10%,
// to the same customers, valued and ranked the same way.
func benchCoupons() string {
	var s strings.Builder
	s.WriteString("touchpoints:\n")
	for _, d := range []int{5, 15, 20} {
		fmt.Fprintf(&s, "  - id: bench_coupon_%d\n    kind: coupon\n    channels: [web, app]\n    placements: [cart_banner]\n"+
			"    attributes: {discount: %d}\n    propensity: coupon_response\n    value: customer.cart_value * (0.4 - touchpoint.discount / 100)\n"+
			"    content: {code: CART%d, discount_percent: %d}\n", d, d, d, d)
	}
	s.WriteString("rules:\n  - id: bench_coupon_variants\n" +
		"    when: context.page == \"/cart\" && segment(\"cart_abandoner\") && model(\"coupon_response\") >= 0.2\n" +
		"    offer: [bench_coupon_5, bench_coupon_15, bench_coupon_20]\n    priority: 500\n")
	return s.String()
}

// BenchmarkDecideLogged is BenchmarkDecide's request (Mei on the cart
// page, the cart banner and three recommendations) plus the demo's
// Thompson placement, promo_strip, with the decision log on: the
// decision, the demo's A/B test on the cart banner (assignment, exposure
// and the decision id's tags), the bandit's sampling and its logged
// propensity, and the copy into the log's queue, which a writer goroutine
// drains to a file.
func BenchmarkDecideLogged(b *testing.B) {
	dir := "../configs/rules"
	req := engine.Request{
		CustomerID: "c-000042",
		Placements: []engine.PlacementRequest{{ID: "cart_banner"}, {ID: "product_recs", Count: 3}, {ID: "promo_strip"}},
		Context: []engine.ContextField{
			{Name: "channel", Value: features.String("web")},
			{Name: "page", Value: features.String("/cart")},
			{Name: "device", Value: features.String("mobile")},
		},
		Log: true,
	}
	e, cache := benchEngine(b, dir, []engine.Request{req})
	logger := benchDecisionLog(b)
	var d engine.Decision
	before := cache.Stats().Misses
	decideLogged(b, e, &req, &d, logger)
	if cache.Stats().Misses != before {
		b.Fatal("the customer fell out of the feature cache during the benchmark")
	}
}

// BenchmarkDecideLearning is the learning loop's own cost on a ruleset
// with little else (engine/testdata/learning): an A/B test with a
// holdout on one placement, a Thompson placement of three promotions by
// tier, and the decision log on.
func BenchmarkDecideLearning(b *testing.B) {
	store, err := features.LoadJSONL(strings.NewReader(`{"id":"s-1","features":{"tier":"silver"}}`+"\n"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	cache, err := features.NewCache(store, features.DefaultCacheConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	e, err := engine.New(engine.Config{RulesDir: "../engine/testdata/learning/rules", SchemaPath: "../engine/testdata/learning/features.yaml",
		DecideDeadline: engine.DefaultDecideDeadline}, cache, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	req := engine.Request{
		CustomerID: "s-1",
		Placements: []engine.PlacementRequest{{ID: "banner"}, {ID: "strip"}},
		Context:    []engine.ContextField{{Name: "channel", Value: features.String("web")}, {Name: "page", Value: features.String("/")}},
		Log:        true,
	}
	logger := benchDecisionLog(b)
	ctx := context.Background()
	var d engine.Decision
	for range 2 {
		if err := e.Decide(ctx, &req, &d); err != nil {
			b.Fatal(err)
		}
		cache.Wait()
	}
	if !d.KnownCustomer || d.Placements[0].Items[0].Experiment != "banner_test" || !strings.Contains(d.ID, ".b") {
		b.Fatalf("warm-up decision: %+v", d)
	}
	decideLogged(b, e, &req, &d, logger)
}

// decideLogged times deciding req and logging it, and reports the share
// of decisions the log's full queue dropped.
func decideLogged(b *testing.B, e *engine.Engine, req *engine.Request, d *engine.Decision, logger *decisionlog.Logger) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.Decide(ctx, req, d); err != nil {
			b.Fatal(err)
		}
		logger.Log(req, d, time.Time{})
	}
	b.StopTimer()
	b.ReportMetric(float64(logger.Stats().Dropped)/float64(b.N), "dropped/op")
}

// benchDecisionLog starts a decision log writing to a file, closed when
// the benchmark ends.
func benchDecisionLog(b *testing.B) *decisionlog.Logger {
	cfg := decisionlog.DefaultConfig()
	cfg.Enabled = true
	cfg.File.Path = filepath.Join(b.TempDir(), "decisions.jsonl")
	logger, err := decisionlog.New(cfg, decisionlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logger.Close() })
	return logger
}

// The benchmarks' rulesets load: benchmarks do not run with the tests, so
// a demo change that breaks one (an id the benchmark also adds) is found
// here rather than by the next person measuring.
func TestBenchmarkRulesetsLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../configs/rules")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "bench_coupons.yaml"), benchCoupons())
	if _, err := rules.Load(dir, demoSchema); err != nil {
		t.Fatalf("BenchmarkDecideWithModel's rules: %v", err)
	}
	if _, err := rules.Load("../engine/testdata/learning/rules", "../engine/testdata/learning/features.yaml"); err != nil {
		t.Fatalf("BenchmarkDecideLearning's rules: %v", err)
	}
}
