package redisstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

const demoCustomers = "../../configs/demo/customers.jsonl"

func TestStandalone(t *testing.T) {
	srv := redistest.Start(t)
	runSuite(t, srv.URL())
}

func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	runSuite(t, c.URL())

	// The suite's customers are spread over every master.
	for _, node := range c.Servers {
		n, err := node.Do("DBSIZE")
		if err != nil || n == "0" {
			t.Errorf("node %s holds %s keys (%v); want some", node.Addr(), n, err)
		}
	}
}

// runSuite runs the tests that must pass on a standalone Redis and a Cluster
// alike. Subtests use their own customers and touchpoints.
func runSuite(t *testing.T, url string) {
	ctx := context.Background()
	s := openStore(t, testConfig(url))

	t.Run("TalliesCountNewEventsOnce", func(t *testing.T) {
		// Two customers on (likely) different slots, one event retried:
		// the tallies of an event count once, like its counters.
		scope := "exp:tally-test"
		click := func(customer, id string) features.Event {
			ev := event(customer, id, features.EventClick, "t", time.Now())
			ev.Tallies = []features.Tally{{Scope: scope, Field: "b|click", Delta: 1}}
			return ev
		}
		batch := []features.Event{click("tally-a", "e1"), click("tally-b", "e1"), click("tally-a", "e2")}
		if n, err := s.ApplyEvents(ctx, batch); n != 3 || err != nil {
			t.Fatalf("first batch applied %d, %v; want 3", n, err)
		}
		batch = append(batch, click("tally-b", "e3"))
		if n, err := s.ApplyEvents(ctx, batch); n != 1 || err != nil {
			t.Fatalf("retried batch applied %d, %v; want 1", n, err)
		}
		if err := s.AddTallies(ctx, []features.Tally{{Scope: scope, Field: "b|exposures", Delta: 2}, {Scope: scope, Field: "b|revenue", Delta: 12.5}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReadTallies(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"b|click": 4, "b|exposures": 2, "b|revenue": 12.5}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("tallies = %v, want %v", got, want)
		}
		if got, err := s.ReadTallies(ctx, "exp:none"); len(got) != 0 || err != nil {
			t.Errorf("an unknown scope reads %v, %v; want nothing", got, err)
		}
	})

	t.Run("ReserveDecisionsIsExact", func(t *testing.T) {
		// Two stores stand for two nodes; 200 concurrent reservations
		// against a cap of 3 per 7 days (one already used yesterday) and
		// a global cap of 10 grant exactly 2.
		other := openStore(t, testConfig(url))
		id := "reserve-1"
		day := features.Day(time.Now())
		limits := []features.DecisionLimit{{Subject: "tp:deal", Days: 7, Count: 3}, {Subject: "all", Days: 1, Count: 10}}
		if ok, err := s.ReserveDecisions(ctx, id, day-1, limits); !ok || err != nil {
			t.Fatalf("first reservation = %v, %v", ok, err)
		}
		var granted atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(st *Store) {
				defer wg.Done()
				ok, err := st.ReserveDecisions(ctx, id, day, limits)
				if err != nil {
					t.Error(err)
				}
				if ok {
					granted.Add(1)
				}
			}([]*Store{s, other}[i%2])
		}
		wg.Wait()
		if granted.Load() != 2 {
			t.Errorf("granted %d reservations, want exactly 2", granted.Load())
		}
		rec, err := s.Lookup(ctx, id)
		if err != nil || rec == nil {
			t.Fatalf("Lookup = %+v, %v", rec, err)
		}
		var today int64
		for _, c := range rec.Counters {
			if c.Event == features.EventDecision && c.Subject == "tp:deal" && c.Day == day {
				today = c.Count
			}
		}
		if today != 2 {
			t.Errorf("decision counter today = %d, want 2", today)
		}
	})

	t.Run("ImportAndLookup", func(t *testing.T) {
		data, err := os.ReadFile(demoCustomers)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := s.Import(ctx, bytes.NewReader(data), ImportOptions{Name: "customers.jsonl", BatchSize: 250})
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(data, []byte("\n"))
		if stats.Customers != lines || stats.Committed != lines || stats.Lines != lines {
			t.Fatalf("stats = %+v; want %d customers and lines", stats, lines)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			want, err := features.ParseRecord(sc.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Lookup(ctx, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || got.ID != want.ID || !reflect.DeepEqual(got.Values.Map(), want.Values.Map()) {
				t.Fatalf("Lookup(%s) = %+v; want the features of %+v", want.ID, got, want)
			}
			if got.Counters != nil || got.Consent != nil {
				t.Fatalf("Lookup(%s) has counters or consent: %+v", want.ID, got)
			}
		}
	})

	t.Run("UnknownCustomer", func(t *testing.T) {
		for _, id := range []string{"visitor-1", "", "}{"} {
			rec, err := s.Lookup(ctx, id)
			if rec != nil || err != nil {
				t.Errorf("Lookup(%q) = %+v, %v; want nil, nil", id, rec, err)
			}
		}
	})

	t.Run("PutFeatures", func(t *testing.T) {
		id := "put-1"
		if err := s.PutFeatures(ctx, id, map[string]features.Value{
			"tier": features.String("gold"), "ltv": features.Number(1200.5), "vip": features.Bool(true),
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutFeatures(ctx, id, map[string]features.Value{
			"tier":      features.String("platinum"),
			"interests": features.List("shoes", "bags"),
			"vip":       {}, // KindMissing deletes
		}); err != nil {
			t.Fatal(err)
		}
		rec, err := s.Lookup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]features.Value{
			"tier": features.String("platinum"), "ltv": features.Number(1200.5),
			"interests": features.List("shoes", "bags"),
		}
		if rec == nil || !reflect.DeepEqual(rec.Values.Map(), want) {
			t.Fatalf("after merge: %+v; want %+v", rec, want)
		}
		err = s.PutFeatures(ctx, id, map[string]features.Value{"bad": features.Number(nanValue())})
		if err == nil || !strings.Contains(err.Error(), `feature "bad"`) {
			t.Errorf("PutFeatures with NaN: %v", err)
		}
	})

	t.Run("WeirdIDs", func(t *testing.T) {
		// Ids that would break a hash tag still keep all their keys in one
		// slot, and do not collide with each other.
		for i, id := range []string{"a}b", "{x}", "}", "100%", "%7D", "ünï cødé"} {
			if err := s.PutFeatures(ctx, id, map[string]features.Value{"n": features.Number(float64(i))}); err != nil {
				t.Fatalf("PutFeatures(%q): %v", id, err)
			}
			if _, err := s.ApplyEvents(ctx, []features.Event{event(id, "w"+fmt.Sprint(i), features.EventClick, "t", time.Now())}); err != nil {
				t.Fatalf("ApplyEvents(%q): %v", id, err)
			}
		}
		for i, id := range []string{"a}b", "{x}", "}", "100%", "%7D", "ünï cødé"} {
			rec, err := s.Lookup(ctx, id)
			if err != nil || rec == nil || !reflect.DeepEqual(rec.Values.Map()["n"], features.Number(float64(i))) || len(rec.Counters) == 0 {
				t.Errorf("Lookup(%q) = %+v, %v", id, rec, err)
			}
		}
	})

	t.Run("Consent", func(t *testing.T) {
		id := "consent-1"
		t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		if err := s.PutConsent(ctx, id, map[string]features.Consent{
			"email": {Granted: true, At: t0},
			"sms":   {Granted: false, At: t0},
		}); err != nil {
			t.Fatal(err)
		}
		// A newer answer replaces, an older one is ignored, a zero time is now.
		if err := s.PutConsent(ctx, id, map[string]features.Consent{
			"email": {Granted: false, At: t0.Add(time.Hour)},
			"sms":   {Granted: true, At: t0.Add(-time.Hour)},
			"push":  {Granted: true},
		}); err != nil {
			t.Fatal(err)
		}
		rec, err := s.Lookup(ctx, id)
		if err != nil || rec == nil {
			t.Fatalf("Lookup = %+v, %v", rec, err)
		}
		if rec.Values.Len() != 0 {
			t.Errorf("a consent-only customer has features %+v", rec.Values)
		}
		if got := rec.Consent["email"]; got.Granted || !got.At.Equal(t0.Add(time.Hour)) {
			t.Errorf("email = %+v", got)
		}
		if got := rec.Consent["sms"]; got.Granted || !got.At.Equal(t0) {
			t.Errorf("sms = %+v; the older grant must not win", got)
		}
		if got := rec.Consent["push"]; !got.Granted || time.Since(got.At) > time.Minute {
			t.Errorf("push = %+v", got)
		}
	})

	t.Run("EventsAndCounters", func(t *testing.T) {
		id := "events-1"
		now := time.Now()
		yesterday := now.Add(-24 * time.Hour)
		batch := []features.Event{
			event(id, "e1", features.EventImpression, "cart_coupon_10", now),
			event(id, "e2", features.EventImpression, "cart_coupon_10", now),
			event(id, "e3", features.EventClick, "cart_coupon_10", now),
			event(id, "e4", features.EventImpression, "cart_coupon_10", yesterday),
			event(id, "e1", features.EventImpression, "cart_coupon_10", now), // duplicate in the batch
			event("events-2", "e5", features.EventImpression, "home_hero", now),
		}
		n, err := s.ApplyEvents(ctx, batch)
		if err != nil || n != 5 {
			t.Fatalf("ApplyEvents = %d, %v; want 5", n, err)
		}
		n, err = s.ApplyEvents(ctx, batch)
		if err != nil || n != 0 {
			t.Fatalf("retried ApplyEvents = %d, %v; want 0", n, err)
		}
		var limits []features.DecisionLimit
		for _, subject := range features.Subjects("cart_coupon_10", "coupon", "", "") {
			limits = append(limits, features.DecisionLimit{Subject: subject, Days: 1, Count: 100})
		}
		if ok, err := s.ReserveDecisions(ctx, id, features.Day(now), limits); !ok || err != nil {
			t.Fatalf("ReserveDecisions = %v, %v", ok, err)
		}
		rec, err := s.Lookup(ctx, id)
		if err != nil || rec == nil {
			t.Fatalf("Lookup = %+v, %v", rec, err)
		}
		today, yday := features.Day(now), features.Day(yesterday)
		want := map[features.Counter]bool{}
		for _, c := range []features.Counter{
			ctr(features.EventImpression, "all", today, 2), ctr(features.EventImpression, "tp:cart_coupon_10", today, 2),
			ctr(features.EventImpression, "kind:coupon", today, 2), ctr(features.EventImpression, "rule:r1", today, 2),
			ctr(features.EventImpression, "channel:web", today, 2),
			ctr(features.EventClick, "all", today, 1), ctr(features.EventClick, "tp:cart_coupon_10", today, 1),
			ctr(features.EventClick, "kind:coupon", today, 1), ctr(features.EventClick, "rule:r1", today, 1),
			ctr(features.EventClick, "channel:web", today, 1),
			ctr(features.EventImpression, "all", yday, 1), ctr(features.EventImpression, "tp:cart_coupon_10", yday, 1),
			ctr(features.EventImpression, "kind:coupon", yday, 1), ctr(features.EventImpression, "rule:r1", yday, 1),
			ctr(features.EventImpression, "channel:web", yday, 1),
			ctr(features.EventDecision, "all", today, 1), ctr(features.EventDecision, "tp:cart_coupon_10", today, 1),
			ctr(features.EventDecision, "kind:coupon", today, 1),
		} {
			want[c] = true
		}
		if len(rec.Counters) != len(want) {
			t.Errorf("got %d counters, want %d: %+v", len(rec.Counters), len(want), rec.Counters)
		}
		for _, c := range rec.Counters {
			if !want[c] {
				t.Errorf("unexpected counter %+v", c)
			}
		}
	})

	t.Run("ConcurrentDuplicateBatches", func(t *testing.T) {
		var batch []features.Event
		for i := range 60 {
			batch = append(batch, event(fmt.Sprintf("dup-%d", i%6), fmt.Sprintf("d%d", i), features.EventImpression, "home_hero", time.Now()))
		}
		var total atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				n, err := s.ApplyEvents(ctx, slices.Clone(batch)) // ApplyEvents marks its events
				if err != nil {
					t.Error(err)
				}
				total.Add(int64(n))
			})
		}
		wg.Wait()
		if total.Load() != 60 {
			t.Errorf("16 copies of a 60-event batch applied %d events; want 60", total.Load())
		}
		for c := range 6 {
			rec, err := s.Lookup(ctx, fmt.Sprintf("dup-%d", c))
			if err != nil || rec == nil {
				t.Fatalf("Lookup = %+v, %v", rec, err)
			}
			for _, counter := range rec.Counters {
				if counter.Count != 10 {
					t.Errorf("customer dup-%d: %+v; want 10", c, counter)
				}
			}
		}
	})

	t.Run("Erase", func(t *testing.T) {
		id := "erase-1"
		if err := s.PutFeatures(ctx, id, map[string]features.Value{"tier": features.String("gold")}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutConsent(ctx, id, map[string]features.Consent{"email": {Granted: true}}); err != nil {
			t.Fatal(err)
		}
		batch := []features.Event{event(id, "x1", features.EventClick, "t", time.Now())}
		if _, err := s.ApplyEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := s.Erase(ctx, id); err != nil {
			t.Fatal(err)
		}
		if rec, err := s.Lookup(ctx, id); rec != nil || err != nil {
			t.Fatalf("Lookup after Erase = %+v, %v; want unknown", rec, err)
		}
		// The markers stay: a retried batch does not bring counters back.
		if n, err := s.ApplyEvents(ctx, batch); n != 0 || err != nil {
			t.Fatalf("retried batch after Erase applied %d, %v", n, err)
		}
		if rec, err := s.Lookup(ctx, id); rec != nil || err != nil {
			t.Fatalf("Lookup after Erase and retry = %+v, %v; want unknown", rec, err)
		}
	})

	t.Run("KnownNeedsFeatures", func(t *testing.T) {
		// Events and consent keep state for any id, but only features make
		// a customer known, and an erased customer stays unknown until
		// features are written again.
		lookup := func(id string) *features.Record {
			t.Helper()
			rec, err := s.Lookup(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return rec
		}
		click := func(id, eventID string) {
			t.Helper()
			if n, err := s.ApplyEvents(ctx, []features.Event{event(id, eventID, features.EventClick, "t", time.Now())}); n != 1 || err != nil {
				t.Fatalf("ApplyEvents(%s) = %d, %v", id, n, err)
			}
		}
		click("ghost-1", "g1")
		if rec := lookup("ghost-1"); rec == nil || rec.Known() || len(rec.Counters) == 0 {
			t.Errorf("after an event for an unknown id: %+v; want counters and not known", rec)
		}
		if err := s.PutConsent(ctx, "ghost-2", map[string]features.Consent{"email": {Granted: true}}); err != nil {
			t.Fatal(err)
		}
		if rec := lookup("ghost-2"); rec == nil || rec.Known() || len(rec.Consent) != 1 {
			t.Errorf("after consent for an unknown id: %+v; want consent and not known", rec)
		}
		id := "known-1"
		if err := s.PutFeatures(ctx, id, map[string]features.Value{"tier": features.String("gold")}); err != nil {
			t.Fatal(err)
		}
		if !lookup(id).Known() {
			t.Fatal("a customer with features is not known")
		}
		if err := s.Erase(ctx, id); err != nil {
			t.Fatal(err)
		}
		click(id, "k1")
		if rec := lookup(id); rec.Known() {
			t.Errorf("an event after erasure made the customer known again: %+v", rec)
		}
		if err := s.PutFeatures(ctx, id, map[string]features.Value{"tier": features.String("silver")}); err != nil {
			t.Fatal(err)
		}
		if rec := lookup(id); !rec.Known() || rec.Values.Len() != 1 {
			t.Errorf("after features are written again: %+v; want known", rec)
		}
	})

	t.Run("BudgetsExact", func(t *testing.T) {
		other := openStore(t, testConfig(url)) // a second node
		day := features.Day(time.Now())
		var granted atomic.Int64
		var wg sync.WaitGroup
		for i := range 1000 {
			st := s
			if i%2 == 1 {
				st = other
			}
			wg.Go(func() {
				ok, err := st.Consume(ctx, "coupon_10", day, 100, 0)
				if err != nil {
					t.Error(err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		wg.Wait()
		if granted.Load() != 100 {
			t.Errorf("%d of 1000 concurrent Consume calls succeeded; want exactly 100", granted.Load())
		}
	})

	t.Run("BudgetsPerDay", func(t *testing.T) {
		day := features.Day(time.Now())
		count := func(day int32, total, perDay int64, n int) (granted int) {
			for range n {
				ok, err := s.Consume(ctx, "daily", day, total, perDay)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					granted++
				}
			}
			return granted
		}
		if got := count(day, 25, 10, 15); got != 10 {
			t.Errorf("day 1: %d granted, want 10", got)
		}
		if got := count(day+1, 25, 10, 15); got != 10 {
			t.Errorf("day 2: %d granted, want 10", got)
		}
		if got := count(day+2, 25, 10, 15); got != 5 {
			t.Errorf("day 3: %d granted, want the 5 left of the total", got)
		}
		if got := count(day+2, 0, 0, 3); got != 3 {
			t.Errorf("no limits: %d granted, want 3", got)
		}
	})

	runUpdateSuite(t, s, url)
	runTriggerSuite(t, s, url)

	t.Run("Invalidation", func(t *testing.T) {
		other := openStore(t, testConfig(url))
		in := subscribe(t, other)
		id := "inv-1"
		in.waitFor(t, id, 20*time.Second, func() {
			if err := s.PutFeatures(ctx, id, map[string]features.Value{"x": features.Number(1)}); err != nil {
				t.Fatal(err)
			}
		})
		// Now subscribed: each kind of write announces the customer.
		writes := map[string]func() error{
			"PutConsent": func() error {
				return s.PutConsent(ctx, id, map[string]features.Consent{"email": {Granted: true}})
			},
			"ApplyEvents": func() error {
				_, err := s.ApplyEvents(ctx, []features.Event{event(id, fmt.Sprint(time.Now().UnixNano()), features.EventClick, "t", time.Now())})
				return err
			},
			"BehaviouralEvent": func() error {
				ev := behaviour(id, fmt.Sprint(time.Now().UnixNano()), "cart_update", time.Now(), set("cart_value", features.Number(3)))
				_, err := s.ApplyEvents(ctx, []features.Event{ev})
				return err
			},
			"ReserveDecisions": func() error {
				_, err := s.ReserveDecisions(ctx, id, features.Day(time.Now()), []features.DecisionLimit{{Subject: "all", Days: 1, Count: 1 << 30}})
				return err
			},
			"Erase": func() error { return s.Erase(ctx, id) },
		}
		for name, write := range writes {
			if err := write(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			in.waitFor(t, id, 10*time.Second, nil)
		}
		// An import tells every node to drop everything.
		if _, err := s.Import(ctx, strings.NewReader(`{"id":"inv-2","features":{}}`+"\n"), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		in.waitFor(t, "", 10*time.Second, nil)
		if st := other.Stats(); st.Invalidations == 0 {
			t.Errorf("Stats = %+v; want invalidations counted", st)
		}
	})
}

func event(customer, id, typ, touchpoint string, at time.Time) features.Event {
	return features.Event{
		ID: id, CustomerID: customer, Touchpoint: touchpoint, Kind: "coupon", Rule: "r1",
		Channel: "web", Type: typ, Time: at,
	}
}

func ctr(event, subject string, day int32, count int64) features.Counter {
	return features.Counter{Event: event, Subject: subject, Day: day, Count: count}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestImportResume(t *testing.T) {
	srv := redistest.Start(t)
	s := openStore(t, testConfig(srv.URL()))
	ctx := context.Background()

	var in strings.Builder
	for i := 1; i <= 95; i++ {
		switch i {
		case 40:
			in.WriteString("   \n") // blank lines count as lines
		case 70:
			in.WriteString(`{"id":"r-70","features":{"bad":{"nested":1}}}` + "\n")
		default:
			fmt.Fprintf(&in, `{"id":"r-%d","features":{"n":%d}}`+"\n", i, i)
		}
	}
	var progress []ImportStats
	stats, err := s.Import(ctx, strings.NewReader(in.String()), ImportOptions{
		Name: "c.jsonl", BatchSize: 10, Pipelines: 3,
		Progress: func(st ImportStats) { progress = append(progress, st) },
	})
	var le *features.LoadError
	if !errors.As(err, &le) || le.Line != 70 || !strings.Contains(err.Error(), "c.jsonl:70:") {
		t.Fatalf("Import = %v; want an error at c.jsonl:70", err)
	}
	// Batches of ten records: the blank line 40 makes the fourth end at
	// 41, so the one holding line 70 starts at 62.
	if stats.Committed != 61 {
		t.Errorf("Committed = %d; want 61 (the batches before the bad line)", stats.Committed)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Committed <= progress[i-1].Committed {
			t.Errorf("progress went backwards: %+v", progress)
		}
	}
	if len(progress) == 0 || progress[len(progress)-1].Committed != stats.Committed {
		t.Errorf("progress %+v does not end at %d", progress, stats.Committed)
	}

	// Fix the line and resume where the import stopped.
	fixed := strings.Replace(in.String(), `{"bad":{"nested":1}}`, `{"n":70}`, 1)
	stats, err = s.Import(ctx, strings.NewReader(fixed), ImportOptions{Skip: stats.Committed, BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Committed != 95 || stats.Lines != 95 || stats.Customers != 34 {
		t.Errorf("resumed stats = %+v; want 34 customers, 95 lines committed", stats)
	}
	for i := 1; i <= 95; i++ {
		rec, err := s.Lookup(ctx, fmt.Sprintf("r-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if i == 40 {
			if rec != nil {
				t.Errorf("r-40 exists")
			}
			continue
		}
		if rec == nil || !reflect.DeepEqual(rec.Values.Map()["n"], features.Number(float64(i))) {
			t.Errorf("r-%d = %+v", i, rec)
		}
	}

	// A re-import replaces features; Merge keeps the others.
	if err := s.PutFeatures(ctx, "r-1", map[string]features.Value{"extra": features.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, strings.NewReader(`{"id":"r-1","features":{"m":1}}`), ImportOptions{Merge: true}); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.Lookup(ctx, "r-1")
	if rec == nil || rec.Values.Len() != 3 {
		t.Errorf("after a merging import: %+v; want n, extra and m", rec)
	}
	if _, err := s.Import(ctx, strings.NewReader(`{"id":"r-1","features":{"m":2}}`), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, _ = s.Lookup(ctx, "r-1")
	if rec == nil || !reflect.DeepEqual(rec.Values.Map(), map[string]features.Value{"m": features.Number(2)}) {
		t.Errorf("after a replacing import: %+v; want only m", rec)
	}
}

func TestCounterPruning(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.CounterDays = 30
	s := openStore(t, cfg)
	ctx := context.Background()
	raw := rawClient(t, srv.URL())

	now := time.Now()
	old := now.Add(-20 * 24 * time.Hour)
	if _, err := s.ApplyEvents(ctx, []features.Event{
		event("prune-1", "p1", features.EventClick, "t", old),
		event("prune-1", "p2", features.EventClick, "t", now),
	}); err != nil {
		t.Fatal(err)
	}
	// Events older than the kept days are accepted but not counted.
	if n, err := s.ApplyEvents(ctx, []features.Event{
		event("prune-1", "p0", features.EventClick, "t", now.Add(-40*24*time.Hour)),
	}); n != 1 || err != nil {
		t.Fatalf("ApplyEvents of an old event = %d, %v", n, err)
	}
	key := keysFor("prune-1").counters()
	if n := raw.HLen(ctx, key).Val(); n != 10 {
		t.Fatalf("%d counter fields, want 10 (5 subjects on 2 days)", n)
	}

	// Fifteen days later the old day is past the cutoff: Lookup hides it,
	// and the day's first counting write deletes it.
	s.now = func() time.Time { return now.Add(15 * 24 * time.Hour) }
	rec, err := s.Lookup(ctx, "prune-1")
	if err != nil || rec == nil || len(rec.Counters) != 5 {
		t.Fatalf("Lookup = %+v, %v; want only today's 5 counters", rec, err)
	}
	// An event with no kind, rule or channel counts for two subjects.
	today := features.Event{ID: "prune-today", CustomerID: "prune-1", Touchpoint: "t", Type: features.EventImpression, Time: s.now()}
	if _, err := s.ApplyEvents(ctx, []features.Event{today}); err != nil {
		t.Fatal(err)
	}
	if n := raw.HLen(ctx, key).Val(); n != 7 {
		t.Errorf("%d counter fields after pruning, want 7 (5 from the recent day, 2 from today)", n)
	}
}

func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.LookupTimeout = 200 * time.Millisecond
	cfg.Breaker = BreakerConfig{Failures: 3, Span: time.Second, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	s := openStore(t, cfg)
	ctx := context.Background()
	in := subscribe(t, s)

	if err := s.PutFeatures(ctx, "down-1", map[string]features.Value{"x": features.Number(1)}); err != nil {
		t.Fatal(err)
	}
	in.waitFor(t, "down-1", 20*time.Second, func() {
		_ = s.PutFeatures(ctx, "down-1", map[string]features.Value{"x": features.Number(1)})
	})
	if s.State() != StateUp {
		t.Fatalf("State = %s before the outage", s.State())
	}

	srv.Kill()
	for i := range 3 {
		start := time.Now()
		rec, err := s.Lookup(ctx, "down-1")
		if err == nil || rec != nil {
			t.Fatalf("Lookup %d with Redis dead = %+v, %v; want an error", i, rec, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Lookup %d took %v to fail", i, d)
		}
	}
	if s.State() != StateDown {
		t.Fatalf("State = %s after 3 failures; want down", s.State())
	}
	start := time.Now()
	_, err := s.Lookup(ctx, "down-1")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup with the breaker open = %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Lookup with the breaker open took %v", d)
	}
	if _, err := s.Consume(ctx, "down", 1, 10, 0); err == nil {
		t.Error("Consume succeeded with Redis dead")
	}
	st := s.Stats()
	if st.BreakerOpens == 0 || st.Failures < 3 || st.Rejected == 0 {
		t.Errorf("Stats = %+v; want the outage counted", st)
	}

	srv.Restart()
	// Recovery needs no help: probes close the breaker once Redis answers.
	eventually(t, 20*time.Second, "Lookup works again", func() bool {
		_, err := s.Lookup(ctx, "down-1")
		return err == nil
	})
	if s.Stats().BreakerOpens == 0 {
		t.Error("the breaker never opened")
	}
	// The subscription came back and asked for everything to be dropped.
	in.waitFor(t, "", 20*time.Second, nil)
	eventually(t, 5*time.Second, "State up", func() bool { return s.State() == StateUp })
	in.waitFor(t, "down-2", 20*time.Second, func() {
		_ = s.PutFeatures(ctx, "down-2", map[string]features.Value{"x": features.Number(1)})
	})
	if s.Stats().Resubscribes == 0 {
		t.Error("no resubscribe counted")
	}
}

func TestLookupTimeout(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.LookupTimeout = 50 * time.Millisecond
	s := openStore(t, cfg)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// A script that keeps Redis busy for a second: lookups must give up
	// after their own timeout rather than wait.
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		_, _ = srv.Do("EVAL", "local t = redis.call('TIME'); while true do local n = redis.call('TIME'); if (n[1] - t[1]) * 1000000 + n[2] - t[2] >= 1000000 then break end end", "0")
	}()
	defer func() { <-busy }()
	eventually(t, 5*time.Second, "Redis busy", func() bool {
		start := time.Now()
		_, err := s.Lookup(ctx, "slow-1")
		d := time.Since(start)
		if err != nil && d > 500*time.Millisecond {
			t.Fatalf("Lookup took %v to fail; the timeout is 50ms", d)
		}
		return err != nil
	})
}

func TestSubscribeEndsWithClose(t *testing.T) {
	srv := redistest.Start(t)
	s, err := Open(testConfig(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	got := make(chan struct{}, 1)
	go func() {
		done <- s.Subscribe(context.Background(), func(string) {
			select {
			case got <- struct{}{}:
			default:
			}
		})
	}()
	eventually(t, 20*time.Second, "subscribed", func() bool {
		_ = s.PutFeatures(context.Background(), "close-1", map[string]features.Value{"x": features.Number(1)})
		select {
		case <-got:
			return true
		default:
			return false
		}
	})
	_ = s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Subscribe returned nil after Close; want an error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Subscribe still runs after Close")
	}
}

func TestOpenWithoutRedis(t *testing.T) {
	cfg := testConfig("redis://127.0.0.1:1/0") // nothing listens on port 1
	cfg.Breaker.Failures = 1
	s := openStore(t, cfg)
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded without Redis")
	}
	if s.State() != StateDown {
		t.Errorf("State = %s; want down", s.State())
	}
}

// holdHook holds back the pipeline that writes key until release is closed
// or the pipeline's context ends.
type holdHook struct {
	key     string
	release chan struct{}
}

func (h holdHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h holdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && len(cmds[0].Args()) > 1 && cmds[0].Args()[1] == h.key {
			select {
			case <-h.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return next(ctx, cmds)
	}
}

// TestImportKeepsBatchesBeforeAFailure: a bad line must not cancel the
// batches before it that are still being written; they all commit and
// Committed says so. The first batch is held back until the import has
// seen the bad one fail.
func TestImportKeepsBatchesBeforeAFailure(t *testing.T) {
	srv := redistest.Start(t)
	s := openStore(t, testConfig(srv.URL()))
	release := make(chan struct{})
	var once sync.Once
	s.importFailed = func(int) { once.Do(func() { close(release) }) }
	s.client.AddHook(holdHook{key: keysFor("r-1").features(), release: release})

	var in strings.Builder
	for i := 1; i <= 95; i++ {
		if i == 70 {
			in.WriteString(`{"id":"r-70","features":{"bad":{"nested":1}}}` + "\n")
			continue
		}
		fmt.Fprintf(&in, `{"id":"r-%d","features":{"n":%d}}`+"\n", i, i)
	}
	stats, err := s.Import(context.Background(), strings.NewReader(in.String()), ImportOptions{Name: "c.jsonl", BatchSize: 10, Pipelines: 3})
	var le *features.LoadError
	if !errors.As(err, &le) || le.Line != 70 {
		t.Fatalf("Import = %v; want an error at c.jsonl:70", err)
	}
	if stats.Committed != 60 || stats.Customers != 60 {
		t.Errorf("stats = %+v; want the 60 lines before the bad batch committed", stats)
	}
	for i := 1; i <= 60; i++ {
		if rec, err := s.Lookup(context.Background(), fmt.Sprintf("r-%d", i)); err != nil || !rec.Known() {
			t.Fatalf("r-%d = %+v, %v; want it imported", i, rec, err)
		}
	}
}
