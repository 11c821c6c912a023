package server

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/touchpoint-dev/touchpoint/engine"
)

func TestAppendRawJSON(t *testing.T) {
	if got := string(appendRawJSON(nil, nil)); got != "{}" {
		t.Errorf("empty content = %s", got)
	}
	in := `{"html":"<a href=\"x\">&</a>","ls":"a` + "\u2028" + `b"}`
	got := appendRawJSON(nil, []byte(in))
	if !json.Valid(got) || strings.ContainsAny(string(got), "<>&\u2028") {
		t.Errorf("appendRawJSON = %s", got)
	}
	var a, b map[string]string
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &b); err != nil || a["html"] != b["html"] || a["ls"] != b["ls"] {
		t.Errorf("content changed meaning: %v vs %v (%v)", a, b, err)
	}

}

func sampleDecision() (*engine.Request, *engine.Decision) {
	req := &engine.Request{
		CustomerID: "c-000042",
		Placements: []engine.PlacementRequest{{ID: "cart_banner", Count: 1}, {ID: "home_hero"}, {ID: "footer"}},
	}
	d := &engine.Decision{
		ID:            "01J0Z6V3K9Q7X2M4N8P5R1S6T3",
		CustomerID:    "c-000042",
		Ruleset:       "2024-06-01.1",
		KnownCustomer: true,
		Placements: []engine.PlacementResult{
			{ID: "cart_banner", Items: []engine.Item{{Touchpoint: "cart_coupon_10", Kind: "coupon", Rule: "cart_abandon_coupon", Score: 8,
				Content: []byte(`{"headline":"Still thinking it over?","code":"SAVE10","discount_pct":10}`)}}},
			{ID: "home_hero", Items: []engine.Item{{Touchpoint: "generic_hero", Kind: "banner", Fallback: true, Score: 0.25,
				Content: []byte(`{"image":"/img/hero.jpg"}`)}}},
			{ID: "footer"},
		},
		Explain: &engine.Explanation{
			Rules: []engine.RuleTrace{
				{Rule: "cart_abandon_coupon", Action: "offer", Outcome: engine.OutcomeMatched, Score: 2},
				{Rule: "vip_only", Action: "suppress", Outcome: engine.OutcomeConditionFalse, TermsOp: "and", FailedTerms: []engine.TermValue{
					{Term: `context.page == "/cart"`, Value: true},
					{Term: `segment("vip")`, Segment: "vip", Terms: []engine.TermValue{{Term: "customer.ltv > 5000"}, {Term: "customer.x / 0 > 1", Error: "division by zero"}}},
				}},
			},
			Candidates: []engine.CandidateTrace{
				{Placement: "cart_banner", Touchpoint: "cart_coupon_10", Rule: "cart_abandon_coupon", Priority: 10, Score: 8, Chosen: true, Reason: engine.ReasonChosen},
				{Placement: "cart_banner", Touchpoint: "cart_coupon_20", Rule: "cart_abandon_coupon", Priority: 5, Score: 4, Reason: engine.ReasonLostArbitration, By: "cart_coupon_10"},
			},
		},
	}
	return req, d
}

