package engine

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
)

// newLearningEngine decides on testdata/learning with the embedded
// store's overlay keeping the tallies, as a server on it does.
func newLearningEngine(t testing.TB, src mapSource, opts ...Option) (*Engine, *features.Overlay) {
	t.Helper()
	store := features.NewOverlay(src, nil)
	opts = append([]Option{WithTallies(store), WithRandSeed(42)}, opts...)
	e, err := New(Config{RulesDir: "testdata/learning/rules", SchemaPath: "testdata/learning/features.yaml"}, src, zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e, store
}

func tiered(ids map[string]string) mapSource {
	src := mapSource{}
	for id, tier := range ids {
		src[id] = &features.Record{ID: id, Values: features.NewValues(map[string]features.Value{"tier": features.String(tier)})}
	}
	return src
}

// Every customer who enters and asks for the banner is an exposure of
// their arm; events posted with the decision's id count for the arm of
// the item they report, once per event id, and the report adds them up.
func TestExperimentCountsLive(t *testing.T) {
	e, store := newLearningEngine(t, mapSource{})
	ctx := context.Background()
	x := e.Ruleset().Experiments[e.Ruleset().Experiment("banner_test")].Experiment
	want := map[string]int64{}
	var events []features.Event
	const n = 3000
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("u-%d", i)
		d := decide(t, e, Request{CustomerID: id, Context: web("/"), Placements: []PlacementRequest{{ID: "banner"}, {ID: "footer"}}})
		a := x.Assign(id)
		arm := VariantHoldout
		if !a.Holdout {
			arm = x.Variants[a.Variant].Name
		}
		want[arm]++
		it := d.Placements[0].Items[0]
		if it.Experiment != "banner_test" || it.Variant != arm {
			t.Fatalf("%s: item %+v, want arm %s", id, it, arm)
		}
		if d.Placements[1].Items[0].Experiment != "" {
			t.Fatalf("%s: the footer is not in the test: %+v", id, d.Placements[1].Items[0])
		}
		// An impression of every banner; a click on every third; a
		// conversion worth 10 on every fifth; and the footer's impression,
		// which counts for no arm.
		ev := func(typ string, k int) features.Event {
			return features.Event{ID: fmt.Sprintf("%s-%s", id, typ), DecisionID: strings.Clone(d.ID), CustomerID: id,
				Touchpoint: it.Touchpoint, Type: typ, Value: float64(k), Time: time.Now()}
		}
		events = append(events, ev("impression", 0))
		if i%3 == 0 {
			events = append(events, ev("click", 0))
		}
		if i%5 == 0 {
			events = append(events, ev("conversion", 10))
		}
		events = append(events, features.Event{ID: id + "-footer", DecisionID: strings.Clone(d.ID), CustomerID: id, Touchpoint: "note", Type: "impression", Time: time.Now()})
	}
	// Off the home page nobody enters, so nobody is exposed.
	decide(t, e, Request{CustomerID: "u-0", Context: web("/other"), Placements: []PlacementRequest{{ID: "banner"}}})

	for i := range events {
		e.Attribute(&events[i])
	}
	// Twice: the second batch is a retry, counted once.
	for range 2 {
		if _, err := store.ApplyEvents(ctx, events); err != nil {
			t.Fatal(err)
		}
	}
	e.learnOnce(ctx, store)
	rep, err := e.ExperimentReport(ctx, "banner_test")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, a := range rep.Arms {
		total += a.Exposures
		if a.Exposures != want[a.Name] || a.Impressions != want[a.Name] {
			t.Errorf("arm %s: %d exposures, %d impressions; want %d of each", a.Name, a.Exposures, a.Impressions, want[a.Name])
		}
		if math.Abs(float64(a.Clicks)-float64(want[a.Name])/3) > 0.05*float64(want[a.Name]) {
			t.Errorf("arm %s: %d clicks of %d impressions, want about a third", a.Name, a.Clicks, a.Impressions)
		}
		if a.Revenue != float64(10*a.Conversions) {
			t.Errorf("arm %s: revenue %v for %d conversions of 10", a.Name, a.Revenue, a.Conversions)
		}
	}
	if total != n || e.Status().ExposuresFlushed != n {
		t.Errorf("%d exposures, %d flushed, want %d", total, e.Status().ExposuresFlushed, n)
	}
	if rep.SampleRatioMismatch() {
		t.Errorf("an honest split fails the sample ratio check: chi2 %.2f p %.3g", rep.SRMChi2, rep.SRMP)
	}
	// Nothing is counted twice by a second flush.
	e.learnOnce(ctx, store)
	again, _ := e.ExperimentReport(ctx, "banner_test")
	if fmt.Sprint(again.Arms) != fmt.Sprint(rep.Arms) {
		t.Errorf("a second flush changed the counts: %+v, was %+v", again.Arms, rep.Arms)
	}
	if _, err := e.ExperimentReport(ctx, "nope"); err != ErrNoExperiment {
		t.Errorf("unknown experiment: %v", err)
	}
}

