package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// Paths of the demo data, relative to this package.
const (
	demoSchema    = "../configs/features.yaml"
	demoCustomers = "../configs/demo/customers.jsonl"
)

// benchNow is the decision time of every synthetic request: an ordinary
// weekday, as in the demo fixtures, so scheduled rules decide the same way
// whenever the benchmark runs.
var benchNow = time.Date(2026, 6, 10, 10, 0, 0, 0, time.UTC)

// synthFileRules is how many rules go into one generated file; marketers
// split large rulesets into themed files.
const synthFileRules = 250

// synthPlacements mirrors the demo placements: id, count, max_count,
// fallback touchpoint ("" = none) and the channels a touchpoint for it uses.
var synthPlacements = []struct {
	id              string
	count, maxCount int
	fallback        string
	channels        []string
}{
	{"home_hero", 1, 1, "hero_brand_story", []string{"web", "app"}},
	{"product_recs", 3, 5, "recs_bestsellers", []string{"web", "app", "email"}},
	{"cart_banner", 1, 2, "cart_free_returns_info", []string{"web", "app"}},
	{"checkout_message", 1, 1, "checkout_secure_payment", []string{"web", "app"}},
	{"app_inbox", 2, 5, "inbox_whats_new", []string{"app"}},
	{"email_slot", 1, 1, "email_brand_story", []string{"email"}},
	{"store_tablet", 1, 1, "store_welcome", []string{"store"}},
	{"sms_text", 1, 1, "", []string{"sms"}},
}

// synthSegments are the demo's segments, so generated rules can use them
// the same way.
const synthSegments = `segments:
  vip: customer.tier == "platinum" || customer.ltv >= 5000
  member: customer.tier != "none"
  cart_abandoner: customer.cart_abandon_7d >= 1 && customer.cart_value > 0
  birthday_week: customer.days_to_birthday >= 0 && customer.days_to_birthday <= 7
  at_risk: customer.churn_risk >= 0.7
  near_next_tier: customer.tier in ["silver", "gold"] && customer.points_to_next_tier > 0 && customer.points_to_next_tier <= 300
`

// synthGen writes one synthetic ruleset. Everything it draws comes from a
// seeded generator, so a given size always produces the same files.
type synthGen struct {
	r *rand.Rand
	// offered remembers the generated touchpoint ids, for suppress rules
	// that name one.
	offered []string
}

// writeSyntheticRules writes a ruleset of n rules into dir, shaped like
// the demo's: the demo placements with their fallbacks, the demo segments,
// and rule files in which each rule offers its own touchpoints (sometimes
// two) for placements and channels that go together, guarded by the page
// or channel where that makes sense, with conditions on customer features
// and segments, priorities in the demo's bands, score expressions, some
// schedules and about one suppress rule in fifteen. The rules carry no
// fixture tests, so every rule adds a "has no tests" lint warning.
func writeSyntheticRules(tb testing.TB, dir string, n int) {
	tb.Helper()
	g := &synthGen{r: rand.New(rand.NewPCG(uint64(n), 0x70c4))}
	var head strings.Builder
	head.WriteString("placements:\n")
	for _, p := range synthPlacements {
		fmt.Fprintf(&head, "  - id: %s\n    count: %d\n    max_count: %d\n", p.id, p.count, p.maxCount)
		if p.fallback != "" {
			fmt.Fprintf(&head, "    fallback: %s\n", p.fallback)
		}
	}
	head.WriteString("\n" + synthSegments + "\ntouchpoints:\n")
	for _, p := range synthPlacements {
		if p.fallback == "" {
			continue
		}
		fmt.Fprintf(&head, "  - id: %s\n    kind: content\n    placements: [%s]\n    content:\n      title: 'Hello {{ customer.first_name | default \"there\" }}'\n      url: /%s\n",
			p.fallback, p.id, p.fallback)
	}
	writeFile(tb, filepath.Join(dir, "00_placements.yaml"), head.String())

	for file, start := 1, 0; start < n; file, start = file+1, start+synthFileRules {
		end := min(start+synthFileRules, n)
		var tps, rs strings.Builder
		tps.WriteString("touchpoints:\n")
		rs.WriteString("\nrules:\n")
		for i := start; i < end; i++ {
			g.rule(&tps, &rs, i)
		}
		writeFile(tb, filepath.Join(dir, fmt.Sprintf("rules_%03d.yaml", file)), tps.String()+rs.String())
	}
}

