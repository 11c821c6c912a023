package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests drive the real binary, the real engine and the embedded store
// with its overlay, as a client on the network would.

// cartFeatures makes the cart banner show a coupon addressed to name.
func cartFeatures(name string) string {
	return `{"features":{"first_name":"` + name + `","cart_abandon_7d":1,"cart_value":80,"coupon_propensity":0.5,` +
		`"consent_marketing":true,"lifecycle":"active","stage":"purchase"}}`
}

func (s *process) cart(t *testing.T, id string) decision {
	t.Helper()
	code, d, raw, err := s.decide(fmt.Sprintf(`{"customer_id":%q,"placements":["cart_banner"],"context":{"channel":"web","page":"/cart"}}`, id))
	if err != nil || code != 200 {
		t.Fatalf("decide %q: %d %v %s", id, code, err, raw)
	}
	return d
}

func (d decision) addresses(name string) bool {
	for _, it := range d.Placements["cart_banner"] {
		if strings.Contains(string(it.Content), name) {
			return true
		}
	}
	return false
}

// An encoded "/.." in a customer id once erased or wrote another customer:
// fasthttp had decoded and normalised the path before the id was read.
func TestCustomerPathTraversalReachesNoOtherCustomer(t *testing.T) {
	s := startServer(t, workspace(t))
	for _, id := range []string{"c-000101", "c-000500"} {
		if !s.cart(t, id).KnownCustomer {
			t.Fatalf("%s is not known before the attack", id)
		}
	}

	code, body := s.call(t, "DELETE", "/v1/customers/c-000777%2F..%2Fc-000101", "", true)
	if code != 204 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	code, body = s.call(t, "PUT", "/v1/customers/zzz%2F..%2Fc-000500/features", cartFeatures("Mallory"), true)
	if code != 200 || !strings.Contains(body, `"customer_id":"zzz/../c-000500"`) {
		t.Fatalf("PUT: %d %s", code, body)
	}
	// Traversal past the prefix, onto another endpoint.
	code, body = s.call(t, "DELETE", "/v1/customers/x%2F..%2F..%2F..%2Fv1%2Fdecide", "", true)
	if code != 204 {
		t.Fatalf("DELETE onto /v1/decide: %d %s", code, body)
	}

	if !s.cart(t, "c-000101").KnownCustomer {
		t.Error("c-000101 was erased by DELETE /v1/customers/c-000777%2F..%2Fc-000101")
	}
	if d := s.cart(t, "c-000500"); !d.KnownCustomer || d.addresses("Mallory") {
		t.Errorf("c-000500 was written by PUT /v1/customers/zzz%%2F..%%2Fc-000500/features: %+v", d)
	}
	// The write went to the id as written.
	if !s.cart(t, "zzz/../c-000500").addresses("Mallory") {
		t.Error(`the features were not written to "zzz/../c-000500"`)
	}
}

// Any id decide accepts is addressable by the customer endpoints,
// percent-encoded, and the endpoints act on exactly that id.
func TestCustomerIDsRoundTrip(t *testing.T) {
	s := startServer(t, workspace(t))
	neighbour := "c-000042"
	if !s.cart(t, neighbour).KnownCustomer {
		t.Fatalf("%s is not known", neighbour)
	}
	for i, id := range []string{
		"shop/c-1",
		"100% real",
		"Zoë Müller",
		"客户/42?x=1#frag",
		"a+b %2F c",
		"c-000042/..",
		"../c-000042",
		"c-000042 ",
	} {
		t.Run(strconv.Quote(id), func(t *testing.T) {
			name := "Roundtrip" + strconv.Itoa(i)
			if strings.HasSuffix(id, " ") {
				// Decide refuses a trailing space, so the customer
				// endpoints must too.
				code, _, raw, _ := s.decide(fmt.Sprintf(`{"customer_id":%q,"placements":["cart_banner"],"context":{"channel":"web"}}`, id))
				if code != 400 || !strings.Contains(raw, `"field":"customer_id"`) {
					t.Fatalf("decide: %d %s", code, raw)
				}
				code, body := s.call(t, "PUT", "/v1/customers/"+url.PathEscape(id)+"/features", cartFeatures(name), true)
				if code != 400 || !strings.Contains(body, `"field":"id"`) {
					t.Fatalf("PUT: %d %s", code, body)
				}
				return
			}
			if d := s.cart(t, id); d.KnownCustomer {
				t.Fatalf("%q is known before any write", id)
			}
			path := "/v1/customers/" + url.PathEscape(id)
			code, body := s.call(t, "PUT", path+"/features", cartFeatures(name), true)
			if code != 200 {
				t.Fatalf("PUT %s/features: %d %s", path, code, body)
			}
			if d := s.cart(t, id); !d.KnownCustomer || !d.addresses(name) {
				t.Fatalf("decide does not see the features written at %s: %+v", path, d)
			}
			code, body = s.call(t, "DELETE", path, "", true)
			if code != 204 {
				t.Fatalf("DELETE %s: %d %s", path, code, body)
			}
			if s.cart(t, id).KnownCustomer {
				t.Errorf("%q is still known after DELETE %s", id, path)
			}
			if d := s.cart(t, neighbour); !d.KnownCustomer {
				t.Errorf("DELETE %s erased %s", path, neighbour)
			}
		})
	}
}

// A full batch of events shaped like the README's example goes through,
// and each endpoint's 413 names its own limit.
func TestBodyLimitsEndToEnd(t *testing.T) {
	s := startServer(t, workspace(t))
	ts := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	events := make([]string, 1000)
	for i := range events {
		events[i] = fmt.Sprintf(`{"event_id": "ev-%06d", "decision_id": "01a2085e41dc63dcb19e0003bec65641", "customer_id": "c-000042",
  "touchpoint": "cart_coupon_10", "type": "impression", "value": 12.5, "ts": %q,
  "channel": "web", "rule": "cart_abandon_coupon"}`, i, ts)
	}
	batch := `{"events": [` + strings.Join(events, ", ") + `]}`
	code, body := s.call(t, "POST", "/v1/events", batch, false)
	if code != 202 || body != `{"accepted":1000,"applied":1000,"duplicates":0}` {
		t.Fatalf("1,000 events (%d bytes): %d %s", len(batch), code, body)
	}
	t.Logf("1,000 README-shaped events: %d bytes", len(batch))

	code, body = s.call(t, "POST", "/v1/events", `{"events":[]}`+strings.Repeat(" ", 1<<20), false)
	if code != 413 || !strings.Contains(body, "1048576 bytes") || !strings.Contains(body, "max_events_body_bytes") {
		t.Errorf("oversize events: %d %s", code, body)
	}
	code, body = s.call(t, "POST", "/v1/decide", `{}`+strings.Repeat(" ", 64<<10), false)
	if code != 413 || !strings.Contains(body, "65536 bytes") || !strings.Contains(body, "max_body_bytes") {
		t.Errorf("oversize decide: %d %s", code, body)
	}
}