// Exposures counted on a ruleset that a reload replaced still reach the
// store.
func TestExposuresSurviveReload(t *testing.T) {
	e, store := newLearningEngine(t, mapSource{})
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		decide(t, e, Request{CustomerID: fmt.Sprintf("r-%d", i), Context: web("/"), Placements: []PlacementRequest{{ID: "banner"}}})
	}
	e.mu.Lock()
	e.install(e.Ruleset()) // as a reload of changed files does
	e.mu.Unlock()
	e.learnOnce(ctx, store)
	rep, _ := e.ExperimentReport(ctx, "banner_test")
	var total int64
	for _, a := range rep.Arms {
		total += a.Exposures
	}
	if total != 100 {
		t.Errorf("%d exposures reached the store, want 100", total)
	}
}

// A Thompson placement sends a segment's traffic to the touchpoint that
// segment clicks, learns apart per segment, keeps exploring, and logs
// the propensity of what it shows.
func TestThompsonPlacement(t *testing.T) {
	e, store := newLearningEngine(t, tiered(map[string]string{"s-1": "silver", "g-1": "gold"}))
	ctx := context.Background()
	// Silver customers click promo_b; nothing is known about gold.
	_ = store.AddTallies(ctx, []features.Tally{
		{Scope: "bandit:strip", Field: "silver|promo_a|impression", Delta: 2000}, {Scope: "bandit:strip", Field: "silver|promo_a|click", Delta: 20},
		{Scope: "bandit:strip", Field: "silver|promo_b|impression", Delta: 2000}, {Scope: "bandit:strip", Field: "silver|promo_b|click", Delta: 200},
		{Scope: "bandit:strip", Field: "silver|promo_c|impression", Delta: 2000}, {Scope: "bandit:strip", Field: "silver|promo_c|click", Delta: 40},
	})
	e.learnOnce(ctx, store)

	const n = 4000
	shown := map[string]map[string]int{"s-1": {}, "g-1": {}}
	logged := map[string]float64{}
	for i := 0; i < n; i++ {
		for _, id := range []string{"s-1", "g-1"} {
			d := decide(t, e, Request{CustomerID: id, Context: web("/"), Placements: []PlacementRequest{{ID: "strip"}}, Log: id == "s-1"})
			tp := d.Placements[0].Items[0].Touchpoint
			shown[id][tp]++
			if !strings.Contains(d.ID, ".b") {
				t.Fatalf("decision id %s carries no bandit tag", d.ID)
			}
			for _, l := range d.Logged {
				if l.Chosen {
					logged[l.Touchpoint] = l.Propensity
				}
			}
		}
	}
	if share := float64(shown["s-1"]["promo_b"]) / n; share < 0.9 {
		t.Errorf("silver: promo_b got %.3f of the traffic (%v), want ≥ 0.9", share, shown["s-1"])
	}
	for _, tp := range []string{"promo_a", "promo_c"} {
		// min_share 0.02: each arm is explored at least that often.
		if share := float64(shown["s-1"][tp]) / n; share < 0.015 {
			t.Errorf("silver: %s got %.4f of the traffic, below its min share", tp, share)
		}
	}
	for tp, c := range shown["g-1"] {
		if share := float64(c) / n; math.Abs(share-1.0/3) > 0.05 {
			t.Errorf("gold, with no data: %s got %.3f of the traffic (%v), want about a third", tp, share, shown["g-1"])
		}
	}
	// The logged propensity is the share the policy gives the item.
	for tp, p := range logged {
		if got := float64(shown["s-1"][tp]) / n; math.Abs(got-p) > 0.04 {
			t.Errorf("silver: %s logged propensity %.3f, shown %.3f of the time", tp, p, got)
		}
	}
	// A higher priority band comes first, and the bandit ranks the next
	// band for the second slot, logging the probability of that place.
	second := map[string]int{}
	secondLogged := map[string]float64{}
	for i := 0; i < n; i++ {
		d := decide(t, e, Request{CustomerID: "s-1", Context: web("/urgent"), Placements: []PlacementRequest{{ID: "strip", Count: 2}}, Log: true})
		items := d.Placements[0].Items
		if len(items) != 2 || items[0].Touchpoint != "urgent" {
			t.Fatalf("the urgent notice's band should come first: %+v", items)
		}
		second[items[1].Touchpoint]++
		for _, l := range d.Logged {
			switch {
			case l.Touchpoint == "urgent" && l.Propensity != 1:
				t.Fatalf("a band of one is chosen for sure, logged %v", l.Propensity)
			case l.Chosen && l.Touchpoint == items[1].Touchpoint:
				secondLogged[l.Touchpoint] = l.Propensity
			}
		}
	}
	if share := float64(second["promo_b"]) / n; share < 0.9 {
		t.Errorf("silver, second slot: promo_b got %.3f (%v)", share, second)
	}
	for tp, p := range secondLogged {
		if got := float64(second[tp]) / n; math.Abs(got-p) > 0.04 {
			t.Errorf("silver, second slot: %s logged %.3f, shown %.3f of the time", tp, p, got)
		}
	}

	// Impressions and clicks posted for these decisions teach the bandit.
	before := e.Bandits()[0]
	d := decide(t, e, Request{CustomerID: "g-1", Context: web("/"), Placements: []PlacementRequest{{ID: "strip"}}})
	tp := d.Placements[0].Items[0].Touchpoint
	evs := []features.Event{
		{ID: "t-1", DecisionID: strings.Clone(d.ID), CustomerID: "g-1", Touchpoint: tp, Type: "impression", Time: time.Now()},
		{ID: "t-2", DecisionID: strings.Clone(d.ID), CustomerID: "g-1", Touchpoint: tp, Type: "click", Time: time.Now()},
	}
	for i := range evs {
		e.Attribute(&evs[i])
	}
	if _, err := store.ApplyEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	e.learnOnce(ctx, store)
	after := e.Bandits()[0]
	if arm := banditArm(after, "gold", tp); arm.Impressions != 1 || arm.Rewards != 1 || banditArm(before, "gold", tp).Impressions != 0 {
		t.Errorf("gold %s after one impression and click: %+v", tp, arm)
	}
	if arm := banditArm(after, "silver", "promo_b"); arm.Share < 0.7 || arm.Impressions != 2000 { // among all four, urgent included
		t.Errorf("silver promo_b: %+v", arm)
	}
}

