package features

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOverlay(t *testing.T) {
	base, err := LoadJSONL(strings.NewReader(`{"id":"a","features":{"ltv":100,"tier":"gold"}}`+"\n"), "t.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var changedMu sync.Mutex
	var changed []string
	o := NewOverlay(base, func(id string) { changedMu.Lock(); changed = append(changed, id); changedMu.Unlock() })
	ctx := context.Background()

	if err := o.PutFeatures(ctx, "a", map[string]Value{"ltv": Number(250)}); err != nil {
		t.Fatal(err)
	}
	rec, _ := o.Lookup(ctx, "a")
	if rec.Values.Map()["ltv"].Num != 250 || rec.Values.Map()["tier"].Str != "gold" {
		t.Errorf("merged record = %+v", rec.Values)
	}
	if rec, _ := o.Lookup(ctx, "nobody"); rec != nil {
		t.Errorf("unknown customer = %+v", rec)
	}

	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	batch := []Event{
		{ID: "e1", CustomerID: "a", Touchpoint: "coupon", Kind: "coupon", Type: EventImpression, Time: now},
		{ID: "e2", CustomerID: "a", Touchpoint: "coupon", Kind: "coupon", Type: EventImpression, Time: now},
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); o.ApplyEvents(ctx, slices.Clone(batch)) }() // retried batches; ApplyEvents marks its events
	}
	wg.Wait()
	rec, _ = o.Lookup(ctx, "a")
	counts := map[string]int64{}
	for _, c := range rec.Counters {
		counts[fmt.Sprintf("%s|%s|%d", c.Event, c.Subject, c.Day)] = c.Count
	}
	day := Day(now)
	for _, subject := range []string{"all", "tp:coupon", "kind:coupon"} {
		if got := counts[fmt.Sprintf("impression|%s|%d", subject, day)]; got != 2 {
			t.Errorf("%s impressions = %d, want 2 (each event once)", subject, got)
		}
	}

	o.PutConsent(ctx, "a", map[string]Consent{"email": {Granted: true, At: now}})
	rec, _ = o.Lookup(ctx, "a")
	if !rec.Consent["email"].Granted {
		t.Errorf("consent = %+v", rec.Consent)
	}

	o.Erase(ctx, "a")
	if rec, _ := o.Lookup(ctx, "a"); rec != nil {
		t.Errorf("erased customer = %+v", rec)
	}
	o.PutFeatures(ctx, "a", map[string]Value{"tier": String("silver")})
	rec, _ = o.Lookup(ctx, "a")
	if rec.Values.Len() != 1 || rec.Values.Map()["tier"].Str != "silver" || len(rec.Counters) != 0 {
		t.Errorf("re-created customer keeps erased data: %+v", rec)
	}
	if len(changed) < 5 {
		t.Errorf("onChange called %d times, want one per write", len(changed))
	}
}

