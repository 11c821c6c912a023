package engine

import (
	"context"
	"slices"
	"sync"
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

type countingWriter struct {
	features.Writer // only CountDecisions is used
	mu              sync.Mutex
	subjects        []string
}

func (w *countingWriter) CountDecisions(_ context.Context, id string, subjects []string, _ time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subjects = append(w.subjects, subjects...)
	return nil
}

func TestDecisionsAreCountedForDecisionCaps(t *testing.T) {
	w := &countingWriter{}
	e := newPolicyEngine(t, WithWriter(w))
	decide(t, e, banner("web", "/deals"))
	for _, want := range []string{"tp:daily_deal", "kind:offer", "rule:deals", "channel:web", "all"} {
		if !slices.Contains(w.subjects, want) {
			t.Errorf("counted subjects %v lack %s", w.subjects, want)
		}
	}
}
