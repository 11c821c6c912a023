package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// A behavioural event changes the customer's features at once: the next
// decide on the same node sees them, a retried event changes nothing more,
// and a mistake in an event is a 400 naming its field with nothing applied.
func TestTrackEventsUpdateFeatures(t *testing.T) {
	s := startServer(t, workspace(t))
	track := func(id, name, props string) string {
		return fmt.Sprintf(`{"event_id":%q,"customer_id":"c-000042","type":"track","name":%q,"properties":%s}`, id, name, props)
	}
	post := func(events ...string) (int, string) {
		return s.call(t, "POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, false)
	}
	features := func() map[string]any {
		code, out := s.call(t, "GET", "/v1/customers/c-000042", "", true)
		var c struct{ Features map[string]any }
		if code != 200 || json.Unmarshal([]byte(out), &c) != nil {
			t.Fatalf("GET customer: %d %s", code, out)
		}
		return c.Features
	}
	coupon := func() string {
		_, d, raw, err := s.decide(cartRequest)
		if err != nil || len(d.Placements["cart_banner"]) == 0 {
			t.Fatalf("decide: %v %s", err, raw)
		}
		return d.Placements["cart_banner"][0].Touchpoint
	}
	if got := coupon(); got != "cart_coupon_10" {
		t.Fatalf("Mei before any event: %s", got)
	}
	before := features()

	// The order goes through: the cart empties, so no cart coupon, and the
	// order counts.
	if code, out := post(track("t-1", "checkout_completed", `{"value":89.9}`)); code != 202 || !strings.Contains(out, `"applied":1`) {
		t.Fatalf("checkout: %d %s", code, out)
	}
	if got := coupon(); got == "cart_coupon_10" {
		t.Error("the decide right after the checkout still offers the cart coupon")
	}
	after := features()
	if after["cart_value"] != 0.0 || after["orders_total"] != before["orders_total"].(float64)+1 || after["ltv"] != before["ltv"].(float64)+89.9 {
		t.Errorf("after the checkout: cart %v, orders %v (was %v), ltv %v (was %v)", after["cart_value"], after["orders_total"], before["orders_total"], after["ltv"], before["ltv"])
	}
	// A retry of the same event changes nothing.
	if code, out := post(track("t-1", "checkout_completed", `{"value":89.9}`)); code != 202 || !strings.Contains(out, `"applied":0`) {
		t.Fatalf("retried checkout: %d %s", code, out)
	}
	if again := features(); again["orders_total"] != after["orders_total"] {
		t.Errorf("a retried event counted again: %v", again["orders_total"])
	}
	// She fills the cart again: the coupon is back.
	if code, out := post(track("t-2", "cart_updated", `{"value":95,"items":3}`)); code != 202 {
		t.Fatalf("cart update: %d %s", code, out)
	}
	if got := coupon(); got != "cart_coupon_10" {
		t.Errorf("after a new cart of 95 EUR: %s", got)
	}
	if f := features(); f["cart_value"] != 95.0 || f["cart_items"] != 3.0 {
		t.Errorf("after the cart update: value %v, items %v", f["cart_value"], f["cart_items"])
	}
	// It counts under its name, for the schema's counters of it.
	code, out := s.call(t, "GET", "/v1/customers/c-000042", "", true)
	if code != 200 || !strings.Contains(out, `{"event":"cart_updated","subject":"all","day":`) || strings.Contains(out, `"subject":"tp:"`) {
		t.Errorf("counters after a cart update: %s", out)
	}

	for name, c := range map[string]struct{ event, code, field string }{
		"unknown event":         {track("b-1", "cart_update", `{}`), "unknown_event", "events[0].name"},
		"unknown property":      {track("b-2", "cart_updated", `{"valeu":1}`), "unknown_field", "events[0].properties.valeu"},
		"wrong type":            {track("b-3", "cart_updated", `{"value":"lots"}`), "invalid_field", "events[0].properties.value"},
		"not in values":         {track("b-4", "complaint_opened", `{"emotion":"sad"}`), "invalid_field", "events[0].properties.emotion"},
		"no name":               {`{"event_id":"b-5","customer_id":"c-000042","type":"track"}`, "missing_field", "events[0].name"},
		"a touchpoint":          {`{"event_id":"b-6","customer_id":"c-000042","type":"track","name":"cart_updated","touchpoint":"x"}`, "invalid_field", "events[0].touchpoint"},
		"properties on a click": {`{"event_id":"b-7","customer_id":"c-000042","type":"click","touchpoint":"x","properties":{}}`, "invalid_field", "events[0].properties"},
	} {
		t.Run(name, func(t *testing.T) {
			// Each bad event follows a good one in its batch: none applies.
			code, out := post(track("ok-"+name, "cart_updated", `{"value":1}`), c.event)
			var e struct{ Error struct{ Code, Field string } }
			json.Unmarshal([]byte(out), &e)
			if code != 400 || e.Error.Code != c.code || e.Error.Field != strings.Replace(c.field, "events[0]", "events[1]", 1) {
				t.Errorf("%d %s; want 400 %s at %s", code, out, c.code, c.field)
			}
		})
	}
	if f := features(); f["cart_value"] != 95.0 {
		t.Errorf("a refused batch changed the cart to %v", f["cart_value"])
	}
}

// With Redis, a behavioural event posted to one node changes what every
// node decides: the node that took it at once, the others once the
// invalidation reaches their caches. The test logs that lag.
func TestTrackEventsAcrossNodes(t *testing.T) {
	redis := redistest.Start(t)
	dir := workspace(t)
	cfg := filepath.Join(dir, "touchpoint.yaml")
	// Lookups get room on a busy machine: a timed-out lookup decides on
	// context alone.
	writeTestFile(t, cfg, "log:\n  level: info\nredis:\n  lookup_timeout: 5s\n")
	nodes := []*process{startServer(t, dir, "--config", cfg, "--redis", redis.URL()), startServer(t, dir, "--config", cfg, "--redis", redis.URL())}
	mei := `{"features":{"first_name":"Mei","cart_abandon_7d":1,"cart_value":0,"cart_items":0,"coupon_propensity":0.62,"churn_risk":0.18,"days_since_last_purchase":12,"orders_90d":2,"ltv":1290,"consent_marketing":true,"lifecycle":"active","stage":"purchase","tier":"silver"}}`
	if code, out := nodes[0].call(t, "PUT", "/v1/customers/c-000042/features", mei, true); code != 200 {
		t.Fatalf("PUT features: %d %s", code, out)
	}
	banner := func(p *process) string {
		_, d, raw, err := p.decide(cartRequest)
		if err != nil || len(d.Placements["cart_banner"]) == 0 {
			t.Fatalf("decide: %v %s", err, raw)
		}
		return d.Placements["cart_banner"][0].Touchpoint
	}
	cartValue := func(p *process) float64 {
		code, out := p.call(t, "GET", "/v1/customers/c-000042", "", true)
		var c struct{ Features map[string]any }
		if code != 200 || json.Unmarshal([]byte(out), &c) != nil {
			t.Fatalf("GET customer: %d %s", code, out)
		}
		v, _ := c.Features["cart_value"].(float64)
		return v
	}
	// Both nodes cache her empty cart: no coupon.
	for _, p := range nodes {
		if got := banner(p); got == "cart_coupon_10" {
			t.Fatalf("a coupon for an empty cart: %s", got)
		}
	}
	var lags []time.Duration
	for i := 1; i <= 20; i++ {
		value := 80 + float64(i)
		ev := fmt.Sprintf(`{"events":[{"event_id":"x-%d","customer_id":"c-000042","type":"track","name":"cart_updated","properties":{"value":%g,"items":3}}]}`, i, value)
		if code, out := nodes[0].call(t, "POST", "/v1/events", ev, false); code != 202 {
			t.Fatalf("event: %d %s", code, out)
		}
		posted := time.Now()
		if got := cartValue(nodes[0]); got != value {
			t.Fatalf("the node that took the event reads cart_value %v, want %v", got, value)
		}
		waitLong(t, "the other node to see the new cart", func() bool { return cartValue(nodes[1]) == value })
		lags = append(lags, time.Since(posted))
	}
	for _, p := range nodes {
		if got := banner(p); got != "cart_coupon_10" {
			t.Errorf("after the cart update: %s, want cart_coupon_10", got)
		}
	}
	slices.Sort(lags)
	t.Logf("feature update seen by the other node after: median %v, max %v (%d events)", lags[len(lags)/2], lags[len(lags)-1], len(lags))
}
