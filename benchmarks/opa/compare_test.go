package opabench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

const (
	schemaPath    = "../../configs/features.yaml"
	demoRules     = "../../configs/rules"
	demoCustomers = "../../configs/demo/customers.jsonl"
	sliceRules    = "testdata/rules"
	policyPath    = "testdata/home_hero.rego"
	policyQuery   = "data.touchpoint.home_hero.decision"
)

// now is an ordinary weekday, when neither scheduled demo campaign runs.
var now = time.Date(2026, 6, 10, 10, 0, 0, 0, time.UTC)

// answer is what both engines decide for home_hero.
type answer struct {
	Touchpoint string
	Rule       string
	Score      float64
	Fallback   bool
}

func (a answer) same(b answer) bool {
	return a.Touchpoint == b.Touchpoint && a.Rule == b.Rule && a.Fallback == b.Fallback &&
		math.Abs(a.Score-b.Score) <= 1e-9*math.Max(1, math.Abs(a.Score))
}

// mapSource serves records already decoded, so the Touchpoint side reads
// features as cheaply as OPA receives its prepared input.
type mapSource map[string]*features.Record

func (m mapSource) Lookup(_ context.Context, id string) (*features.Record, error) { return m[id], nil }
func (m mapSource) Ping(context.Context) error                                    { return nil }

// loadCustomers decodes every demo customer.
func loadCustomers(tb testing.TB) (mapSource, []string) {
	tb.Helper()
	store, err := features.OpenJSONL(demoCustomers)
	if err != nil {
		tb.Fatal(err)
	}
	src := mapSource{}
	var ids []string
	for i := 1; i <= store.Len(); i++ {
		id := fmt.Sprintf("c-%06d", i)
		rec, err := store.Lookup(context.Background(), id)
		if err != nil || rec == nil {
			tb.Fatalf("demo customer %s: %v", id, err)
		}
		src[id] = rec
		ids = append(ids, id)
	}
	return src, ids
}

