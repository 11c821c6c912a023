package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// A what-if preview decides for a changed customer; the stored record,
// shared through the cache, stays as it was, and a decision that is not
// a preview ignores what_if.
func TestWhatIfChangesOnlyThePreview(t *testing.T) {
	now := time.Date(2026, 6, 10, 10, 0, 0, 0, time.UTC)
	var counters []features.Counter
	for _, subject := range features.Subjects("cart_coupon_10", "coupon", "", "web") {
		counters = append(counters, features.Counter{Event: "dismiss", Subject: subject, Day: features.Day(now) - 3, Count: 2})
	}
	stored := &features.Record{ID: "c-000042", Values: features.NewValues(map[string]features.Value{
		"first_name": features.String("Mei"), "cart_abandon_7d": features.Number(1), "cart_value": features.Number(89.9),
		"cart_items": features.Number(3), "coupon_propensity": features.Number(0.62), "consent_marketing": features.Bool(true),
		"consent_email": features.Bool(true), "days_to_birthday": features.Number(3), "tier": features.String("gold"), "lifecycle": features.String("active"), "stage": features.String("use"),
	}), Counters: counters, Consent: map[string]features.Consent{"email": {Granted: true, At: now.Add(-time.Hour)}}}
	e, err := New(Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml"}, mapSource{"c-000042": stored}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(channel, placement string, preview bool, w *WhatIf) *Decision {
		req := Request{CustomerID: "c-000042", Now: now, Preview: preview, WhatIf: w, Explain: true,
			Placements: []PlacementRequest{{ID: placement}},
			Context:    []ContextField{{Name: "channel", Value: features.String(channel)}, {Name: "page", Value: features.String("/cart")}}}
		return decide(t, e, req)
	}

	// Two coupons dismissed this month: coupon_fatigue holds the coupon.
	if got := chosen(ask("web", "cart_banner", true, nil), "cart_banner"); !slices.Equal(got, []string{"cart_free_returns_info"}) {
		t.Fatalf("stored customer on /cart = %v, want the fallback (coupon fatigue)", got)
	}
	noHistory := &WhatIf{NoHistory: true}
	if d := ask("web", "cart_banner", true, noHistory); !slices.Equal(chosen(d, "cart_banner"), []string{"cart_coupon_10"}) {
		t.Errorf("without history = %v, want cart_coupon_10\n%+v\n%+v", chosen(d, "cart_banner"), d.Explain.Rules, d.Explain.Candidates)
	}
	if got := chosen(ask("web", "cart_banner", false, noHistory), "cart_banner"); !slices.Equal(got, []string{"cart_free_returns_info"}) {
		t.Errorf("a real decision with what_if = %v: what_if must be ignored outside previews", got)
	}

	// Recorded consent for email lets the abandoned-cart email through;
	// refusing it in a what-if stops it for want of consent.
	email := ask("email", "email_slot", true, &WhatIf{NoHistory: true})
	refused := ask("email", "email_slot", true, &WhatIf{NoHistory: true, Consent: map[string]bool{"email": false}})
	if a, b := chosen(email, "email_slot"), chosen(refused, "email_slot"); slices.Equal(a, b) {
		t.Errorf("refusing email consent changed nothing: %v", a)
	}
	held := false
	for _, c := range refused.Explain.Candidates {
		if c.Touchpoint == "birthday_gift" && !c.Chosen {
			held = c.Reason == ReasonNoConsent || c.Reason == ReasonSuppressed && c.By == "email_needs_consent"
		}
	}
	if !held {
		t.Errorf("the birthday coupon was not held back for want of consent: %+v", refused.Explain.Candidates)
	}

	// Refusing email also turns off the consent feature rules read: the
	// abandoned-cart reminder, a message the policy does not gate, is held
	// back by the rule that reads customer.consent_email.
	noBirthday := map[string]features.Value{}
	for k, v := range stored.Values.All() {
		noBirthday[k] = v
	}
	delete(noBirthday, "days_to_birthday")
	reminder := ask("email", "email_slot", true, &WhatIf{Features: noBirthday})
	if got := chosen(reminder, "email_slot"); !slices.Equal(got, []string{"email_cart_reminder"}) {
		t.Fatalf("Mei by email = %v, want the cart reminder", got)
	}
	withheld := ask("email", "email_slot", true, &WhatIf{Features: noBirthday, Consent: map[string]bool{"email": false}})
	if got := chosen(withheld, "email_slot"); slices.Contains(got, "email_cart_reminder") {
		t.Errorf("refusing email still sends the reminder: %v", got)
	}
	if len(noBirthday) != 10 || !noBirthday["consent_email"].Bool {
		t.Errorf("the what-if's own features were written to: %v", noBirthday)
	}
	unknown := &Decision{}
	req := Request{CustomerID: "nobody", Preview: true, WhatIf: &WhatIf{Consent: map[string]bool{"email": true}},
		Placements: []PlacementRequest{{ID: "email_slot"}}, Context: []ContextField{{Name: "channel", Value: features.String("email")}}}
	if err := e.Decide(context.Background(), &req, unknown); err != nil || unknown.KnownCustomer {
		t.Errorf("consent alone made an unknown customer known: %v", err)
	}

	// Replaced features: a known customer with an empty cart gets no coupon.
	empty := ask("web", "cart_banner", true, &WhatIf{NoHistory: true, Features: map[string]features.Value{"first_name": features.String("Mei")}})
	if !empty.KnownCustomer || slices.Contains(chosen(empty, "cart_banner"), "cart_coupon_10") {
		t.Errorf("replaced features: known %v, shown %v", empty.KnownCustomer, chosen(empty, "cart_banner"))
	}

	if stored.Values.Len() != 11 || len(stored.Counters) != len(counters) || !stored.Consent["email"].Granted {
		t.Errorf("what-if previews changed the stored record: %+v", stored)
	}
}

