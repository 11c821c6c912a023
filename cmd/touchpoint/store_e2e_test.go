package main

import (
	"fmt"
	"testing"
	"time"

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
			code, d, raw, err := s.decide(fmt.Sprintf(`{"customer_id":%q,"placements":["cart_banner"],"context":{"channel":"web","page":"/cart"}}`, id))
			if err != nil || code != 200 {
				t.Fatalf("decide %s: %d %v %s", id, code, err, raw)
			}
			return d.KnownCustomer
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
