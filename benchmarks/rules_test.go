package benchmarks

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// ruleCounts are the synthetic ruleset sizes.
var ruleCounts = []int{10, 100, 1000, 10000}

// BenchmarkDecideRules measures the whole Engine.Decide for cached
// customers against synthetic rulesets of growing size. Each op is one
// page view (one or two placements on one channel and page); ops cycle
// through every showcase customer on every page view. matched/op and
// ranked/op say, on average, how many rules matched and how many
// candidates were ranked per request.
func BenchmarkDecideRules(b *testing.B) {
	reqs := synthRequests()
	for _, n := range ruleCounts {
		var fx *decideFixture
		b.Run(fmt.Sprintf("rules=%d", n), func(sb *testing.B) {
			if fx == nil {
				fx = newDecideFixture(setupTB{sb, b}, reqs, func(dir string) { writeSyntheticRules(sb, dir, n) })
			}
			fx.run(sb, reqs)
		})
	}
}

// decideFixture is an engine built once per sub-benchmark, however many
// times the benchmark runs it, with the average work per request.
type decideFixture struct {
	e       *engine.Engine
	cache   *features.Cache
	matched float64
	ranked  float64
}

func newDecideFixture(tb testing.TB, reqs []engine.Request, write func(dir string)) *decideFixture {
	dir := tb.TempDir()
	write(dir)
	e, cache := benchEngine(tb, dir, reqs)
	matched, ranked := explainCounts(tb, e, reqs)
	return &decideFixture{e: e, cache: cache, matched: matched, ranked: ranked}
}

// run decides the requests in turn, b.N times in all, and checks that
// every customer stayed in the feature cache.
func (fx *decideFixture) run(b *testing.B, reqs []engine.Request) {
	ctx := context.Background()
	var d engine.Decision
	before := fx.cache.Stats().Misses
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fx.e.Decide(ctx, &reqs[i%len(reqs)], &d); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if fx.cache.Stats().Misses != before {
		b.Fatal("a customer fell out of the feature cache during the benchmark")
	}
	b.ReportMetric(fx.matched, "matched/op")
	b.ReportMetric(fx.ranked, "ranked/op")
}

// setupTB lets a sub-benchmark build its fixture once: failures are
// reported on the sub-benchmark, but temporary directories and cleanups
// belong to the parent, because the testing package runs a benchmark
// function several times and cleans up after each run.
type setupTB struct {
	testing.TB
	parent testing.TB
}

func (s setupTB) TempDir() string  { return s.parent.TempDir() }
func (s setupTB) Cleanup(f func()) { s.parent.Cleanup(f) }

// explainCounts decides every request once with explain and averages the
// matched rules and the ranked candidates (chosen or lost in arbitration).
func explainCounts(tb testing.TB, e *engine.Engine, reqs []engine.Request) (matched, ranked float64) {
	tb.Helper()
	var d engine.Decision
	for i := range reqs {
		req := reqs[i]
		req.Explain = true
		if err := e.Decide(context.Background(), &req, &d); err != nil {
			tb.Fatal(err)
		}
		for _, r := range d.Explain.Rules {
			if r.Outcome == engine.OutcomeMatched {
				matched++
			}
		}
		for _, c := range d.Explain.Candidates {
			if c.Reason == engine.ReasonChosen || (c.Reason == engine.ReasonLostArbitration && !strings.Contains(c.By, " via rule ")) {
				ranked++
			}
		}
	}
	return matched / float64(len(reqs)), ranked / float64(len(reqs))
}

// BenchmarkCompileRules measures rules.Load on the same synthetic rulesets:
// read the files and the schema, parse, type-check and compile every
// expression and template, and lint. rules/s is the load rate.
func BenchmarkCompileRules(b *testing.B) {
	for _, n := range ruleCounts {
		dir := ""
		b.Run(fmt.Sprintf("rules=%d", n), func(sb *testing.B) {
			if dir == "" {
				dir = b.TempDir()
				writeSyntheticRules(sb, dir, n)
			}
			sb.ReportAllocs()
			sb.ResetTimer()
			for i := 0; i < sb.N; i++ {
				rs, err := rules.Load(dir, demoSchema)
				if err != nil {
					sb.Fatal(err)
				}
				if len(rs.Rules) != n {
					sb.Fatalf("%d rules loaded, want %d", len(rs.Rules), n)
				}
			}
			sb.ReportMetric(float64(n)*float64(sb.N)/sb.Elapsed().Seconds(), "rules/s")
		})
	}
}