// A preview engine decides with the ruleset it is given and counts nothing.
func TestNewPreviewDecidesWithItsRuleset(t *testing.T) {
	live := newTestEngine(t, "")
	p := NewPreview(live.Ruleset(), testSource())
	if p.Ruleset() != live.Ruleset() {
		t.Fatal("NewPreview does not serve the ruleset it was given")
	}
	if err := p.Reload(); err == nil {
		t.Error("a preview engine reloaded")
	}
	req := Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")}
	want := chosen(decide(t, live, req), "cart_banner")
	if len(want) == 0 {
		t.Fatal("the live engine shows nothing on cart_banner; pick a request it answers")
	}
	if got := chosen(decide(t, p, req), "cart_banner"); !slices.Equal(got, want) {
		t.Errorf("preview engine chose %v, live %v", got, want)
	}
}

// Each fixture says which rules it covers: its own rule's outcome and
// every rule that matched in its decision.
func TestFixtureResultsNameTheRulesTheyCover(t *testing.T) {
	e, err := New(Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml"}, mapSource{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]bool{}
	for _, r := range RunFixtures(e.Ruleset()) {
		f := r.Fixture
		if f.Model != "" || f.Trigger != "" {
			if r.Outcome != "" {
				t.Errorf("fixture %q of %s%s has a rule outcome %q", f.Name, f.Model, f.Trigger, r.Outcome)
			}
			continue
		}
		if r.Outcome == "" {
			t.Errorf("fixture %q of rule %s has no outcome for its rule", f.Name, f.Rule)
		}
		outcomes[r.Outcome] = true
		if (r.Outcome == OutcomeMatched) != slices.Contains(r.Matched, f.Rule) {
			t.Errorf("fixture %q: outcome %s but matched rules %v", f.Name, r.Outcome, r.Matched)
		}
	}
	if !outcomes[OutcomeMatched] || !outcomes[OutcomeConditionFalse] {
		t.Errorf("the demo's fixtures cover only %v; want rules both matching and not", outcomes)
	}
}

// A trigger's test fails, saying what was sent and when, when the
// trigger sends something else or at another time.
func TestTriggerFixturesFailWithWhatHappened(t *testing.T) {
	e, err := New(Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml"}, mapSource{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	rs := e.Ruleset()
	var cart rules.Fixture
	for _, f := range rs.Fixtures() {
		if f.Trigger == "cart_abandoned" && f.Name == "the last cart change counts" {
			cart = f
		}
	}
	if cart.Trigger == "" {
		t.Fatal("the demo's cart trigger test is gone")
	}
	var d Decision
	if r := runFixture(rs, cart, &d); !r.Passed {
		t.Fatalf("the demo's test fails: %s", r.Problem)
	}
	wrongTime := cart
	wrongTime.ExpectAt = 2 * time.Hour
	if r := runFixture(rs, wrongTime, &d); r.Passed || !strings.Contains(r.Problem, "sent 3h30m0s after") {
		t.Errorf("expecting the first update's time: %+v", r)
	}
	nothing := cart
	nothing.ExpectSent = nil
	if r := runFixture(rs, nothing, &d); r.Passed || !strings.Contains(r.Error(), "trigger cart_abandoned") || !strings.Contains(r.Problem, "it sent [email_cart_reminder]") {
		t.Errorf("expecting nothing: %+v", r)
	}
	never := cart
	never.Events = nil
	if r := runFixture(rs, never, &d); r.Passed || !strings.Contains(r.Problem, "never fell due") {
		t.Errorf("without events: %+v", r)
	}
}