func newBoundedOverlay(t *testing.T, base string, cfg OverlayConfig) *Overlay {
	t.Helper()
	store, err := LoadJSONL(strings.NewReader(base), "base.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewBoundedOverlay(store, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOverlayConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*OverlayConfig)
		want   string
	}{
		{"default", func(*OverlayConfig) {}, ""},
		{"no event ids", func(c *OverlayConfig) { c.MaxEventIDs = 0 }, "overlay.max_event_ids must be positive, got 0"},
		{"negative bytes", func(c *OverlayConfig) { c.MaxBytes = -1 }, "overlay.max_bytes must be positive, got -1"},
		{"no counters", func(c *OverlayConfig) { c.MaxCountersPerCustomer = 0 }, "overlay.max_counters_per_customer must be positive, got 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultOverlayConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := NewBoundedOverlay(constStore{}, nil, OverlayConfig{}); err == nil {
		t.Error("NewBoundedOverlay accepted a zero config")
	}
}

// TestOverlayKnown checks that only features make a customer known: events
// and consent for an unknown or erased id keep counters without that.
func TestOverlayKnown(t *testing.T) {
	o := newBoundedOverlay(t, `{"id":"a","features":{"tier":"gold"}}`+"\n"+`{"id":"empty","features":{}}`+"\n", DefaultOverlayConfig())
	ctx := context.Background()
	now := time.Now()
	click := func(customer, id string) {
		t.Helper()
		if n, err := o.ApplyEvents(ctx, []Event{{ID: id, CustomerID: customer, Touchpoint: "t", Type: EventClick, Time: now}}); n != 1 || err != nil {
			t.Fatalf("ApplyEvents(%s) = %d, %v", customer, n, err)
		}
	}
	known := func(id string) (bool, int) {
		t.Helper()
		rec, err := o.Lookup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec == nil {
			return false, 0
		}
		return rec.Known(), len(rec.Counters)
	}
	tests := []struct {
		name      string
		id        string
		write     func()
		known     bool
		countered bool
	}{
		{"unknown id", "ghost-1", func() {}, false, false},
		{"events for an unknown id", "ghost-1", func() { click("ghost-1", "g1") }, false, true},
		{"consent for an unknown id", "ghost-2", func() {
			o.PutConsent(ctx, "ghost-2", map[string]Consent{"email": {Granted: true}})
		}, false, false},
		{"base customer", "a", func() {}, true, false},
		{"base customer with events", "a", func() { click("a", "a1") }, true, true},
		{"base customer with no features", "empty", func() {}, true, false},
		{"erased base customer", "a", func() { o.Erase(ctx, "a") }, false, false},
		{"events after erasure", "a", func() { click("a", "a2") }, false, true},
		{"features after erasure", "a", func() {
			o.PutFeatures(ctx, "a", map[string]Value{"tier": String("silver")})
		}, true, true},
		{"features for an unknown id", "ghost-1", func() {
			o.PutFeatures(ctx, "ghost-1", map[string]Value{"tier": String("bronze")})
		}, true, true},
		{"only a deleted feature", "ghost-3", func() {
			o.PutFeatures(ctx, "ghost-3", map[string]Value{"tier": {}})
		}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.write()
			k, counters := known(tc.id)
			if k != tc.known || (counters > 0) != tc.countered {
				t.Errorf("%s: known = %v with %d counters; want known %v, counters %v", tc.id, k, counters, tc.known, tc.countered)
			}
		})
	}
	var nilRec *Record
	if nilRec.Known() {
		t.Error("a nil record is known")
	}
}

// TestOverlayEventIDsBounded remembers at most MaxEventIDs ids, forgetting
// the oldest first, and forgets any after eventMemory.
func TestOverlayEventIDsBounded(t *testing.T) {
	cfg := DefaultOverlayConfig()
	cfg.MaxEventIDs = 3
	o := newBoundedOverlay(t, "", cfg)
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return now }
	ctx := context.Background()
	apply := func(ids ...string) int {
		t.Helper()
		var batch []Event
		for _, id := range ids {
			batch = append(batch, Event{ID: id, CustomerID: "c", Touchpoint: "t", Type: EventClick, Time: now})
		}
		n, err := o.ApplyEvents(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		ids     []string
		applied int
		held    int
		evicted uint64
	}{
		{[]string{"e1", "e2", "e3"}, 3, 3, 0},
		{[]string{"e1", "e2", "e3"}, 0, 3, 0}, // all remembered
		{[]string{"e4", "e5"}, 2, 3, 2},       // e1 and e2 make room
		{[]string{"e3", "e4", "e5"}, 0, 3, 2}, // the newest three stay
		{[]string{"e1"}, 1, 3, 3},             // forgotten: counts again, and drops e3
		{[]string{"e3"}, 1, 3, 4},
	}
	for i, st := range steps {
		if got := apply(st.ids...); got != st.applied {
			t.Errorf("step %d %v: applied %d, want %d", i, st.ids, got, st.applied)
		}
		if s := o.Stats(); s.EventIDs != st.held || s.EvictedEventIDs != st.evicted {
			t.Errorf("step %d: %d ids held, %d evicted; want %d and %d", i, s.EventIDs, s.EvictedEventIDs, st.held, st.evicted)
		}
	}

	// Ids are remembered per customer, as the Redis store does.
	if n, _ := o.ApplyEvents(ctx, []Event{{ID: "e3", CustomerID: "other", Touchpoint: "t", Type: EventClick, Time: now}}); n != 1 {
		t.Errorf("the same event id for another customer applied %d, want 1", n)
	}

	// After eventMemory every id is forgotten, which is not an eviction.
	now = now.Add(eventMemory + time.Second)
	before := o.Stats().EvictedEventIDs
	if got := apply("e5"); got != 1 {
		t.Errorf("a day-old id applied %d, want 1", got)
	}
	if s := o.Stats(); s.EventIDs != 1 || s.EvictedEventIDs != before {
		t.Errorf("after expiry: %+v; want 1 id held and no new evictions", s)
	}
}