// arbitrationRules is the size of the arbitration rulesets.
const arbitrationRules = 1000

// writeArbitrationRules writes arbitrationRules rules that all offer their
// own touchpoint for product_recs on web, and of which exactly the first
// `matching` match customer c-000042 (13 orders, 1,290 EUR lifetime
// value). Every rule has the same condition shape,
// `customer.ltv >= 100 && customer.orders_total >= T`, evaluated in full
// whether T makes it true or false, so rulesets that differ only in
// `matching` cost the same to evaluate and differ in how many candidates
// reach arbitration.
func writeArbitrationRules(tb testing.TB, dir string, matching int) {
	tb.Helper()
	var s strings.Builder
	s.WriteString("placements:\n  - id: product_recs\n    count: 3\n    max_count: 5\n    fallback: recs_bestsellers\n")
	s.WriteString("touchpoints:\n  - id: recs_bestsellers\n    kind: content\n    placements: [product_recs]\n    content: {title: Bestsellers this week}\n")
	for i := 0; i < arbitrationRules; i++ {
		fmt.Fprintf(&s, "  - id: recs_%04d\n    kind: content\n    channels: [web, app, email]\n    placements: [product_recs]\n    value: %d\n    content: {title: 'Picks %d for {{ customer.first_name | default \"you\" }}', list: list_%d}\n",
			i, 1+(i*7)%20, i, i)
	}
	s.WriteString("rules:\n")
	for i := 0; i < arbitrationRules; i++ {
		threshold := 1 + i%10 // at most 13: matches
		if i >= matching {
			threshold = 14 + i%10 // above 13: does not
		}
		fmt.Fprintf(&s, "  - id: rule_%04d\n    when: customer.ltv >= 100 && customer.orders_total >= %d\n    offer: [recs_%04d]\n    priority: %d\n",
			i, threshold, i, []int{0, 10, 100}[i%3])
	}
	writeFile(tb, dir+"/recs.yaml", s.String())
}

// BenchmarkArbitration isolates arbitration, which has no exported entry
// point, by difference: the same 1,000-rule evaluation for one cached
// customer and one product_recs placement (5 items), with 5, 100 or all
// 1,000 rules matching. Rule evaluation costs the same in every variant,
// so the growth of ns/op over candidates=5 is the cost of collecting and
// ranking the extra candidates.
func BenchmarkArbitration(b *testing.B) {
	req := engine.Request{
		CustomerID: "c-000042", Now: benchNow,
		Placements: []engine.PlacementRequest{{ID: "product_recs", Count: 5}},
		Context: []engine.ContextField{
			{Name: "channel", Value: features.String("web")},
			{Name: "page", Value: features.String("/product/trail-shoe-2")},
		},
	}
	reqs := []engine.Request{req}
	for _, matching := range []int{5, 100, arbitrationRules} {
		var fx *decideFixture
		b.Run(fmt.Sprintf("candidates=%d", matching), func(sb *testing.B) {
			if fx == nil {
				fx = newDecideFixture(setupTB{sb, b}, reqs, func(dir string) { writeArbitrationRules(sb, dir, matching) })
				if int(fx.matched) != matching || int(fx.ranked) != matching {
					sb.Fatalf("%v rules matched and %v candidates ranked, want %d", fx.matched, fx.ranked, matching)
				}
			}
			fx.run(sb, reqs)
		})
	}
}

// BenchmarkRulesetFootprint reports the heap a compiled ruleset keeps,
// per rule, for the capacity plan: the heap in use after loading the
// synthetic ruleset (each rule with its own touchpoint) and collecting
// garbage, minus the heap in use before. Loading is the measured work; the
// figure that matters is the bytes/rule metric.
func BenchmarkRulesetFootprint(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			writeSyntheticRules(b, dir, n)
			var perRule float64
			for b.Loop() {
				before := heapInUse()
				rs, err := rules.Load(dir, demoSchema)
				if err != nil {
					b.Fatal(err)
				}
				after := heapInUse()
				if len(rs.Rules) != n {
					b.Fatalf("%d rules loaded, want %d", len(rs.Rules), n)
				}
				perRule = float64(after-before) / float64(n)
				runtime.KeepAlive(rs)
			}
			b.ReportMetric(perRule, "bytes/rule")
		})
	}
}
