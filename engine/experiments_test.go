package engine

import (
	"fmt"
	"math"
	"testing"

	"github.com/rs/zerolog"
)

func newExperimentEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := New(Config{RulesDir: "testdata/experiments/rules", SchemaPath: "testdata/experiments/features.yaml"}, mapSource{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Customers on /cart are split by the experiment: each variant's rule
// offers its coupon and the item says which test and variant it came
// from; the holdout sees only the fallback where the holdout applies, and
// everything elsewhere; customers the layer gives to the other experiment
// are not in this one, and their items count for that one, which covers
// every placement.
func TestExperimentSplitsTraffic(t *testing.T) {
	e := newExperimentEngine(t)
	x := &e.Ruleset().Experiments[e.Ruleset().Experiment("cart_coupon_test")]
	copyTest := &e.Ruleset().Experiments[e.Ruleset().Experiment("cart_copy_test")]
	counts := map[string]int{}
	const n = 20000
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("v-%05d", i)
		d := decide(t, e, Request{CustomerID: id, Placements: []PlacementRequest{{ID: "cart_banner"}, {ID: "footer"}}, Context: web("/cart")})
		banner, footer := d.Placements[0].Items, d.Placements[1].Items
		copyArm := copyTest.Assign(id)
		wantFooter := ""
		if copyArm.In {
			wantFooter = copyTest.Variants[copyArm.Variant].Name
		}
		if len(banner) != 1 || len(footer) != 1 || footer[0].Variant != wantFooter {
			t.Fatalf("%s: %+v, want the footer in cart_copy_test's variant %q", id, d.Placements, wantFooter)
		}
		it := banner[0]
		a := x.Assign(id)
		want := "coupon_5"
		wantExp, wantVariant := "", ""
		switch {
		case !a.In:
			wantExp, wantVariant = "cart_copy_test", wantFooter
		case a.Holdout:
			want, wantExp, wantVariant = "free_returns", "cart_coupon_test", VariantHoldout
		case x.Variants[a.Variant].Name == "ten_percent":
			want, wantExp, wantVariant = "coupon_10", "cart_coupon_test", "ten_percent"
		default:
			wantExp, wantVariant = "cart_coupon_test", "control"
		}
		if it.Touchpoint != want || it.Experiment != wantExp || it.Variant != wantVariant {
			t.Fatalf("%s (%+v): got %s %q %q, want %s %q %q", id, a, it.Touchpoint, it.Experiment, it.Variant, want, wantExp, wantVariant)
		}
		counts[wantVariant]++
	}
	// Half the layer, split 45/45/10.
	for v, share := range map[string]float64{"short": 25, "long": 25, "control": 22.5, "ten_percent": 22.5, VariantHoldout: 5} {
		if got := 100 * float64(counts[v]) / n; math.Abs(got-share) > 1.5 {
			t.Errorf("variant %q: %.2f%% of customers, want %v%%", v, got, share)
		}
	}
	// Off the cart page nobody enters the coupon test: variant() reads "".
	d := decide(t, e, Request{CustomerID: "v-00001", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/")})
	if it := d.Placements[0].Items[0]; it.Touchpoint != "coupon_5" || it.Experiment == "cart_coupon_test" {
		t.Errorf("off the cart page: %+v", it)
	}
}

// Assignment is the same after a reload and on another engine.
func TestExperimentIsSticky(t *testing.T) {
	a, b := newExperimentEngine(t), newExperimentEngine(t)
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		req := Request{CustomerID: fmt.Sprintf("s-%d", i), Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")}
		x, y := decide(t, a, req).Placements[0].Items[0], decide(t, b, req).Placements[0].Items[0]
		if x.Touchpoint != y.Touchpoint || x.Variant != y.Variant {
			t.Fatalf("%s: %+v on one engine, %+v on the other", req.CustomerID, x, y)
		}
	}
}

// Fixtures choose the variant they test; without one they are outside.
func TestExperimentFixtures(t *testing.T) {
	results := RunFixtures(newExperimentEngine(t).Ruleset())
	if len(results) != 3 {
		t.Fatalf("%d fixtures", len(results))
	}
	for _, r := range results {
		if !r.Passed {
			t.Error(r.Error())
		}
	}
}

// The decision log's record names the test and variant of what was shown.
func TestExperimentLogged(t *testing.T) {
	e := newExperimentEngine(t)
	x := &e.Ruleset().Experiments[e.Ruleset().Experiment("cart_coupon_test")]
	seen := map[string]bool{}
	for i := 0; i < 400 && len(seen) < 3; i++ {
		id := fmt.Sprintf("l-%d", i)
		a := x.Assign(id)
		if !a.In {
			continue
		}
		d := decide(t, e, Request{CustomerID: id, Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart"), Log: true})
		want := VariantHoldout
		if !a.Holdout {
			want = x.Variants[a.Variant].Name
		}
		var chosen []LoggedCandidate
		for _, l := range d.Logged {
			if l.Chosen {
				chosen = append(chosen, l)
			}
		}
		if len(chosen) != 1 || chosen[0].Experiment != "cart_coupon_test" || chosen[0].Variant != want {
			t.Fatalf("%s: logged %+v, want variant %s", id, d.Logged, want)
		}
		seen[want] = true
	}
	if len(seen) != 3 {
		t.Errorf("saw variants %v, want control, ten_percent and holdout", seen)
	}
}