func TestEventSetGrowsAndWraps(t *testing.T) {
	s := newEventSet(3000)
	key := func(i int) eventKey { return eventDigest("c", fmt.Sprint(i)) }
	for i := range 5000 {
		if !s.add(key(i), int64(i)) {
			t.Fatalf("id %d not new", i)
		}
	}
	if s.n != 3000 || len(s.ring) != 3000 || len(s.index) != 3000 || s.evicted != 2000 {
		t.Fatalf("n %d, ring %d, index %d, evicted %d", s.n, len(s.ring), len(s.index), s.evicted)
	}
	for i := range 5000 {
		if _, held := s.index[key(i)]; held != (i >= 2000) {
			t.Fatalf("id %d held = %v", i, held)
		}
	}
	s.expire(3999) // entries were added at their index
	if s.n != 1000 || len(s.index) != 1000 {
		t.Fatalf("after expiry: n %d, index %d", s.n, len(s.index))
	}
}

// TestOverlayCustomersBounded drops the least recently written customers
// once the estimate passes MaxBytes.
func TestOverlayCustomersBounded(t *testing.T) {
	cfg := DefaultOverlayConfig()
	o := newBoundedOverlay(t, "", cfg)
	ctx := context.Background()
	put := func(id string) {
		t.Helper()
		if err := o.PutFeatures(ctx, id, map[string]Value{"tier": String("gold")}); err != nil {
			t.Fatal(err)
		}
	}
	put("probe")
	one := o.Stats().Bytes
	o = newBoundedOverlay(t, "", OverlayConfig{MaxEventIDs: 10, MaxBytes: 3 * one, MaxCountersPerCustomer: 10})

	for _, id := range []string{"c1", "c2", "c3"} {
		put(id)
	}
	put("c1") // c1 is now the most recently written, c2 the oldest
	put("c4")
	if st := o.Stats(); st.Customers != 3 || st.EvictedCustomers != 1 || st.Bytes > 3*one {
		t.Fatalf("Stats = %+v; want 3 customers within %d bytes, 1 evicted", st, 3*one)
	}
	for id, want := range map[string]bool{"c1": true, "c2": false, "c3": true, "c4": true} {
		rec, _ := o.Lookup(ctx, id)
		if rec.Known() != want {
			t.Errorf("%s known = %v, want %v", id, rec.Known(), want)
		}
	}
	// Events count as writes too.
	if _, err := o.ApplyEvents(ctx, []Event{{ID: "x", CustomerID: "c5", Touchpoint: "t", Type: EventClick, Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := o.Lookup(ctx, "c3"); rec != nil {
		t.Errorf("c3 was the oldest and should have made room: %+v", rec)
	}
	if st := o.Stats(); st.Bytes > 3*one || st.EvictedCustomers < 2 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestOverlayEvictionKeepsErasure: dropping what was written for an erased
// base customer must not bring their base record back, while a base
// customer who was only updated goes back to the file's features.
func TestOverlayEvictionKeepsErasure(t *testing.T) {
	base := `{"id":"a","features":{"tier":"gold"}}` + "\n" + `{"id":"b","features":{"tier":"gold"}}` + "\n"
	o := newBoundedOverlay(t, base, OverlayConfig{MaxEventIDs: 100, MaxBytes: 4 << 10, MaxCountersPerCustomer: 100})
	changed := map[string]int{}
	o.onChange = func(id string) { changed[id]++ }
	ctx := context.Background()
	if err := o.Erase(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	o.PutFeatures(ctx, "a", map[string]Value{"tier": String("silver")})
	o.PutFeatures(ctx, "b", map[string]Value{"tier": String("silver")})
	o.Erase(ctx, "nobody") // not in the base: nothing to keep
	for i := 0; o.customers["a"] != nil || o.customers["b"] != nil; i++ {
		if i > 1000 {
			t.Fatal("the overlay never evicted a and b")
		}
		o.PutFeatures(ctx, fmt.Sprintf("filler-%d", i), map[string]Value{"tier": String("bronze")})
	}
	if rec, _ := o.Lookup(ctx, "a"); rec != nil {
		t.Errorf("erased customer came back after eviction: %+v", rec)
	}
	if rec, _ := o.Lookup(ctx, "b"); !rec.Known() || rec.Values.Map()["tier"].Str != "gold" {
		t.Errorf("b after eviction = %+v; want the base features", rec)
	}
	// Caches hear of the eviction as of any write.
	if changed["a"] != 3 || changed["b"] != 2 {
		t.Errorf("onChange calls: a %d, b %d; want 3 (erase, put, eviction) and 2 (put, eviction)", changed["a"], changed["b"])
	}
	if st := o.Stats(); st.ErasedCustomers != 1 {
		t.Errorf("Stats = %+v; want the one base erasure kept", st)
	}
}

// TestOverlayCountersPerCustomer: a client varying touchpoint names cannot
// grow one customer without limit; the oldest day goes first.
func TestOverlayCountersPerCustomer(t *testing.T) {
	o := newBoundedOverlay(t, "", OverlayConfig{MaxEventIDs: 100, MaxBytes: 1 << 20, MaxCountersPerCustomer: 4})
	ctx := context.Background()
	day1 := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	n := 0
	click := func(tp string, at time.Time) {
		n++
		// No kind, rule or channel: each event counts for "all" and "tp:<tp>".
		if _, err := o.ApplyEvents(ctx, []Event{{ID: fmt.Sprint(n), CustomerID: "c", Touchpoint: tp, Type: EventClick, Time: at}}); err != nil {
			t.Fatal(err)
		}
	}
	counters := func() map[string]int64 {
		rec, _ := o.Lookup(ctx, "c")
		out := map[string]int64{}
		for _, c := range rec.Counters {
			out[fmt.Sprintf("%s@%d", c.Subject, c.Day-Day(day1))] = c.Count
		}
		return out
	}
	click("a", day1)
	click("b", day1)
	click("c", day1) // four counters: all, tp:a, tp:b, tp:c
	click("d", day1) // full with nothing older: tp:d is not counted, all is
	want := map[string]int64{"all@0": 4, "tp:a@0": 1, "tp:b@0": 1, "tp:c@0": 1}
	if got := counters(); !maps.Equal(got, want) {
		t.Errorf("day 1: %v, want %v", got, want)
	}
	click("a", day2) // day 1 makes room
	want = map[string]int64{"all@1": 1, "tp:a@1": 1}
	if got := counters(); !maps.Equal(got, want) {
		t.Errorf("day 2: %v, want %v", got, want)
	}
	click("z", day1) // older than every kept day: stays out
	if got := counters(); !maps.Equal(got, map[string]int64{"all@1": 1, "tp:a@1": 1, "all@0": 1, "tp:z@0": 1}) {
		t.Errorf("late day-1 event: %v", got)
	}
	if st := o.Stats(); st.DroppedCounters != 5 {
		t.Errorf("DroppedCounters = %d, want 5 (tp:d refused, day 1's four dropped)", st.DroppedCounters)
	}
}

// TestOverlayMemoryWithinBounds sends many events with unique ids and
// customers and checks the heap the overlay holds stays near its bounds.
func TestOverlayMemoryWithinBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 300,000 events")
	}
	cfg := OverlayConfig{MaxEventIDs: 100_000, MaxBytes: 8 << 20, MaxCountersPerCustomer: 64}
	o := newBoundedOverlay(t, "", cfg)
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	now := time.Now()
	batch := make([]Event, 100)
	for i := range 3000 {
		for j := range batch {
			k := i*len(batch) + j
			batch[j] = Event{ID: fmt.Sprintf("event-%09d", k), CustomerID: fmt.Sprintf("customer-%09d", k),
				Touchpoint: "tp-" + fmt.Sprint(k%50), Kind: "coupon", Rule: "r", Channel: "web", Type: EventImpression, Time: now}
		}
		if _, err := o.ApplyEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := o.Stats()
	if st.EventIDs != cfg.MaxEventIDs || st.Bytes > cfg.MaxBytes || st.EvictedCustomers == 0 {
		t.Errorf("Stats = %+v", st)
	}
	// Event ids cost about 60 bytes each; the customer estimate may be off,
	// but not by a factor of two.
	limit := int64(cfg.MaxEventIDs)*100 + 2*cfg.MaxBytes
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > limit {
		t.Errorf("the heap grew by %d MiB; want under %d MiB", grown>>20, limit>>20)
	} else {
		t.Logf("heap grew by %.1f MiB for %+v", float64(grown)/(1<<20), st)
	}
	runtime.KeepAlive(o)
}

func TestOverlayTalliesCountNewEventsOnce(t *testing.T) {
	o := NewOverlay(constStore{}, nil)
	ctx := context.Background()
	click := func(customer, id string) Event {
		return Event{ID: id, CustomerID: customer, Touchpoint: "t", Type: EventClick, Time: time.Now(),
			Tallies: []Tally{{Scope: "bandit:p", Field: "|t|click", Delta: 1}}}
	}
	batch := []Event{click("a", "e1"), click("b", "e1")}
	for range 3 {
		if _, err := o.ApplyEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.AddTallies(ctx, []Tally{{Scope: "bandit:p", Field: "|t|impression", Delta: 5}}); err != nil {
		t.Fatal(err)
	}
	got, _ := o.ReadTallies(ctx, "bandit:p")
	if got["|t|click"] != 2 || got["|t|impression"] != 5 || len(got) != 2 {
		t.Errorf("tallies = %v; want 2 clicks (one per new event) and 5 impressions", got)
	}
	got["|t|click"] = 100 // a copy: the store's counters stay
	if again, _ := o.ReadTallies(ctx, "bandit:p"); again["|t|click"] != 2 {
		t.Errorf("ReadTallies handed out the store's own map")
	}
}

// A behavioural event's updates apply with it, once per event id: sets,
// additions to the overlay's number, the base record's, or the default.
func TestOverlayAppliesEventUpdatesOnce(t *testing.T) {
	base, err := LoadJSONL(strings.NewReader(`{"id":"a","features":{"orders_total":4,"cart_value":10,"tier":"gold"}}`+"\n"), "t.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var changed atomic.Int64
	o := NewOverlay(base, func(string) { changed.Add(1) })
	ctx := context.Background()
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	cart := func(id, customer string, value float64) Event {
		return Event{ID: id, CustomerID: customer, Type: "cart_updated", Time: now, Updates: []FeatureUpdate{
			{Feature: "cart_value", Op: UpdateSet, Value: Number(value)},
			{Feature: "tags", Op: UpdateSet, Value: List("x", "y")},
		}}
	}
	checkout := func(id, customer string) Event {
		return Event{ID: id, CustomerID: customer, Type: "checkout_completed", Time: now, Updates: []FeatureUpdate{
			{Feature: "cart_value", Op: UpdateSet, Value: Number(0)},
			{Feature: "orders_total", Op: UpdateAdd, Value: Number(1)},
			{Feature: "points", Op: UpdateAdd, Value: Number(10), Base: 100},
		}}
	}
	batch := []Event{cart("e1", "a", 80), checkout("e2", "a"), cart("e3", "new", 30), checkout("e4", "new")}
	for try := range 3 { // retried batches count once
		if _, err := o.ApplyEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for _, ev := range batch {
			if ev.Applied != (try == 0) {
				t.Errorf("try %d: event %s Applied = %v", try, ev.ID, ev.Applied)
			}
		}
	}
	a, _ := o.Lookup(ctx, "a")
	if v := a.Values.Map(); v["cart_value"].Num != 0 || v["orders_total"].Num != 5 || v["points"].Num != 110 || v["tier"].Str != "gold" || len(v["tags"].List) != 2 {
		t.Errorf("a = %+v", v)
	}
	n, _ := o.Lookup(ctx, "new")
	if v := n.Values.Map(); v["orders_total"].Num != 1 || v["points"].Num != 110 {
		t.Errorf("a customer only events know = %+v", v)
	}
	days := 0
	for _, c := range a.Counters {
		if c.Event == "cart_updated" && c.Subject == "all" && c.Count == 1 {
			days++
		}
		if strings.HasPrefix(c.Subject, "tp:") {
			t.Errorf("a behavioural event counted for a touchpoint: %+v", c)
		}
	}
	if days != 1 {
		t.Errorf("cart_updated counted %d times for all", days)
	}
	if changed.Load() == 0 {
		t.Error("the cache was not told")
	}
	// A string where a number is expected is replaced, not added to.
	o.PutFeatures(ctx, "a", map[string]Value{"orders_total": String("many")})
	o.ApplyEvents(ctx, []Event{checkout("e5", "a")})
	if a, _ := o.Lookup(ctx, "a"); a.Values.Map()["orders_total"].Num != 1 {
		t.Errorf("adding to a string = %+v, want the default plus one", a.Values.Map()["orders_total"])
	}
}
