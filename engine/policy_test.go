package engine

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
)

func newPolicyEngine(t *testing.T, opts ...Option) *Engine {
	t.Helper()
	e, err := New(Config{RulesDir: "testdata/policy/rules", SchemaPath: "testdata/policy/features.yaml"}, testSource(), zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func banner(channel, page string) Request {
	return Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "banner"}},
		Context: []ContextField{{Name: "channel", Value: features.String(channel)}, {Name: "page", Value: features.String(page)}},
		Now:     time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)}
}

func TestPolicyFixtures(t *testing.T) {
	e := newPolicyEngine(t)
	for _, r := range RunFixtures(e.Ruleset()) {
		if !r.Passed {
			t.Error(r.Error())
		}
	}
}

func TestBudgetIsNeverOverspent(t *testing.T) {
	e := newPolicyEngine(t, WithBudgets(features.NewMemoryBudgets()))
	var mu sync.Mutex
	issued := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d Decision
			for i := 0; i < 25; i++ {
				req := banner("web", "/")
				if err := e.Decide(context.Background(), &req, &d); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				issued[d.Placements[0].Items[0].Touchpoint]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Budget total 2: exactly two coupons, then the next best candidate.
	if issued["coupon"] != 2 || issued["offer"] != 198 {
		t.Errorf("issued = %v, want coupon 2 and offer 198", issued)
	}
	req := banner("web", "/")
	req.Explain = true
	d := decide(t, e, req)
	for _, c := range d.Explain.Candidates {
		if c.Touchpoint == "coupon" && (c.Reason != ReasonOverBudget || c.By != "budget spent") {
			t.Errorf("coupon after the budget is spent: %+v", c)
		}
	}
}

func TestBudgetedTouchpointsNeedABudgetStore(t *testing.T) {
	e := newPolicyEngine(t)
	req := banner("web", "/")
	if got := chosen(decide(t, e, req), "banner"); !slices.Equal(got, []string{"offer"}) {
		t.Errorf("without a budget store the coupon must not be issued; got %v", got)
	}
}

func TestCapsFailClosedWhenCountersCannotBeRead(t *testing.T) {
	e := newPolicyEngine(t, WithBudgets(features.NewMemoryBudgets()))
	req := banner("web", "/")
	req.CustomerID = "broken-store"
	d := decide(t, e, req)
	// Every touchpoint falls under the global cap, so nothing may be shown.
	if !d.Degraded || len(d.Placements[0].Items) != 0 {
		t.Errorf("degraded decision = %+v", d.Placements)
	}
}

// TestDecisionCapsAreExactUnderConcurrency decides for one customer from
// many goroutines: the daily decision cap of 1 issues the deal exactly once.
func TestDecisionCapsAreExactUnderConcurrency(t *testing.T) {
	overlay := features.NewOverlay(testSource(), nil)
	e := newPolicyEngine(t, WithWriter(overlay), WithBudgets(overlay))
	var deals atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d Decision
			for i := 0; i < 10; i++ {
				req := banner("web", "/deals")
				if err := e.Decide(context.Background(), &req, &d); err != nil {
					t.Error(err)
					return
				}
				if d.Placements[0].Items[0].Touchpoint == "daily_deal" {
					deals.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if deals.Load() != 1 {
		t.Errorf("daily_deal issued %d times, want exactly 1 (cap: 1 decision per day)", deals.Load())
	}
	req := banner("web", "/deals")
	req.Explain = true
	d := decide(t, e, req)
	found := false
	for _, c := range d.Explain.Candidates {
		if c.Touchpoint == "daily_deal" {
			found = true
			if c.Reason != ReasonCapped || !strings.Contains(c.By, "tp:daily_deal") {
				t.Errorf("daily_deal after its cap: %+v", c)
			}
		}
	}
	if !found {
		t.Error("explain does not mention daily_deal")
	}
}

// A preview spends no budget and reserves no decision: the coupon shows
// in every preview and the budget is whole for the real decisions after.
func TestPreviewHasNoSideEffects(t *testing.T) {
	e := newPolicyEngine(t, WithBudgets(features.NewMemoryBudgets()))
	for i := 0; i < 5; i++ {
		req := banner("web", "/")
		req.Preview = true
		if tp := decide(t, e, req).Placements[0].Items[0].Touchpoint; tp != "coupon" {
			t.Fatalf("preview %d showed %s", i, tp)
		}
	}
	issued := 0
	for i := 0; i < 5; i++ {
		if decide(t, e, banner("web", "/")).Placements[0].Items[0].Touchpoint == "coupon" {
			issued++
		}
	}
	if issued != 2 {
		t.Errorf("the budget of 2 issued %d coupons after 5 previews", issued)
	}
}