func banditArm(st BanditStatus, segment, tp string) BanditArm {
	for _, s := range st.Segments {
		if s.Segment == segment {
			for _, a := range s.Arms {
				if a.Touchpoint == tp {
					return a
				}
			}
		}
	}
	return BanditArm{}
}

// Fixtures and replays have no learning loop: a bandit placement ranks by
// score there, the same every time.
func TestThompsonWithoutLearningIsDeterministic(t *testing.T) {
	e, _ := newLearningEngine(t, mapSource{})
	for _, r := range RunFixtures(e.Ruleset()) {
		if !r.Passed {
			t.Error(r.Error())
		}
	}
	var d Decision
	req := Request{CustomerID: "x", Context: web("/"), Placements: []PlacementRequest{{ID: "strip"}}}
	first := ""
	for i := 0; i < 50; i++ {
		d.prepare(e.Ruleset())
		run(e.Ruleset(), nil, nil, &req, &d, nil)
		tp := d.Placements[0].Items[0].Touchpoint
		if first == "" {
			first = tp
		}
		if tp != first {
			t.Fatalf("without learning the strip showed %s, then %s", first, tp)
		}
	}
}

// Decision ids come back from clients: tags that are malformed, forged
// for another touchpoint, or name no arm add nothing.
func TestAttributeIgnoresBadTags(t *testing.T) {
	e, _ := newLearningEngine(t, mapSource{})
	d := decide(t, e, Request{CustomerID: "a-1", Context: web("/"), Placements: []PlacementRequest{{ID: "banner"}}})
	id := strings.Clone(d.ID)
	tp := d.Placements[0].Items[0].Touchpoint
	good := features.Event{DecisionID: id, Touchpoint: tp, Type: "click"}
	e.Attribute(&good)
	if len(good.Tallies) != 1 || !strings.HasPrefix(good.Tallies[0].Scope, "exp:banner_test") {
		t.Fatalf("a good tag: %+v", good.Tallies)
	}
	for _, bad := range []features.Event{
		{DecisionID: id, Touchpoint: "note", Type: "click"},                            // another touchpoint
		{DecisionID: id[:40], Touchpoint: tp, Type: "click"},                           // cut short
		{DecisionID: id[:32] + strings.Repeat("z", 14), Touchpoint: tp, Type: "click"}, // not hex
		{DecisionID: id[:32] + ".x" + id[34:38] + "00000000", Touchpoint: tp, Type: "click"},
		{DecisionID: id[:32] + ".b" + id[34:], Touchpoint: tp, Type: "click"}, // an experiment arm as a bandit's
		{DecisionID: id, Touchpoint: "", Type: "click"},
	} {
		e.Attribute(&bad)
		if len(bad.Tallies) != 0 {
			t.Errorf("%q on %q: tallies %+v", bad.DecisionID, bad.Touchpoint, bad.Tallies)
		}
	}
}

