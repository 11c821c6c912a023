package redisstore

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
)

// runUpdateSuite tests the feature updates behavioural events carry. It is
// part of runSuite, so it runs on a standalone Redis and a Cluster alike.
func runUpdateSuite(t *testing.T, s *Store, url string) {
	ctx := context.Background()

	t.Run("EventUpdatesApplyOnce", func(t *testing.T) {
		id := "upd-once"
		now := time.Now()
		today := features.Day(now)
		cart := behaviour(id, "u1", "cart_update", now,
			set("cart_value", features.Number(42.5)),
			set("cart_sku", features.String("sku-9")),
			set("has_cart", features.Bool(true)),
			set("cart_items", features.List("a", "b")),
			add("orders_total", 1, 10))
		if n, err := s.ApplyEvents(ctx, []features.Event{cart}); n != 1 || err != nil {
			t.Fatalf("ApplyEvents = %d, %v; want 1", n, err)
		}
		want := map[string]features.Value{
			"cart_value":   features.Number(42.5),
			"cart_sku":     features.String("sku-9"),
			"has_cart":     features.Bool(true),
			"cart_items":   features.List("a", "b"),
			"orders_total": features.Number(11), // no number yet: base 10 plus 1
		}
		rec := lookupValues(t, s, id, want)
		if !rec.Known() {
			t.Error("a customer whose features an event set is not known")
		}
		// A behavioural event is about no touchpoint: it counts for "all"
		// and its channel only.
		wantCounters := []features.Counter{ctr("cart_update", "all", today, 1), ctr("cart_update", "channel:web", today, 1)}
		if !reflect.DeepEqual(rec.Counters, wantCounters) {
			t.Errorf("counters = %+v, want %+v", rec.Counters, wantCounters)
		}

		// Adds on a number add to it; 0.1 + 0.2 checks that the stored sum
		// reads back as exactly the double Go computes.
		more := []features.Event{
			behaviour(id, "u2", "checkout", now, add("orders_total", 1, 10), add("spend", 0.1, 0)),
			behaviour(id, "u3", "checkout", now, add("spend", 0.2, 0), add("balance", -1e21, 0)),
		}
		if n, err := s.ApplyEvents(ctx, more); n != 2 || err != nil {
			t.Fatalf("ApplyEvents = %d, %v; want 2", n, err)
		}
		want["orders_total"] = features.Number(12)
		tenth, fifth := 0.1, 0.2 // variables: constant arithmetic would be exact
		want["spend"] = features.Number(tenth + fifth)
		want["balance"] = features.Number(-1e21)
		before := lookupValues(t, s, id, want)

		// Retried ids change nothing, whatever their updates say now.
		retry := append([]features.Event{cart}, more...)
		retry = append(retry, behaviour(id, "u1", "cart_update", now, set("cart_value", features.Number(99)), add("orders_total", 5, 0)))
		if n, err := s.ApplyEvents(ctx, retry); n != 0 || err != nil {
			t.Fatalf("retried ApplyEvents = %d, %v; want 0", n, err)
		}
		after := lookupValues(t, s, id, want)
		if !reflect.DeepEqual(after.Counters, before.Counters) {
			t.Errorf("a retry changed the counters from %+v to %+v", before.Counters, after.Counters)
		}
	})

	t.Run("EventAddOnNonNumberUsesBase", func(t *testing.T) {
		// An add reads only a JSON number as a number: a feature of another
		// type, or one a foreign writer stored as something decodeValue
		// would not read as a number, is replaced by base plus the delta.
		id := "upd-base"
		if err := s.PutFeatures(ctx, id, map[string]features.Value{
			"str":   features.String("many"),
			"num":   features.String("5"), // the string "5" is no number
			"flag":  features.Bool(true),
			"tags":  features.List("x"),
			"ok":    features.Number(4),
			"huge":  features.Number(math.MaxFloat64),
			"small": features.Number(-math.MaxFloat64),
		}); err != nil {
			t.Fatal(err)
		}
		raw := rawClient(t, url)
		foreign := map[string]string{"hex": "0x10", "inf": "1e400", "lead": "012", "nan": "nan", "sp": " 7", "exp": "2.5E1"}
		for f, v := range foreign {
			if err := raw.HSet(ctx, keysFor(id).features(), f, v).Err(); err != nil {
				t.Fatal(err)
			}
		}
		var updates []features.FeatureUpdate
		for _, f := range []string{"str", "num", "flag", "tags", "ok", "hex", "inf", "lead", "nan", "sp", "exp"} {
			updates = append(updates, add(f, 1, 100))
		}
		// Sums beyond the largest double leave the feature as it was.
		updates = append(updates, add("huge", math.MaxFloat64, 0), add("small", -math.MaxFloat64, 0))
		if n, err := s.ApplyEvents(ctx, []features.Event{behaviour(id, "b1", "visit", time.Now(), updates...)}); n != 1 || err != nil {
			t.Fatalf("ApplyEvents = %d, %v; want 1", n, err)
		}
		want := map[string]features.Value{"ok": features.Number(5), "exp": features.Number(26),
			"huge": features.Number(math.MaxFloat64), "small": features.Number(-math.MaxFloat64)}
		for _, f := range []string{"str", "num", "flag", "tags", "hex", "inf", "lead", "nan", "sp"} {
			want[f] = features.Number(101)
		}
		lookupValues(t, s, id, want)
	})

	t.Run("EventUpdatesManyCustomers", func(t *testing.T) {
		// One batch of feedback and behavioural events for several
		// customers (on several Cluster nodes), with retried ids inside
		// it, checked against applying the same batch in Go.
		const customers = 8
		now := time.Now()
		today := features.Day(now)
		old := now.Add(-time.Duration(s.cfg.CounterDays+10) * 24 * time.Hour)
		var batch []features.Event
		for i := range 240 {
			c := fmt.Sprintf("upd-many-%d", i*7%customers)
			id := fmt.Sprintf("m%d", i)
			if i%10 == 9 {
				id = fmt.Sprintf("m%d", i-8) // the same customer's earlier event
			}
			var ev features.Event
			switch i % 5 {
			case 0:
				ev = event(c, id, features.EventImpression, "home_hero", now)
			case 1:
				ev = behaviour(c, id, "cart_update", now, set("x", features.Number(float64(i))), add("n", 1, 0))
			case 2:
				ev = behaviour(c, id, "page_view", now, add("x", 0.25, -1), add("n", 1, 0))
			case 3:
				ev = behaviour(c, id, "tagging", now, set("x", features.String(fmt.Sprint("s", i))), set("tags", features.List(id)))
			case 4:
				// Older than the counters keep: not counted, but its
				// updates apply all the same.
				ev = behaviour(c, id, "page_view", old, add("x", 2, 100), add("n", 1, 0))
			}
			batch = append(batch, ev)
		}

		wantValues := map[string]map[string]features.Value{}
		wantCounts := map[string]map[string]int64{} // customer → event type → count for "all" today
		seen := map[[2]string]bool{}
		applied := 0
		for _, ev := range batch {
			if seen[[2]string{ev.CustomerID, ev.ID}] {
				continue
			}
			seen[[2]string{ev.CustomerID, ev.ID}] = true
			applied++
			if features.Day(ev.Time) == today {
				if wantCounts[ev.CustomerID] == nil {
					wantCounts[ev.CustomerID] = map[string]int64{}
				}
				wantCounts[ev.CustomerID][ev.Type]++
			}
			for _, u := range ev.Updates {
				if wantValues[ev.CustomerID] == nil {
					wantValues[ev.CustomerID] = map[string]features.Value{}
				}
				vals := wantValues[ev.CustomerID]
				switch u.Op {
				case features.UpdateSet:
					vals[u.Feature] = u.Value
				case features.UpdateAdd:
					cur, ok := vals[u.Feature]
					if !ok || cur.Kind != features.KindNumber {
						cur = features.Number(u.Base)
					}
					vals[u.Feature] = features.Number(cur.Num + u.Value.Num)
				}
			}
		}

		if n, err := s.ApplyEvents(ctx, batch); n != applied || err != nil {
			t.Fatalf("ApplyEvents = %d, %v; want %d", n, err, applied)
		}
		if n, err := s.ApplyEvents(ctx, batch); n != 0 || err != nil {
			t.Fatalf("retried ApplyEvents = %d, %v; want 0", n, err)
		}
		for c := range customers {
			id := fmt.Sprintf("upd-many-%d", c)
			rec := lookupValues(t, s, id, wantValues[id])
			got := map[string]int64{}
			for _, cn := range rec.Counters {
				if cn.Subject == "all" && cn.Day == today {
					got[cn.Event] = cn.Count
				}
				if cn.Day != today {
					t.Errorf("customer %s: counter %+v is older than the cutoff", id, cn)
				}
			}
			if !reflect.DeepEqual(got, wantCounts[id]) {
				t.Errorf("customer %s: counts for all today = %v, want %v", id, got, wantCounts[id])
			}
		}
	})

	t.Run("EventUpdatesRejected", func(t *testing.T) {
		// An update the store cannot hold fails the batch before anything
		// is sent, so the good event beside it is not counted either.
		now := time.Now()
		bad := map[string]features.FeatureUpdate{
			"no name":      set("", features.Number(1)),
			"no op":        {Feature: "x", Value: features.Number(1)},
			"missing":      set("x", features.Value{}),
			"nan":          set("x", features.Number(nanValue())),
			"add nan":      add("x", nanValue(), 0),
			"add inf base": add("x", 1, math.Inf(1)),
			"add string":   {Feature: "x", Op: features.UpdateAdd, Value: features.String("1")},
		}
		for name, u := range bad {
			good := behaviour("upd-rejected-good", "g-"+name, "visit", now, set("y", features.Number(1)))
			n, err := s.ApplyEvents(ctx, []features.Event{good, behaviour("upd-rejected", "r-"+name, "visit", now, u)})
			if err == nil || n != 0 {
				t.Errorf("%s: ApplyEvents = %d, %v; want an error", name, n, err)
			}
		}
		for _, id := range []string{"upd-rejected-good", "upd-rejected"} {
			if rec, err := s.Lookup(ctx, id); rec != nil || err != nil {
				t.Errorf("Lookup(%q) = %+v, %v; want nothing written", id, rec, err)
			}
		}
	})
}

// behaviour is a behavioural event: about no touchpoint, changing features.
func behaviour(customer, id, name string, at time.Time, updates ...features.FeatureUpdate) features.Event {
	return features.Event{ID: id, CustomerID: customer, Channel: "web", Type: name, Time: at, Updates: updates}
}

func set(feature string, v features.Value) features.FeatureUpdate {
	return features.FeatureUpdate{Feature: feature, Op: features.UpdateSet, Value: v}
}

func add(feature string, delta, base float64) features.FeatureUpdate {
	return features.FeatureUpdate{Feature: feature, Op: features.UpdateAdd, Value: features.Number(delta), Base: base}
}

// lookupValues looks the customer up and checks its features are want.
func lookupValues(t *testing.T, s *Store, id string, want map[string]features.Value) *features.Record {
	t.Helper()
	rec, err := s.Lookup(context.Background(), id)
	if err != nil || rec == nil {
		t.Fatalf("Lookup(%q) = %+v, %v", id, rec, err)
	}
	if !reflect.DeepEqual(rec.Values.Map(), want) {
		t.Errorf("customer %s: features = %v, want %v", id, rec.Values.Map(), want)
	}
	return rec
}
