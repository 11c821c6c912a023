package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
)

// mapSource is a feature source over a fixed map; the engine tests need
// exact records, and the embedded store has its own tests.
type mapSource map[string]*features.Record

func (m mapSource) Lookup(_ context.Context, id string) (*features.Record, error) {
	if id == "broken-store" {
		return nil, errors.New("store down")
	}
	return m[id], nil
}

func (m mapSource) Ping(context.Context) error { return nil }

func testSource() mapSource {
	return mapSource{
		"c-1": {ID: "c-1", Values: features.NewValues(map[string]features.Value{
			"first_name": features.String("Mei"), "cart_abandon_7d": features.Number(2), "coupon_propensity": features.Number(0.4),
		})},
		"c-vip":     {ID: "c-vip", Values: features.NewValues(map[string]features.Value{"ltv": features.Number(5000), "cart_abandon_7d": features.Number(1)})},
		"c-risk":    {ID: "c-risk", Values: features.NewValues(map[string]features.Value{"risk_flag": features.Bool(true), "cart_abandon_7d": features.Number(1)})},
		"c-tags":    {ID: "c-tags", Values: features.NewValues(map[string]features.Value{"tags": features.List("a", "b", "c", "d")})},
		"c-badtype": {ID: "c-badtype", Values: features.NewValues(map[string]features.Value{"ltv": features.String("lots"), "first_name": features.String("Ana")})},
	}
}

