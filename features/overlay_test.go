package features

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
	if rec.Values["ltv"].Num != 250 || rec.Values["tier"].Str != "gold" {
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
		go func() { defer wg.Done(); o.ApplyEvents(ctx, batch) }() // retried batches
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
	if len(rec.Values) != 1 || rec.Values["tier"].Str != "silver" || len(rec.Counters) != 0 {
		t.Errorf("re-created customer keeps erased data: %+v", rec)
	}
	if len(changed) < 5 {
		t.Errorf("onChange called %d times, want one per write", len(changed))
	}
}
