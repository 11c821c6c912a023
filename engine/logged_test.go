package engine

import (
	"context"
	"math"
	"testing"
)

// Decision.Logged lists what each placement considered, with the
// propensity model's output, without explain and without allocating.
func TestLoggedCandidates(t *testing.T) {
	e := newModelEngine(t)
	req := Request{CustomerID: "gold-100", Placements: []PlacementRequest{{ID: "cart_banner", Count: 2}, {ID: "hero"}}, Context: web("/cart"), Log: true}
	d := decide(t, e, req)
	if d.Explain != nil {
		t.Fatal("logging must not need explain")
	}
	want := []struct {
		tp, reason string
		chosen     bool
		model      float64
	}{
		{"coupon_10", ReasonChosen, true, sigmoid(1)},
		{"coupon_20", ReasonChosen, true, sigmoid(2)},
		{"coupon_big", ReasonLostArbitration, false, sigmoid(4)},
	}
	if len(d.Logged) != len(want) {
		t.Fatalf("logged %+v", d.Logged)
	}
	for i, w := range want {
		l := d.Logged[i]
		if l.Placement != 0 || l.Touchpoint != w.tp || l.Reason != w.reason || l.Chosen != w.chosen || l.Rule != "cart_coupons" ||
			l.Model != "redeem" || math.Abs(l.ModelOutput-w.model) > 1e-12 || l.Score <= 0 {
			t.Errorf("logged[%d] = %+v, want %+v", i, l, w)
		}
		if wantP := map[bool]float64{true: 1, false: 0}[w.chosen]; l.Propensity != wantP {
			t.Errorf("logged[%d] propensity %v, want %v", i, l.Propensity, wantP)
		}
	}
	req.Log = false
	if d := decide(t, e, req); len(d.Logged) != 0 {
		t.Errorf("logged without Log: %+v", d.Logged)
	}
	req.Log = true
	var dd Decision
	ctx := context.Background()
	_ = e.Decide(ctx, &req, &dd)
	if n := testing.AllocsPerRun(200, func() { _ = e.Decide(ctx, &req, &dd) }); n != 0 {
		t.Errorf("a logged decision allocates %v times", n)
	}
}

// Held-back candidates and fallbacks are logged too.
func TestLoggedFallbackAndHeldBack(t *testing.T) {
	e := newTestEngine(t, "")
	d := decide(t, e, Request{CustomerID: "c-risk", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart"), Log: true})
	found := false
	for _, l := range d.Logged {
		if l.Touchpoint == "cart_coupon_10" && l.Reason == ReasonSuppressed && !l.Chosen {
			found = true
		}
	}
	if !found {
		t.Errorf("the suppressed coupon is not logged: %+v", d.Logged)
	}
	d = decide(t, e, Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/home"), Log: true})
	if len(d.Logged) != 1 || d.Logged[0].Reason != ReasonFallback || !d.Logged[0].Chosen || d.Logged[0].Propensity != 1 || d.Logged[0].Touchpoint != "free_shipping" {
		t.Errorf("fallback: %+v", d.Logged)
	}
}