func newTestEngine(t testing.TB, dir string) *Engine {
	t.Helper()
	if dir == "" {
		dir = "testdata"
	}
	e, err := New(Config{RulesDir: filepath.Join(dir, "rules"), SchemaPath: filepath.Join(dir, "features.yaml")}, testSource(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func web(page string) []ContextField {
	return []ContextField{{Name: "channel", Value: features.String("web")}, {Name: "page", Value: features.String(page)}}
}

func decide(t *testing.T, e *Engine, req Request) *Decision {
	t.Helper()
	var d Decision
	if err := e.Decide(context.Background(), &req, &d); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return &d
}

func chosen(d *Decision, placement string) []string {
	for _, p := range d.Placements {
		if p.ID == placement {
			out := []string{}
			for _, it := range p.Items {
				out = append(out, it.Touchpoint)
			}
			return out
		}
	}
	return nil
}

func TestDecide(t *testing.T) {
	e := newTestEngine(t, "")
	cases := []struct {
		name       string
		req        Request
		placement  string
		want       []string
		wantKnown  bool
		wantReason string
	}{
		{"cart abandoner gets the coupon", Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")}, "cart_banner", []string{"cart_coupon_10"}, true, ""},
		{"other page falls back", Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/home")}, "cart_banner", []string{"free_shipping"}, true, ""},
		{"unknown customer decided on context", Request{CustomerID: "nobody", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")}, "cart_banner", []string{"free_shipping"}, false, ""},
		{"risk flag suppresses everything including the fallback", Request{CustomerID: "c-risk", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")}, "cart_banner", []string{}, true, ""},
		{"vip gift in any placement", Request{CustomerID: "c-vip", Placements: []PlacementRequest{{ID: "home_hero"}}, Context: web("/")}, "home_hero", []string{"vip_gift"}, true, ""},
		{"a touchpoint appears once per response", Request{CustomerID: "c-vip", Placements: []PlacementRequest{{ID: "home_hero"}, {ID: "cart_banner", Count: 2}}, Context: web("/cart")}, "cart_banner", []string{"cart_coupon_10"}, true, ""},
		{"wrongly typed stored feature is ignored", Request{CustomerID: "c-badtype", Placements: []PlacementRequest{{ID: "home_hero"}}, Context: web("/")}, "home_hero", []string{}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, e, tc.req)
			if got := chosen(d, tc.placement); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("%s = %v, want %v", tc.placement, got, tc.want)
			}
			if d.KnownCustomer != tc.wantKnown {
				t.Errorf("known_customer = %v, want %v", d.KnownCustomer, tc.wantKnown)
			}
			if d.Ruleset != e.Status().Version || len(d.ID) != 32 {
				t.Errorf("ruleset %q id %q", d.Ruleset, d.ID)
			}
		})
	}
}

func TestDecideScoreAndContent(t *testing.T) {
	e := newTestEngine(t, "")
	d := decide(t, e, Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	it := d.Placements[0].Items[0]
	if it.Rule != "cart_abandon_coupon" || it.Kind != "coupon" || it.Score != 8 {
		t.Errorf("item = %+v, want rule cart_abandon_coupon, kind coupon, score 0.4*2*10 = 8", it)
	}
	if got, want := string(it.Content), `{"title":"Mei, 10% off your cart","code":"CART10"}`; got != want {
		t.Errorf("content = %s, want %s", got, want)
	}
	d = decide(t, e, Request{CustomerID: "nobody", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	if it := d.Placements[0].Items[0]; !it.Fallback || it.Rule != "" || string(it.Content) != `{"title":"Free shipping over 50"}` {
		t.Errorf("fallback item = %+v %s", it, it.Content)
	}
	d = decide(t, e, Request{CustomerID: "c-vip", Placements: []PlacementRequest{{ID: "home_hero"}}, Context: web("/")})
	if got := string(d.Placements[0].Items[0].Content); got != `{"title":"A gift for you","tags":["vip",1,true]}` {
		t.Errorf("static content = %s", got)
	}
}

func TestDecideDegradedWhenStoreFails(t *testing.T) {
	e := newTestEngine(t, "")
	d := decide(t, e, Request{CustomerID: "broken-store", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	if !d.Degraded || d.KnownCustomer || chosen(d, "cart_banner")[0] != "free_shipping" {
		t.Errorf("degraded decision = %+v", d)
	}
}

func TestDecideRequestErrors(t *testing.T) {
	e := newTestEngine(t, "")
	cases := []struct {
		name      string
		req       Request
		code, fld string
	}{
		{"unknown placement", Request{CustomerID: "c", Placements: []PlacementRequest{{ID: "cart_banner"}, {ID: "hero"}}, Context: web("/")}, "unknown_placement", "placements[1].id"},
		{"count above max", Request{CustomerID: "c", Placements: []PlacementRequest{{ID: "cart_banner", Count: 3}}, Context: web("/")}, "count_too_large", "placements[0].count"},
		{"unknown context field", Request{CustomerID: "c", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: append(web("/"), ContextField{Name: "weather", Value: features.String("rain")})}, "unknown_context_field", "context.weather"},
		{"wrong context type", Request{CustomerID: "c", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: []ContextField{{Name: "channel", Value: features.Number(1)}}}, "invalid_context_value", "context.channel"},
		{"value outside enum", Request{CustomerID: "c", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: []ContextField{{Name: "channel", Value: features.String("fax")}}}, "invalid_context_value", "context.channel"},
		{"missing required context", Request{CustomerID: "c", Placements: []PlacementRequest{{ID: "cart_banner"}}}, "missing_field", "context.channel"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decision
			err := e.Decide(context.Background(), &tc.req, &d)
			var re *RequestError
			if !errors.As(err, &re) || re.Code != tc.code || re.Field != tc.fld {
				t.Fatalf("err = %v, want %s at %s", err, tc.code, tc.fld)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	e := newTestEngine(t, "")
	d := decide(t, e, Request{CustomerID: "c-vip", Explain: true, Placements: []PlacementRequest{{ID: "cart_banner", Count: 2}}, Context: web("/cart")})
	outcomes := map[string]string{}
	for _, r := range d.Explain.Rules {
		outcomes[r.Rule] = r.Outcome
	}
	want := map[string]string{"cart_abandon_coupon": OutcomeMatched, "vip": OutcomeMatched, "bad_index": OutcomeExpressionError, "risk_hold": OutcomeConditionFalse}
	for rule, o := range want {
		if outcomes[rule] != o {
			t.Errorf("rule %s outcome %q, want %q", rule, outcomes[rule], o)
		}
	}
	reasons := map[string]string{}
	for _, c := range d.Explain.Candidates {
		reasons[c.Touchpoint] = c.Reason
	}
	if reasons["cart_coupon_10"] != ReasonChosen || reasons["app_only"] != ReasonChannelMismatch || reasons["vip_gift"] != ReasonChosen {
		t.Errorf("candidate reasons = %v", reasons)
	}
	d = decide(t, e, Request{CustomerID: "c-vip", Explain: true, Placements: []PlacementRequest{{ID: "home_hero"}}, Context: web("/cart")})
	for _, c := range d.Explain.Candidates {
		if c.Touchpoint == "cart_coupon_10" && c.Reason != ReasonPlacementMismatch {
			t.Errorf("cart coupon in home_hero: %+v", c)
		}
		if c.Touchpoint == "vip_gift" && (c.Reason != ReasonChosen || !c.Chosen) {
			t.Errorf("vip gift in home_hero: %+v", c)
		}
	}
	d = decide(t, e, Request{CustomerID: "c-risk", Explain: true, Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	for _, c := range d.Explain.Candidates {
		if c.Touchpoint == "cart_coupon_10" && (c.Reason != ReasonSuppressed || c.By != "risk_hold") {
			t.Errorf("suppressed candidate = %+v", c)
		}
	}
}

func TestRuleRuntimeErrorIsCountedNotFatal(t *testing.T) {
	e := newTestEngine(t, "")
	decide(t, e, Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	decide(t, e, Request{CustomerID: "c-tags", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	counts := map[string]uint64{}
	for _, c := range e.RuleErrors() {
		counts[c.Rule] = c.Count
	}
	if counts["bad_index"] != 1 || len(counts) != 1 {
		t.Errorf("rule errors = %v, want bad_index: 1 (c-tags has 4 tags, c-1 has none)", counts)
	}
}

func TestFixturesRunThroughTheDecisionPath(t *testing.T) {
	e := newTestEngine(t, "")
	results := RunFixtures(e.Ruleset())
	if len(results) != 4 {
		t.Fatalf("%d fixtures, want 4", len(results))
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("fixture failed: %s", r.Error())
		}
	}
}

func TestFailingFixtureExplainsWhy(t *testing.T) {
	dir := copyTestdata(t)
	editRules(t, dir, func(s string) string {
		return strings.Replace(s, "expect: {cart_banner: [cart_coupon_10]}", "expect: {cart_banner: [app_only]}", 1)
	})
	e := newTestEngine(t, dir)
	var failed []string
	for _, r := range RunFixtures(e.Ruleset()) {
		if !r.Passed {
			failed = append(failed, r.Error())
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "main.yaml:36:9: rule cart_abandon_coupon, test \"abandoned cart gets the coupon\": cart_banner: expected [app_only], got [cart_coupon_10] (app_only from rule cart_abandon_coupon: channel mismatch)") {
		t.Errorf("failures = %q", failed)
	}
}

func copyTestdata(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"features.yaml", "rules/main.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func editRules(t *testing.T, dir string, edit func(string) string) {
	t.Helper()
	p := filepath.Join(dir, "rules", "main.yaml")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Write to a temporary name and rename, as editors do, so a watcher
	// never reads a half-written file.
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(edit(string(data))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func TestReloadKeepsServingOnBrokenRules(t *testing.T) {
	dir := copyTestdata(t)
	e := newTestEngine(t, dir)
	v1 := e.Status().Version
	editRules(t, dir, func(s string) string { return strings.Replace(s, "customer.ltv >= 1000", "customer.ltvv >= 1000", 1) })
	err := e.Reload()
	if err == nil || !strings.Contains(err.Error(), "main.yaml:8:24: segment high_value: unknown feature customer.ltvv") {
		t.Fatalf("reload error = %v", err)
	}
	st := e.Status()
	if st.Version != v1 || st.FailedLoads != 1 || !strings.Contains(st.LastError, "^") {
		t.Errorf("status after failed reload = %+v", st)
	}
	decide(t, e, Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	editRules(t, dir, func(s string) string { return strings.Replace(s, "customer.ltvv >= 1000", "customer.ltv >= 2000", 1) })
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := e.Status(); st.Version == v1 || st.LastError != "" {
		t.Errorf("status after good reload = %+v", st)
	}
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	dir := copyTestdata(t)
	e := newTestEngine(t, dir)
	v1 := e.Status().Version
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	watchErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		watchErr <- e.Watch(ctx)
	}()
	defer func() { cancel(); wg.Wait() }()
	// The watcher may not be registered yet when the first edit lands, so
	// keep editing until a reload is seen, within a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; e.Status().Version == v1; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no reload within 10s of editing the rules")
		}
		editRules(t, dir, func(s string) string { return s + "# edit\n" })
		waitFor(t, 500*time.Millisecond, func() bool { return e.Status().Version != v1 })
	}
	cancel()
	wg.Wait()
	if err := <-watchErr; err != nil {
		t.Errorf("Watch returned %v", err)
	}
}

// waitFor polls cond until it holds or the timeout passes; it reports
// whether it held.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func TestAnonymousIdsAreNotLookedUp(t *testing.T) {
	var lookups atomic.Int64
	src := countingSource{mapSource: testSource(), n: &lookups}
	e, err := New(Config{RulesDir: "testdata/rules", SchemaPath: "testdata/features.yaml"}, src, zerolog.Nop(), WithAnonymousPrefixes("visitor-"))
	if err != nil {
		t.Fatal(err)
	}
	var d Decision
	req := Request{CustomerID: "visitor-123", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")}
	if err := e.Decide(context.Background(), &req, &d); err != nil {
		t.Fatal(err)
	}
	if lookups.Load() != 0 || d.KnownCustomer || chosen(&d, "cart_banner")[0] != "free_shipping" {
		t.Errorf("anonymous visitor: %d lookups, decision %+v", lookups.Load(), d.Placements)
	}
	req.CustomerID = "c-1"
	if err := e.Decide(context.Background(), &req, &d); err != nil || lookups.Load() != 1 || !d.KnownCustomer {
		t.Errorf("customer: %v, %d lookups, known %v", err, lookups.Load(), d.KnownCustomer)
	}
}

type countingSource struct {
	mapSource
	n *atomic.Int64
}

func (c countingSource) Lookup(ctx context.Context, id string) (*features.Record, error) {
	c.n.Add(1)
	return c.mapSource.Lookup(ctx, id)
}

// A change made after the first load but before the watcher is in place
// sends no event the watcher sees; Watch catches up with it when it
// starts.
func TestWatchCatchesUpWithChangesBeforeIt(t *testing.T) {
	dir := copyTestdata(t)
	e := newTestEngine(t, dir)
	v1 := e.Status().Version
	editRules(t, dir, func(s string) string { return s + "# edited before the watch\n" })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	defer func() { cancel(); <-done }()
	if !waitFor(t, 20*time.Second, func() bool { return e.Status().Version != v1 }) {
		t.Fatal("the change made before Watch started was never loaded")
	}
	if st := e.Status(); st.Reloads != 1 || st.FailedLoads != 0 {
		t.Errorf("status %+v", st)
	}

}