// A bandit tag counts only for a touchpoint its placement can show, so
// a forged touchpoint whose hash matches the tag adds no counter.
func TestAttributeRefusesForgedBanditTouchpoints(t *testing.T) {
	e, _ := newLearningEngine(t, tiered(map[string]string{"s-1": "silver"}))
	d := decide(t, e, Request{CustomerID: "s-1", Context: web("/"), Placements: []PlacementRequest{{ID: "strip"}}})
	id := strings.Clone(d.ID)
	tag := id[32:]
	// Find a name that is no touchpoint of the strip yet has the tag's
	// touchpoint hash: "calm" fits another placement, the rest fit none.
	forged := ""
	for i := 0; forged == "" && i < 1<<22; i++ {
		name := fmt.Sprintf("forged-%d", i)
		if fmt.Sprintf("%04x", tpHash(name)) == tag[2:6] {
			forged = name
		}
	}
	if forged == "" {
		t.Fatal("no name with the tag's hash found")
	}
	for _, tp := range []string{forged, "calm"} {
		ev := features.Event{DecisionID: id[:32] + tag[:2] + fmt.Sprintf("%04x", tpHash(tp)) + tag[6:], Touchpoint: tp, Type: "click"}
		e.Attribute(&ev)
		if len(ev.Tallies) != 0 {
			t.Errorf("%s: tallies %+v", tp, ev.Tallies)
		}
	}
}