func newEngine(tb testing.TB, dir string, src engine.FeatureSource, opts ...engine.Option) *engine.Engine {
	tb.Helper()
	e, err := engine.New(engine.Config{RulesDir: dir, SchemaPath: schemaPath}, src, zerolog.Nop(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// preparePolicy compiles the Rego policy once, as a service would at load.
func preparePolicy(tb testing.TB) rego.PreparedEvalQuery {
	tb.Helper()
	src, err := os.ReadFile(policyPath)
	if err != nil {
		tb.Fatal(err)
	}
	pq, err := rego.New(rego.Query(policyQuery), rego.Module(policyPath, string(src))).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return pq
}

// opaInput is the Rego input for one customer on one channel: every
// feature of the schema with the customer's value or the schema default,
// exactly as Touchpoint binds them.
func opaInput(schema *rules.Schema, rec *features.Record, channel string) map[string]any {
	customer := make(map[string]any, len(schema.Customer))
	for _, f := range schema.Customer {
		v := f.Default
		if rec != nil {
			if got, ok := rec.Values.Get(f.Name); ok && got.Kind == f.Type.Kind() {
				v = got
			}
		}
		switch f.Type {
		case rules.TypeNumber:
			customer[f.Name] = v.Num
		case rules.TypeString:
			customer[f.Name] = v.Str
		case rules.TypeBool:
			customer[f.Name] = v.Bool
		case rules.TypeList:
			list := make([]any, len(v.List))
			for i, s := range v.List {
				list[i] = s
			}
			customer[f.Name] = list
		}
	}
	return map[string]any{
		"customer": customer,
		"known":    rec != nil,
		"context":  map[string]any{"channel": channel, "page": "/"},
	}
}

func touchpointRequest(id, channel string) engine.Request {
	return engine.Request{
		CustomerID: id,
		Placements: []engine.PlacementRequest{{ID: "home_hero", Count: 1}},
		Context: []engine.ContextField{
			{Name: "channel", Value: features.String(channel)},
			{Name: "page", Value: features.String("/")},
		},
		Now: now,
	}
}

func touchpointAnswer(tb testing.TB, e *engine.Engine, req *engine.Request, d *engine.Decision) answer {
	tb.Helper()
	if err := e.Decide(context.Background(), req, d); err != nil {
		tb.Fatal(err)
	}
	items := d.Placements[0].Items
	if len(items) == 0 {
		return answer{}
	}
	return answer{Touchpoint: items[0].Touchpoint, Rule: items[0].Rule, Score: items[0].Score, Fallback: items[0].Fallback}
}

func opaAnswer(tb testing.TB, rs rego.ResultSet) answer {
	tb.Helper()
	if len(rs) == 0 {
		return answer{}
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		tb.Fatalf("decision is %T, not an object", rs[0].Expressions[0].Value)
	}
	var a answer
	a.Touchpoint, _ = m["touchpoint"].(string)
	a.Rule, _ = m["rule"].(string)
	a.Fallback, _ = m["fallback"].(bool)
	if n, ok := m["score"].(json.Number); ok {
		a.Score, _ = n.Float64()
	}
	return a
}

// channels are where home_hero is shown.
var channels = []string{"web", "app"}

// TestSameAnswers checks that the Rego policy and the Touchpoint slice
// decide home_hero identically (touchpoint, rule, score, fallback) for
// every demo customer and an unknown visitor, on web and in the app.
func TestSameAnswers(t *testing.T) {
	src, ids := loadCustomers(t)
	ids = append(ids, "visitor-1")
	e := newEngine(t, sliceRules, src)
	schema := e.Ruleset().Schema
	pq := preparePolicy(t)
	var d engine.Decision
	seen := map[string]int{}
	for _, id := range ids {
		for _, ch := range channels {
			req := touchpointRequest(id, ch)
			want := touchpointAnswer(t, e, &req, &d)
			rs, err := pq.Eval(context.Background(), rego.EvalInput(opaInput(schema, src[id], ch)))
			if err != nil {
				t.Fatal(err)
			}
			if got := opaAnswer(t, rs); !got.same(want) {
				t.Fatalf("%s on %s: Touchpoint %+v, Rego %+v", id, ch, want, got)
			}
			seen[want.Rule]++
		}
	}
	// Every rule that offers something must have decided some of them,
	// or the comparison would not cover it.
	for _, r := range e.Ruleset().Rules {
		if !r.IsSuppress() && seen[r.ID] == 0 {
			t.Errorf("rule %s never won: the inputs do not cover it", r.ID)
		}
	}
	t.Logf("%d answers compared; winners by rule: %v", 2*len(ids), seen)
}

// unlimitedBudgets never runs out.
type unlimitedBudgets struct{}

func (unlimitedBudgets) Consume(context.Context, string, int32, int64, int64) (bool, error) {
	return true, nil
}

// TestSliceMatchesDemo checks that the slice decides home_hero exactly as
// the whole demo ruleset does, so the comparison is about the demo's real
// rules. The demo's contact policy (caps, budgets, quiet hours) needs
// per-customer history and shared budget state, which neither side of the
// comparison models: here the customers have no history and budgets are
// never spent, so the policy never intervenes.
func TestSliceMatchesDemo(t *testing.T) {
	src, ids := loadCustomers(t)
	ids = append(ids, "visitor-1")
	slice := newEngine(t, sliceRules, src)
	demo := newEngine(t, demoRules, src, engine.WithBudgets(unlimitedBudgets{}))
	var d engine.Decision
	for _, id := range ids {
		for _, ch := range channels {
			req := touchpointRequest(id, ch)
			a, b := touchpointAnswer(t, slice, &req, &d), touchpointAnswer(t, demo, &req, &d)
			if !a.same(b) {
				t.Fatalf("%s on %s: slice %+v, demo ruleset %+v", id, ch, a, b)
			}
		}
	}
}

// benchCase is one request, prepared for both engines.
type benchCase struct {
	req    engine.Request
	input  map[string]any
	parsed ast.Value
}

// benchCases are the showcase customers, the first demo customers and an
// unknown visitor, alternating web and app.
func benchCases(tb testing.TB, src mapSource, schema *rules.Schema) []benchCase {
	ids := []string{"c-000042", "c-000007", "c-000101", "c-000256", "c-000314",
		"c-000500", "c-000777", "c-001234", "c-002026", "visitor-1"}
	for i := 1; len(ids) < 32; i++ {
		ids = append(ids, fmt.Sprintf("c-%06d", i))
	}
	cases := make([]benchCase, len(ids))
	for i, id := range ids {
		ch := channels[i%len(channels)]
		in := opaInput(schema, src[id], ch)
		parsed, err := ast.InterfaceToValue(in)
		if err != nil {
			tb.Fatal(err)
		}
		cases[i] = benchCase{req: touchpointRequest(id, ch), input: in, parsed: parsed}
	}
	return cases
}

// BenchmarkHomeHero decides home_hero with the same rules, on the same
// inputs, in Touchpoint and in OPA. Touchpoint's op is the whole
// Engine.Decide (validate, read features from an in-memory map, bind,
// evaluate, suppress, arbitrate, and render an empty content object); OPA's
// op is one Eval of the prepared query, with the input as a Go map
// (opa_rego) or already converted to an AST value (opa_rego_parsed_input).
// Both sides are checked to agree on every input before timing.
func BenchmarkHomeHero(b *testing.B) {
	src, _ := loadCustomers(b)
	e := newEngine(b, sliceRules, src)
	pq := preparePolicy(b)
	cases := benchCases(b, src, e.Ruleset().Schema)
	ctx := context.Background()
	var d engine.Decision
	for i := range cases {
		want := touchpointAnswer(b, e, &cases[i].req, &d)
		for _, opt := range []rego.EvalOption{rego.EvalInput(cases[i].input), rego.EvalParsedInput(cases[i].parsed)} {
			rs, err := pq.Eval(ctx, opt)
			if err != nil {
				b.Fatal(err)
			}
			if got := opaAnswer(b, rs); !got.same(want) {
				b.Fatalf("%s: Touchpoint %+v, Rego %+v", cases[i].req.CustomerID, want, got)
			}
		}
	}

	b.Run("touchpoint", func(b *testing.B) {
		var d engine.Decision
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := e.Decide(ctx, &cases[i%len(cases)].req, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("opa_rego", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			rs, err := pq.Eval(ctx, rego.EvalInput(cases[i%len(cases)].input))
			if err != nil || len(rs) == 0 {
				b.Fatal(err, len(rs))
			}
		}
	})
	b.Run("opa_rego_parsed_input", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			rs, err := pq.Eval(ctx, rego.EvalParsedInput(cases[i%len(cases)].parsed))
			if err != nil || len(rs) == 0 {
				b.Fatal(err, len(rs))
			}
		}
	})
}
