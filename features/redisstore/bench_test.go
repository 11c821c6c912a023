package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/demodata"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// BenchmarkLookup measures one Lookup round trip to a local redis-server for
// a demo customer (37 features) with a week of counters and consent, one
// caller at a time and then from parallel callers.
func BenchmarkLookup(b *testing.B) {
	srv := redistest.Start(b)
	cfg := testConfig(srv.URL())
	s := openStore(b, cfg)
	ctx := context.Background()
	data, err := os.ReadFile(demoCustomers)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Import(ctx, bytes.NewReader(data), ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	const id = "c-000042"
	var events []features.Event
	for d := range 7 {
		at := time.Now().Add(-time.Duration(d) * 24 * time.Hour)
		events = append(events, event(id, fmt.Sprint("b", d), features.EventImpression, "cart_coupon_10", at))
	}
	if _, err := s.ApplyEvents(ctx, events); err != nil {
		b.Fatal(err)
	}
	if err := s.PutConsent(ctx, id, map[string]features.Consent{"email": {Granted: true}, "sms": {Granted: false}}); err != nil {
		b.Fatal(err)
	}

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec, err := s.Lookup(ctx, id)
			if err != nil || rec == nil {
				b.Fatal(rec, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec, err := s.Lookup(ctx, id)
				if err != nil || rec == nil {
					b.Error(rec, err)
					return
				}
			}
		})
	})
}

// BenchmarkImport imports demo customers into a local redis-server: the
// JSON Lines file TOUCHPOINT_IMPORT_FILE names (such as the output of
// "touchpoint demo-data --customers 1000000 --seed 1"), or 20,000 generated
// ones.
func BenchmarkImport(b *testing.B) {
	var data []byte
	if path := os.Getenv("TOUCHPOINT_IMPORT_FILE"); path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	} else {
		var buf bytes.Buffer
		if err := demodata.Generate(&buf, 20_000, 1); err != nil {
			b.Fatal(err)
		}
		data = buf.Bytes()
	}
	srv := redistest.Start(b)
	s := openStore(b, testConfig(srv.URL()))
	for b.Loop() {
		stats, err := s.Import(context.Background(), bytes.NewReader(data), ImportOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(stats.Customers), "customers")
		b.ReportMetric(float64(stats.Customers)/stats.Elapsed.Seconds(), "customers/s")
	}
}

// BenchmarkApplyEvents applies batches of 100 new events for 20 customers
// to a local redis-server: feedback events, and behavioural events that
// set one feature and add to another, so each customer's script counts,
// marks and updates.
func BenchmarkApplyEvents(b *testing.B) {
	srv := redistest.Start(b)
	s := openStore(b, testConfig(srv.URL()))
	ctx := context.Background()
	now := time.Now()
	batch := make([]features.Event, 100)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range batch {
			n++
			c, id := fmt.Sprint("bench-", i%20), fmt.Sprint("a", n)
			if i%2 == 0 {
				batch[i] = event(c, id, features.EventImpression, "cart_coupon_10", now)
				continue
			}
			batch[i] = behaviour(c, id, "cart_update", now,
				set("cart_value", features.Number(float64(i))), add("cart_updates", 1, 0))
		}
		if applied, err := s.ApplyEvents(ctx, batch); applied != len(batch) || err != nil {
			b.Fatal(applied, err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
