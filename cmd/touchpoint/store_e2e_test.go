package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// storeSettings runs a test against the embedded store and against Redis.
func storeSettings(t *testing.T, run func(t *testing.T, s *process)) {
	t.Run("embedded", func(t *testing.T) { run(t, startServer(t, workspace(t))) })
	t.Run("redis", func(t *testing.T) {
		redis := redistest.Start(t)
		run(t, startServer(t, workspace(t), "--redis", redis.URL()))
	})
}

// TestEventsDoNotMakeCustomersKnown: anyone may report events, for any id,
// but known_customer means the store has the customer's features, and an
// erased customer stays unknown until features are written again.
func TestEventsDoNotMakeCustomersKnown(t *testing.T) {
	storeSettings(t, func(t *testing.T, s *process) {
		known := func(id string) bool {
			t.Helper()
			// A decision degraded by a slow store (Redis calls time out on
			// a loaded machine) says nothing of what the store holds: ask
			// again until one is not.
			deadline := time.Now().Add(20 * time.Second)
			for {
				code, d, raw, err := s.decide(fmt.Sprintf(`{"customer_id":%q,"placements":["cart_banner"],"context":{"channel":"web","page":"/cart"}}`, id))
				if err != nil || code != 200 {
					t.Fatalf("decide %s: %d %v %s", id, code, err, raw)
				}
				if !strings.Contains(raw, `"degraded":true`) {
					return d.KnownCustomer
				}
				if time.Now().After(deadline) {
					t.Fatalf("decide %s: still degraded after 20s: %s", id, raw)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		click := func(id, eventID string) {
			t.Helper()
			body := fmt.Sprintf(`{"events":[{"event_id":%q,"customer_id":%q,"touchpoint":"cart_coupon_10","type":"click","ts":%q}]}`,
				eventID, id, time.Now().UTC().Format(time.RFC3339))
			if code, raw := s.call(t, "POST", "/v1/events", body, false); code != 202 {
				t.Fatalf("events for %s: %d %s", id, code, raw)
			}
		}

		click("ghost-1", "ghost-event-1")
		if known("ghost-1") {
			t.Error("one unauthenticated event made ghost-1 known")
		}

		id := "known-e2e-1"
		if code, raw := s.call(t, "PUT", "/v1/customers/"+id+"/features", `{"features":{"first_name":"Ada"}}`, true); code != 200 {
			t.Fatalf("put features: %d %s", code, raw)
		}
		if !known(id) {
			t.Fatal("a customer with features is not known")
		}
		if code, raw := s.call(t, "DELETE", "/v1/customers/"+id, "", true); code != 204 {
			t.Fatalf("erase: %d %s", code, raw)
		}
		click(id, "after-erase-1")
		if known(id) {
			t.Error("an event after erasure made the customer known again")
		}
		if code, raw := s.call(t, "PUT", "/v1/customers/"+id+"/features", `{"features":{"first_name":"Ada"}}`, true); code != 200 {
			t.Fatalf("put features again: %d %s", code, raw)
		}
		if !known(id) {
			t.Error("the customer is not known after their features were written again")
		}
	})
}

func TestOverlayConfig(t *testing.T) {
	cfg, err := loadConfig("../../configs/touchpoint.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Features.Overlay != features.DefaultOverlayConfig() {
		t.Errorf("shipped overlay config %+v differs from the defaults %+v", cfg.Features.Overlay, features.DefaultOverlayConfig())
	}
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("features:\n  overlay:\n    max_event_ids: 0\n    max_bytes: 1024\n"), 0o644)
	cfg, err = loadConfig(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Features.Overlay.MaxBytes != 1024 || cfg.Features.Overlay.MaxCountersPerCustomer != features.DefaultOverlayConfig().MaxCountersPerCustomer {
		t.Errorf("overlay config = %+v; want max_bytes from the file and the other defaults", cfg.Features.Overlay)
	}
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "overlay.max_event_ids must be positive") {
		t.Errorf("validate = %v", err)
	}
}

// TestOverlayBounds sends events for ever new ids and customers to a server
// with small overlay bounds: it keeps within them, counts what it dropped in
// /metrics, and never brings back an erased customer from the file.
func TestOverlayBounds(t *testing.T) {
	dir := workspace(t)
	conf := filepath.Join(dir, "bounded.yaml")
	os.WriteFile(conf, []byte("log:\n  level: info\nfeatures:\n  overlay:\n    max_event_ids: 100\n    max_bytes: 65536\n    max_counters_per_customer: 16\n"), 0o644)
	s := startServer(t, dir, "--config", conf)
	if code, raw := s.call(t, "DELETE", "/v1/customers/c-000042", "", true); code != 204 {
		t.Fatalf("erase: %d %s", code, raw)
	}
	// Written again after the erasure: known, until the flood below makes
	// the overlay drop what was written. Then the customer must be unknown,
	// not back to their features from the customers file.
	if code, raw := s.call(t, "PUT", "/v1/customers/c-000042/features", `{"features":{"first_name":"Eve"}}`, true); code != 200 {
		t.Fatalf("put features: %d %s", code, raw)
	}
	if code, d, raw, _ := s.decide(cartRequest); code != 200 || !d.KnownCustomer {
		t.Fatalf("after put: %d %s", code, raw)
	}
	ts := time.Now().UTC().Format(time.RFC3339)
	for b := range 20 {
		var events []string
		for i := range 50 {
			n := b*50 + i
			events = append(events, fmt.Sprintf(`{"event_id":"flood-%d","customer_id":"flood-c-%d","touchpoint":"tp-%d","type":"impression","ts":%q}`, n, n, n, ts))
		}
		if code, raw := s.call(t, "POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, false); code != 202 {
			t.Fatalf("events: %d %s", code, raw)
		}
	}
	code, metrics := s.call(t, "GET", "/metrics", "", false)
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	values := metricValues(metrics)
	if values["touchpoint_overlay_event_ids"] != 100 || values["touchpoint_overlay_event_ids_evicted_total"] != 900 {
		t.Errorf("event id metrics: %v; want 100 held and 900 evicted", values)
	}
	if values["touchpoint_overlay_bytes"] > 65536 || values["touchpoint_overlay_customers_evicted_total"] == 0 {
		t.Errorf("customer metrics: %v; want at most 65536 bytes and some evicted", values)
	}
	if values["touchpoint_overlay_erased_customers"] != 1 {
		t.Errorf("erased customers: %v; want 1", values)
	}
	code, d, raw, err := s.decide(cartRequest)
	if err != nil || code != 200 {
		t.Fatalf("decide: %d %v %s", code, err, raw)
	}
	if d.KnownCustomer {
		t.Errorf("the erased customer is known again after the overlay dropped what was written for them: %s", raw)
	}
}

// metricValues reads the unlabelled series of a Prometheus text exposition.
func metricValues(exposition string) map[string]float64 {
	values := map[string]float64{}
	for _, line := range strings.Split(exposition, "\n") {
		if name, v, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(name, "#") {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				values[name] = f
			}
		}
	}
	return values
}

// TestCacheMetrics writes ten customers through the API and decides for
// them and for one id the store does not know: /metrics then counts eleven
// cache entries, and bytes for them in proportion, with either store.
func TestCacheMetrics(t *testing.T) {
	storeSettings(t, func(t *testing.T, s *process) {
		metrics := func() map[string]float64 {
			_, exposition := s.call(t, "GET", "/metrics", "", false)
			return metricValues(exposition)
		}
		put := func(i int) {
			body := fmt.Sprintf(`{"features":{"first_name":"Ada","tier":"gold","points":%d,"interests":["shoes","bags"]}}`, i*100)
			if code, raw := s.call(t, "PUT", fmt.Sprintf("/v1/customers/cm-%d/features", i), body, true); code != 200 {
				t.Fatalf("put features cm-%d: %d %s", i, code, raw)
			}
		}
		// Redis also tells this node of its own writes, and a notification
		// arriving after the decides below would drop a cached record: wait
		// for the subscription, then for the ten notifications.
		invalidations := func() (float64, bool) {
			n, redis := metrics()["touchpoint_store_invalidations_total"]
			return n, redis
		}
		var base float64
		waitFor(t, 30*time.Second, "the invalidation subscription", func() bool {
			before, redis := invalidations()
			put(0)
			if !redis {
				return true
			}
			// Before the subscription is up the notification is lost, and
			// the next round writes again.
			for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if base, _ = invalidations(); base > before {
					return true
				}
			}
			return false
		})
		for i := 1; i <= 10; i++ {
			put(i)
		}
		waitFor(t, 10*time.Second, "the store's invalidations to arrive", func() bool {
			n, redis := invalidations()
			return !redis || n >= base+10
		})
		for i := 1; i <= 11; i++ {
			id := fmt.Sprintf("cm-%d", i)
			req := strings.Replace(cartRequest, "c-000042", id, 1)
			if code, d, raw, err := s.decide(req); err != nil || code != 200 || d.KnownCustomer != (i <= 10) {
				t.Fatalf("decide %s: %d %v %s", id, code, err, raw)
			}
		}
		var values map[string]float64
		waitFor(t, 10*time.Second, "the cache to hold 11 entries", func() bool {
			values = metrics()
			return values["touchpoint_feature_cache_entries"] == 11
		})
		// A customer of four features is charged a few hundred bytes, an
		// unknown id about two hundred.
		if b := values["touchpoint_feature_cache_bytes"]; b < 11*200 || b > 11*2000 {
			t.Errorf("touchpoint_feature_cache_bytes = %v for 10 customers and one unknown id", b)
		}
	})
}
