package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
)

// Explain says which terms of a false condition failed, segments
// expanded, and for a rule evaluated per touchpoint, for which one.
func TestExplainFailedTerms(t *testing.T) {
	src := mapSource{"big-cart": {ID: "big-cart", Values: features.NewValues(map[string]features.Value{
		"cart_abandon_7d": features.Number(1), "cart_value": features.Number(649), "coupon_propensity": features.Number(0.6),
		"consent_marketing": features.Bool(true), "lifecycle": features.String("active"), "stage": features.String("purchase"),
	})}}
	e, err := New(Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml"}, src, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	explain := func(channel string) map[string]RuleTrace {
		d := decide(t, e, Request{CustomerID: "big-cart", Explain: true, Placements: []PlacementRequest{{ID: "cart_banner"}},
			Context: []ContextField{{Name: "channel", Value: features.String(channel)}, {Name: "page", Value: features.String("/cart")}}})
		out := map[string]RuleTrace{}
		for _, r := range d.Explain.Rules {
			if r.Outcome == OutcomeMatched && len(r.FailedTerms) > 0 {
				t.Errorf("a matched rule has failed terms: %+v", r)
			}
			out[r.Rule] = r
		}
		return out
	}
	terms := func(list []TermValue) string {
		out := ""
		for _, tv := range list {
			out += fmt.Sprintf("[%s=%v%s", tv.Term, tv.Value, tv.Error)
			if tv.Segment != "" {
				out += " " + tv.Segment + ":" + fmt.Sprint(len(tv.Terms))
			}
			out += "]"
		}
		return out
	}
	web := explain("web")
	nudge := web["cart_shipping_nudge"]
	if nudge.Outcome != OutcomeConditionFalse || nudge.TermsOp != "and" ||
		terms(nudge.FailedTerms) != `[context.page == "/cart"=true][customer.cart_value >= 40=true][customer.cart_value < 60=false]` {
		t.Errorf("cart_shipping_nudge: %s %s", nudge.TermsOp, terms(nudge.FailedTerms))
	}
	if email := web["cart_abandon_email"]; terms(email.FailedTerms) != `[context.channel == "email"=false][segment("cart_abandoner")=true cart_abandoner:2]` {
		t.Errorf("cart_abandon_email on the web: %s", terms(email.FailedTerms))
	}
	// The coupon rules read the touchpoint's discount through the model,
	// so they are evaluated per touchpoint: the one of the other arm
	// explains itself for its coupon.
	falseCoupons := 0
	for _, id := range []string{"cart_abandon_coupon", "cart_abandon_coupon_15"} {
		if r := web[id]; r.Outcome == OutcomeConditionFalse {
			falseCoupons++
			anyFalse := false
			for _, tv := range r.FailedTerms {
				anyFalse = anyFalse || !tv.Value && tv.Error == ""
			}
			if r.TermsTouchpoint == "" || len(r.FailedTerms) < 3 || !anyFalse || !strings.HasPrefix(r.FailedTerms[len(r.FailedTerms)-1].Term, `model("coupon_response")`) {
				t.Errorf("%s on the web: %s %s", id, r.TermsTouchpoint, terms(r.FailedTerms))
			}
		}
	}
	if falseCoupons != 1 {
		t.Errorf("one coupon rule should match for this customer's arm, one not: %d false", falseCoupons)
	}
	// On email neither coupon can show there: no touchpoint to explain for.
	for id, r := range explain("email") {
		if (id == "cart_abandon_coupon" || id == "cart_abandon_coupon_15") && len(r.FailedTerms) != 0 {
			t.Errorf("%s on email: %+v", id, r)
		}
	}
}