func FuzzAttribute(f *testing.F) {
	e, _ := newLearningEngine(f, mapSource{})
	for _, seed := range []string{"01a22c5ca2a6b7e95c1b00f915b15911.xdee785e3edbe.b33dfe6cf1660", "", ".", strings.Repeat(".x", 60)} {
		f.Add(seed, "calm")
	}
	f.Fuzz(func(t *testing.T, id, tp string) {
		ev := features.Event{DecisionID: id, Touchpoint: tp, Type: "click"}
		e.Attribute(&ev)
		if len(ev.Tallies) > 2*maxTags { // a conversion adds its revenue

			t.Fatalf("%d tallies from one id", len(ev.Tallies))
		}
	})
}

// A replay engine decides bandit placements by score and counts nothing.
func TestWithoutLearning(t *testing.T) {
	e, store := newLearningEngine(t, mapSource{}, WithoutLearning())
	first := ""
	for i := 0; i < 200; i++ {
		d := decide(t, e, Request{CustomerID: fmt.Sprintf("w-%d", i), Context: web("/"), Placements: []PlacementRequest{{ID: "banner"}, {ID: "strip"}}})
		tp := d.Placements[1].Items[0].Touchpoint
		if first == "" {
			first = tp
		}
		if tp != first || len(d.ID) != 32 {
			t.Fatalf("decision %s showed %s, first %s", d.ID, tp, first)
		}
	}
	e.learnOnce(context.Background(), store)
	if got, _ := store.ReadTallies(context.Background(), "exp:banner_test"); len(got) != 0 {
		t.Errorf("a replay counted exposures: %v", got)
	}
}

// flakyTallies fails while down is set.
type flakyTallies struct {
	features.Tallies
	down bool
}

func (f *flakyTallies) AddTallies(ctx context.Context, t []features.Tally) error {
	if f.down {
		return fmt.Errorf("store down")
	}
	return f.Tallies.AddTallies(ctx, t)
}

func (f *flakyTallies) ReadTallies(ctx context.Context, scope string) (map[string]float64, error) {
	if f.down {
		return nil, fmt.Errorf("store down")
	}
	return f.Tallies.ReadTallies(ctx, scope)
}

// Exposures a failed flush could not write are written by the next one;
// a failed refresh keeps the posteriors; both are counted.
func TestLearningSurvivesStoreFailures(t *testing.T) {
	e, store := newLearningEngine(t, mapSource{})
	ctx := context.Background()
	flaky := &flakyTallies{Tallies: store, down: true}
	for i := 0; i < 50; i++ {
		decide(t, e, Request{CustomerID: fmt.Sprintf("f-%d", i), Context: web("/"), Placements: []PlacementRequest{{ID: "banner"}}})
	}
	e.learnOnce(ctx, flaky)
	if st := e.Status(); st.FlushFailures != 1 || st.RefreshFailures != 1 || st.ExposuresFlushed != 0 {
		t.Errorf("after a failed flush and refresh: %+v", st)
	}
	flaky.down = false
	e.learnOnce(ctx, flaky)
	rep, _ := e.ExperimentReport(ctx, "banner_test")
	var total int64
	for _, a := range rep.Arms {
		total += a.Exposures
	}
	if total != 50 || e.Status().ExposuresFlushed != 50 {
		t.Errorf("%d exposures in the store after the store came back, %d flushed; want 50", total, e.Status().ExposuresFlushed)
	}
}

// hash32 is FNV-1a as the standard library computes it: tags made by
// one build are read by another.
func TestHash32IsFNV1a(t *testing.T) {
	for _, parts := range [][]string{{"x", "cart_coupon_test", "control"}, {"tp", ""}, {}} {
		h := fnv.New32a()
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
		if got := hash32(parts...); got != h.Sum32() {
			t.Errorf("hash32(%q) = %08x, FNV-1a says %08x", parts, got, h.Sum32())
		}
	}
}