func TestAppendDecision(t *testing.T) {
	req, d := sampleDecision()
	want := `{"decision_id":"01J0Z6V3K9Q7X2M4N8P5R1S6T3","customer_id":"c-000042","ruleset":"2024-06-01.1","known_customer":true,` +
		`"placements":{"cart_banner":[{"touchpoint":"cart_coupon_10","kind":"coupon","rule":"cart_abandon_coupon","score":8,` +
		`"content":{"headline":"Still thinking it over?","code":"SAVE10","discount_pct":10}}],` +
		`"home_hero":[{"touchpoint":"generic_hero","kind":"banner","fallback":true,"score":0.25,"content":{"image":"/img/hero.jpg"}}],` +
		`"footer":[]}}`
	if got := string(appendDecision(nil, req, d)); got != want {
		t.Errorf("decision\n got %s\nwant %s", got, want)
	}

	req.Explain = true
	out := appendDecision(nil, req, d)
	var v struct {
		Explain struct {
			Rules      []map[string]any `json:"rules"`
			Candidates []map[string]any `json:"candidates"`
		} `json:"explain"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("explain decision is not JSON: %v\n%s", err, out)
	}
	if len(v.Explain.Rules) != 2 || len(v.Explain.Candidates) != 2 || v.Explain.Candidates[1]["by"] != "cart_coupon_10" {
		t.Errorf("explain = %+v", v.Explain)
	}
	wantTerms := `"failed_terms":{"op":"and","terms":[{"term":"context.page == \"/cart\"","value":true},` +
		`{"term":"segment(\"vip\")","value":false,"segment":"vip","terms":[{"term":"customer.ltv \u003e 5000","value":false},` +
		`{"term":"customer.x / 0 \u003e 1","error":"division by zero"}]}]}`
	if !strings.Contains(string(out), wantTerms) {
		t.Errorf("failed terms: want %s in\n%s", wantTerms, out)
	}

	// Strings from the request and the ruleset are escaped wherever they
	// appear, and non-finite scores cannot break the document.
	tricky := "a\"</script>&\u2028\x00\xff"
	req = &engine.Request{CustomerID: tricky, Placements: []engine.PlacementRequest{{ID: tricky}}}
	d = &engine.Decision{ID: tricky, Ruleset: tricky, Placements: []engine.PlacementResult{{ID: tricky,
		Items: []engine.Item{{Touchpoint: tricky, Kind: tricky, Rule: tricky, Score: math.NaN(), Content: []byte(`{"x":"</script>"}`)}}}}}
	out = appendDecision(nil, req, d)
	if !json.Valid(out) || strings.ContainsAny(string(out), "<>&\u2028\x00") {
		t.Errorf("unsafe output: %s", out)
	}
	if !strings.Contains(string(out), `"score":0,`) {
		t.Errorf("NaN score not written as 0: %s", out)
	}
}

// TestAppendDegradedReasons pins the wire form of a degraded answer: the
// flag, then the reasons as stable strings clients can switch on.
func TestAppendDegradedReasons(t *testing.T) {
	cases := []struct {
		name    string
		reasons engine.DegradedReason
		want    string
	}{
		{"feature store", engine.DegradedFeatureStore, `"known_customer":false,"degraded":true,"degraded_reasons":["feature_store"],"placements"`},
		{"rule deadline", engine.DegradedRuleDeadline, `"known_customer":false,"degraded":true,"degraded_reasons":["rule_deadline"],"placements"`},
		{"both", engine.DegradedFeatureStore | engine.DegradedRuleDeadline, `"degraded":true,"degraded_reasons":["feature_store","rule_deadline"],"placements"`},
		{"flag without a reason", 0, `"known_customer":false,"degraded":true,"placements"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &engine.Decision{ID: "d", Ruleset: "r", Degraded: true, DegradedReasons: tc.reasons}
			out := appendDecision(nil, &engine.Request{CustomerID: "c"}, d)
			if !json.Valid(out) || !strings.Contains(string(out), tc.want) {
				t.Errorf("got %s, want it to contain %s", out, tc.want)
			}
		})
	}
	d := &engine.Decision{ID: "d", Ruleset: "r", Degraded: true, DegradedReasons: engine.DegradedRuleDeadline}
	req := &engine.Request{CustomerID: "c"}
	buf := appendDecision(nil, req, d)
	if n := testing.AllocsPerRun(100, func() { buf = appendDecision(buf[:0], req, d) }); n != 0 {
		t.Errorf("encoding a degraded decision allocates %v times", n)
	}
}

func BenchmarkEncodeDecision(b *testing.B) {
	req, d := sampleDecision()
	for _, explain := range []bool{false, true} {
		name := "plain"
		if explain {
			name = "explain"
		}
		b.Run(name, func(b *testing.B) {
			req.Explain = explain
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = appendDecision(buf[:0], req, d)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// staticDecider answers from a prepared decision without allocating, so the
// benchmark below measures the server alone.
type staticDecider struct{ d *engine.Decision }

func (s staticDecider) Decide(_ context.Context, _ *engine.Request, d *engine.Decision) error {
	d.ID, d.CustomerID, d.Ruleset, d.KnownCustomer = s.d.ID, s.d.CustomerID, s.d.Ruleset, s.d.KnownCustomer
	d.Placements = append(d.Placements[:0], s.d.Placements...)
	return nil
}
func (staticDecider) Reload() error                       { return nil }
func (staticDecider) Status() engine.Status               { return engine.Status{} }
func (staticDecider) Ready(context.Context) error         { return nil }
func (staticDecider) RuleErrors() []engine.RuleErrorCount { return nil }

// BenchmarkHandleDecide runs the whole handler (routing, CORS, decode,
// decide, encode, metrics) in process, without the network.
func BenchmarkHandleDecide(b *testing.B) {
	_, d := sampleDecision()
	benchHandleDecide(b, New(testConfig(), staticDecider{d: d}, Options{}), "https://shop.example.com")
}

// benchHandleDecide measures s.handle on sampleRequest, sent from origin
// (none when empty).
func benchHandleDecide(b *testing.B, s *Server, origin string) {
	var req fasthttp.Request
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI("/v1/decide")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.SetBodyString(sampleRequest)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		s.handle(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