func writeFile(tb testing.TB, path, text string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func (g *synthGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

// rule writes rule i and the touchpoints it offers.
func (g *synthGen) rule(tps, rs *strings.Builder, i int) {
	id := fmt.Sprintf("r%05d", i)
	// One rule in fifteen takes touchpoints away rather than offering them
	// (never the first few, so small rulesets still offer something).
	if i >= 8 && g.r.IntN(15) == 0 {
		g.suppressRule(rs, id)
		return
	}

	// Where the rule shows: a page (web and app), a channel, or anywhere
	// the customer's touchpoint fits.
	var guard, placement string // placement: one or more placement ids
	var channels []string
	switch theme := g.r.IntN(10); {
	case i < len(synthPlacements): // cover every placement once
		placement = synthPlacements[i].id
		channels = synthPlacements[i].channels
	case theme < 4:
		page := g.pick("/", "/cart", "/cart", "/checkout", "/product/trail-shoe-2", "/product/yoga-mat")
		switch page {
		case "/":
			placement = "home_hero"
		case "/cart":
			placement = g.pick("cart_banner", "cart_banner", "product_recs")
		case "/checkout":
			placement = "checkout_message"
		default:
			placement = "product_recs"
		}
		guard = fmt.Sprintf("context.page == %q", page)
		channels = []string{"web", "app"}
	case theme < 7:
		ch := g.pick("email", "email", "app", "app", "sms", "store")
		placement = map[string]string{"email": "email_slot", "app": "app_inbox", "sms": "sms_text", "store": "store_tablet"}[ch]
		if ch == "email" && g.r.IntN(3) == 0 {
			placement = "product_recs"
		}
		guard = fmt.Sprintf("context.channel == %q", ch)
		channels = []string{ch}
	default:
		// Like the demo's loyalty and lifecycle touchpoints: one
		// touchpoint for the hero, the inbox and the email.
		placement = "home_hero, app_inbox, email_slot"
		if g.r.IntN(4) == 0 {
			placement = "product_recs"
		}
		channels = []string{"web", "app", "email"}
		if g.r.IntN(3) == 0 {
			guard = `context.channel in ["web", "app"]`
		}
	}

	conds := g.conditions()
	if guard != "" {
		conds = append([]string{guard}, conds...)
	}
	kind := g.pick("offer", "coupon", "message", "content")
	if channels[0] == "store" || channels[0] == "sms" {
		kind = "message"
	}
	offer := []string{g.touchpoint(tps, fmt.Sprintf("tp%05d", i), kind, placement, channels)}
	if g.r.IntN(5) == 0 {
		offer = append(offer, g.touchpoint(tps, fmt.Sprintf("tp%05d_b", i), kind, placement, channels))
	}

	fmt.Fprintf(rs, "  - id: %s\n    description: Synthetic %s rule for %s\n    when: '%s'\n    offer: [%s]\n",
		id, kind, placement, strings.Join(conds, " && "), strings.Join(offer, ", "))
	bands := []int{0, 50, 100, 100, 200, 200, 300, 400, 500, 1000}
	fmt.Fprintf(rs, "    priority: %d\n", bands[g.r.IntN(len(bands))])
	if g.r.IntN(5) < 2 {
		fmt.Fprintf(rs, "    score: %s\n", g.pick(
			"customer.coupon_propensity",
			"customer.churn_risk * 2",
			"customer.points_expiring_30d / 100",
			"customer.ltv / 1000",
			"1 + customer.orders_30d"))
	}
	switch g.r.IntN(25) {
	case 0:
		fmt.Fprintf(rs, "    active: {days: [sat, sun], hours: \"10:00-22:00\", timezone: Europe/Berlin}\n")
	case 1:
		fmt.Fprintf(rs, "    active: {from: 2026-11-23T00:00:00Z, until: 2026-11-30T23:59:59Z}\n")
	case 2:
		fmt.Fprintf(rs, "    active: {days: [mon, tue, wed, thu, fri], hours: \"08:00-20:00\", timezone: Europe/Paris}\n")
	}
}

// conditions draws one to three conditions on customer features, segments
// and known.
func (g *synthGen) conditions() []string {
	out := make([]string, 1+g.r.IntN(3))
	for k := range out {
		switch g.r.IntN(20) {
		case 0:
			out[k] = fmt.Sprintf("customer.ltv >= %d", 100*(1+g.r.IntN(60)))
		case 1:
			out[k] = fmt.Sprintf("customer.tier == %q", g.pick("silver", "gold", "platinum"))
		case 2:
			out[k] = `customer.tier in ["silver", "gold"]`
		case 3:
			out[k] = fmt.Sprintf("customer.coupon_propensity >= %.2f", 0.1+0.05*float64(g.r.IntN(14)))
		case 4:
			out[k] = fmt.Sprintf("customer.churn_risk >= %.2f", 0.3+0.05*float64(g.r.IntN(12)))
		case 5:
			lo := 10 * g.r.IntN(10)
			out[k] = fmt.Sprintf("customer.cart_value >= %d && customer.cart_value < %d", lo, lo+20+10*g.r.IntN(10))
		case 6:
			out[k] = fmt.Sprintf("customer.orders_30d >= %d", 1+g.r.IntN(3))
		case 7:
			out[k] = fmt.Sprintf("customer.days_since_last_purchase >= 0 && customer.days_since_last_purchase <= %d", 7*(1+g.r.IntN(8)))
		case 8:
			out[k] = fmt.Sprintf("customer.stage == %q", g.pick("awareness", "consideration", "purchase", "use", "loyalty"))
		case 9:
			out[k] = fmt.Sprintf("customer.lifecycle in [%q, %q]", g.pick("new", "active"), g.pick("lapsing", "churned"))
		case 10:
			out[k] = fmt.Sprintf("customer.points_expiring_30d >= %d", 50*(1+g.r.IntN(8)))
		case 11:
			out[k] = fmt.Sprintf("customer.language == %q", g.pick("en", "de", "fr", "es", "it", "nl", "zh"))
		case 12:
			out[k] = fmt.Sprintf("%q in customer.interests", g.pick("running", "yoga", "hiking", "skincare", "coffee", "fashion", "travel", "kitchen"))
		case 13:
			// The demo writes interest rules with any(); expr boxes each
			// list element, so these allocate.
			if g.r.IntN(3) == 0 {
				out[k] = fmt.Sprintf("any(customer.interests, # in [%q, %q])", g.pick("running", "hiking", "outdoor"), g.pick("yoga", "skincare", "beauty"))
			} else {
				out[k] = "len(customer.interests) > 0"
			}
		case 14, 15:
			out[k] = fmt.Sprintf("segment(%q)", g.pick("vip", "member", "cart_abandoner", "birthday_week", "at_risk", "near_next_tier"))
		case 16:
			out[k] = g.pick("known", "known", "known", "!known")
		case 17:
			out[k] = g.pick("customer.consent_marketing", "customer.app_installed", "customer.consent_email")
		case 18:
			out[k] = fmt.Sprintf("customer.preferred_channel == %q", g.pick("web", "app", "email", "sms", "store"))
		default:
			out[k] = fmt.Sprintf("customer.last_csat >= %d", 1+g.r.IntN(5))
		}
	}
	return out
}

// touchpoint writes one touchpoint and returns its id.
func (g *synthGen) touchpoint(tps *strings.Builder, id, kind, placement string, channels []string) string {
	fmt.Fprintf(tps, "  - id: %s\n    kind: %s\n    channels: [%s]\n    placements: [%s]\n    value: %d\n",
		id, kind, strings.Join(channels, ", "), placement, 1+g.r.IntN(50))
	fmt.Fprintf(tps, "    content:\n      title: '%s, %s'\n      text: Synthetic %s %s for %s.\n      url: /t/%s\n",
		`{{ customer.first_name | default "Hi" }}`, g.pick("this is for you", "take a look", "picked for you"), kind, id, placement, id)
	if kind == "coupon" {
		fmt.Fprintf(tps, "      code: C%s\n      discount_percent: %d\n", strings.ToUpper(id), 5*(1+g.r.IntN(6)))
	}
	g.offered = append(g.offered, id)
	return id
}

// suppressRule writes a contact-policy rule like the demo's.
func (g *synthGen) suppressRule(rs *strings.Builder, id string) {
	var when, what string
	switch g.r.IntN(6) {
	case 0:
		when, what = "customer.risk_flag", `["kind:offer", "kind:coupon"]`
	case 1:
		when, what = "known && !customer.consent_marketing", `["kind:offer", "kind:coupon"]`
	case 2:
		when, what = `context.channel == "email" && !customer.consent_email`, `["*"]`
	case 3:
		when, what = `context.channel == "sms" && !customer.consent_sms`, `["*"]`
	case 4:
		when, what = fmt.Sprintf("customer.open_complaint && customer.complaint_age_minutes < %d", 30*(1+g.r.IntN(8))), `["kind:offer", "kind:coupon"]`
	default:
		// Cap one earlier touchpoint for customers who churn rarely.
		when = fmt.Sprintf("customer.churn_risk < %.2f", 0.05+0.05*float64(g.r.IntN(4)))
		what = "[" + g.offered[g.r.IntN(len(g.offered))] + "]"
	}
	fmt.Fprintf(rs, "  - id: %s\n    description: Synthetic contact policy\n    when: '%s'\n    suppress: %s\n", id, when, what)
}

// pageViews are the synthetic requests: one or two placements of one page
// or message, as a site or app asks for them.
var pageViews = []struct {
	channel, page string
	placements    []engine.PlacementRequest
}{
	{"web", "/cart", []engine.PlacementRequest{{ID: "cart_banner"}, {ID: "product_recs", Count: 3}}},
	{"app", "/", []engine.PlacementRequest{{ID: "home_hero"}, {ID: "app_inbox", Count: 2}}},
	{"web", "/", []engine.PlacementRequest{{ID: "home_hero"}}},
	{"web", "/product/trail-shoe-2", []engine.PlacementRequest{{ID: "product_recs", Count: 3}}},
	{"email", "", []engine.PlacementRequest{{ID: "email_slot"}, {ID: "product_recs", Count: 3}}},
	{"web", "/checkout", []engine.PlacementRequest{{ID: "checkout_message"}}},
}

// showcaseCustomers are the demo customers the README introduces; they
// cover the tiers, lifecycles, consents and service states.
var showcaseCustomers = []string{
	"c-000042", "c-000007", "c-000101", "c-000256", "c-000314",
	"c-000500", "c-000777", "c-001234", "c-002026",
}

// synthRequests pairs every showcase customer with every page view.
func synthRequests() []engine.Request {
	var reqs []engine.Request
	for _, id := range showcaseCustomers {
		for _, pv := range pageViews {
			req := engine.Request{CustomerID: id, Placements: pv.placements, Now: benchNow,
				Context: []engine.ContextField{{Name: "channel", Value: features.String(pv.channel)}}}
			if pv.page != "" {
				req.Context = append(req.Context, engine.ContextField{Name: "page", Value: features.String(pv.page)})
			}
			reqs = append(reqs, req)
		}
	}
	return reqs
}

// benchEngine serves the ruleset in dir with the demo customers behind the
// feature cache, warmed with the customers of reqs: decisions then read
// features from the cache, as in steady state.
func benchEngine(tb testing.TB, dir string, reqs []engine.Request) (*engine.Engine, *features.Cache) {
	tb.Helper()
	store, err := features.OpenJSONL(demoCustomers)
	if err != nil {
		tb.Fatal(err)
	}
	cache, err := features.NewCache(store, features.DefaultCacheConfig())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cache.Close)
	e, err := engine.New(engine.Config{RulesDir: dir, SchemaPath: demoSchema}, cache, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	var d engine.Decision
	for i := range reqs {
		if err := e.Decide(ctx, &reqs[i], &d); err != nil {
			tb.Fatal(err)
		}
	}
	cache.Wait()
	for i := range reqs {
		if err := e.Decide(ctx, &reqs[i], &d); err != nil || !d.KnownCustomer {
			tb.Fatalf("warm-up decision for %s: %v, known %v", reqs[i].CustomerID, err, d.KnownCustomer)
		}
	}
	return e, cache
}

// TestSyntheticRuleset checks the generator: a small ruleset loads, holds
// the rules asked for, warns only about the missing fixture tests, and
// every synthetic request gets a decision.
func TestSyntheticRuleset(t *testing.T) {
	dir := t.TempDir()
	writeSyntheticRules(t, dir, 100)
	reqs := synthRequests()
	e, _ := benchEngine(t, dir, reqs)
	rs := e.Ruleset()
	if len(rs.Rules) != 100 {
		t.Fatalf("%d rules, want 100", len(rs.Rules))
	}
	for _, w := range rs.Warnings {
		if !strings.HasSuffix(w.Message, "has no tests") {
			t.Errorf("unexpected lint warning: %v", w)
		}
	}
	suppress := 0
	for _, r := range rs.Rules {
		if r.IsSuppress() {
			suppress++
		}
	}
	if suppress == 0 {
		t.Errorf("no suppress rules generated")
	}
	ctx := context.Background()
	var d engine.Decision
	items, matched := 0, 0
	for i := range reqs {
		req := reqs[i]
		req.Explain = true
		if err := e.Decide(ctx, &req, &d); err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Placements {
			items += len(p.Items)
		}
		for _, r := range d.Explain.Rules {
			if r.Outcome == engine.OutcomeMatched {
				matched++
			}
		}
	}
	if items == 0 || matched == 0 {
		t.Fatalf("synthetic requests got %d items from %d matched rules", items, matched)
	}
	// The same size always generates the same files.
	again := t.TempDir()
	writeSyntheticRules(t, again, 100)
	for _, f := range rs.Files {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(again, filepath.Base(f)))
		if err != nil || string(a) != string(b) {
			t.Fatalf("%s differs between two generations", filepath.Base(f))
		}
	}
}

// -synth-out keeps the ruleset TestWriteSyntheticRuleset writes, to serve
// it (benchmarks/overload.sh does):
//
//	go test ./benchmarks -run TestWriteSyntheticRuleset -args -synth-out DIR -synth-rules 3000
//	touchpoint serve --rules DIR --schema configs/features.yaml
var (
	synthOut   = flag.String("synth-out", "", "directory to keep the synthetic ruleset of TestWriteSyntheticRuleset in")
	synthRules = flag.Int("synth-rules", 1000, "rules in the synthetic ruleset of TestWriteSyntheticRuleset")
)

// TestWriteSyntheticRuleset writes a synthetic ruleset of -synth-rules rules
// (into -synth-out when given) and checks that it loads against the demo
// schema with every rule.
func TestWriteSyntheticRuleset(t *testing.T) {
	dir := *synthOut
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeSyntheticRules(t, dir, *synthRules)
	rs, err := rules.Load(dir, demoSchema)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Rules) != *synthRules {
		t.Fatalf("%d rules loaded, want %d", len(rs.Rules), *synthRules)
	}
}
