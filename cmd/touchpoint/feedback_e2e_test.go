package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func (s *process) call(t *testing.T, method, path, body string, admin bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+adminKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func impressions(ids ...string) string {
	var events []string
	ts := time.Now().UTC().Format(time.RFC3339)
	for _, id := range ids {
		events = append(events, fmt.Sprintf(`{"event_id":%q,"decision_id":"d-1","customer_id":"c-002026","touchpoint":"points_expiry_reminder","type":"impression","ts":%q}`, id, ts))
	}
	return `{"events":[` + strings.Join(events, ",") + `]}`
}

// TestFeedbackLoop reports impressions and sees the cap take effect, with
// retried batches counted once and bad batches applying nothing.
func TestFeedbackLoop(t *testing.T) {
	s := startServer(t, workspace(t))
	inbox := `{"customer_id":"c-002026","placements":["app_inbox"],"context":{"channel":"app"}}`
	shows := func() bool {
		_, d, raw, err := s.decide(inbox)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range d.Placements["app_inbox"] {
			if it.Touchpoint == "points_expiry_reminder" {
				return true
			}
		}
		t.Logf("app_inbox without the reminder: %s", raw)
		return false
	}
	if !shows() {
		t.Fatal("the points reminder is not shown before any impression")
	}

	code, body := s.call(t, "POST", "/v1/events", `{"events":[`+strings.TrimSuffix(strings.TrimPrefix(impressions("e-1"), `{"events":[`), "]}")+`,{"event_id":"e-x","customer_id":"c-002026","touchpoint":"points_expiry_reminder","type":"view"}]}`, false)
	if code != 400 || !strings.Contains(body, `"field":"events[1].type"`) {
		t.Fatalf("bad batch: %d %s", code, body)
	}
	code, body = s.call(t, "POST", "/v1/events", impressions("e-1", "e-2"), false)
	if code != 202 || body != `{"accepted":2,"applied":2,"duplicates":0}` {
		t.Fatalf("events: %d %s", code, body)
	}
	// The first batch was rejected whole, so e-1 counts now, once.
	code, body = s.call(t, "POST", "/v1/events", impressions("e-1", "e-2"), false)
	if code != 202 || body != `{"accepted":2,"applied":0,"duplicates":2}` {
		t.Fatalf("retried batch: %d %s", code, body)
	}
	if !shows() {
		t.Fatal("two impressions already cap the reminder (cap is 3 per 7 days)")
	}
	s.call(t, "POST", "/v1/events", impressions("e-3"), false)
	if shows() {
		t.Fatal("the reminder is still shown after three impressions this week")
	}
}

func TestCustomerEndpoints(t *testing.T) {
	s := startServer(t, workspace(t))
	cart := func(id string) decision {
		_, d, _, _ := s.decide(fmt.Sprintf(`{"customer_id":%q,"placements":["cart_banner"],"context":{"channel":"web","page":"/cart"}}`, id))
		return d
	}
	// new-4 is in cart_coupon_test's control arm, which shows the coupon;
	// its holdout would see only the cart banner's fallback.
	code, body := s.call(t, "PUT", "/v1/customers/new-4/features", `{"features":{"first_name":"Zoe","cart_abandon_7d":1,"coupon_propensity":0.5}}`, false)
	if code != 401 {
		t.Errorf("without the admin key: %d %s", code, body)
	}
	code, body = s.call(t, "PUT", "/v1/customers/new-4/features", `{"features":{"first_name":"Zoe","cart_abandon_7d":"one"}}`, true)
	if code != 400 || !strings.Contains(body, `"field":"features.cart_abandon_7d"`) {
		t.Errorf("bad type: %d %s", code, body)
	}
	code, body = s.call(t, "PUT", "/v1/customers/new-4/features", `{"features":{"first_name":"Zoe","cart_abandon_7d":1,"cart_value":80,"coupon_propensity":0.5,"consent_marketing":true,"lifecycle":"active","stage":"purchase"}}`, true)
	if code != 200 {
		t.Fatalf("put features: %d %s", code, body)
	}
	d := cart("new-4")
	if !d.KnownCustomer || len(d.Placements["cart_banner"]) == 0 || !strings.Contains(string(d.Placements["cart_banner"][0].Content), "Zoe") {
		t.Errorf("decision after put = %+v", d)
	}

	code, body = s.call(t, "PUT", "/v1/customers/new-4/consent", `{"channels":{"email":true,"fax":true}}`, true)
	if code != 400 || !strings.Contains(body, "fax") {
		t.Errorf("unknown channel: %d %s", code, body)
	}
	code, body = s.call(t, "PUT", "/v1/customers/new-4/consent", `{"channels":{"email":true,"sms":false}}`, true)
	if code != 200 {
		t.Errorf("consent: %d %s", code, body)
	}

	if !cart("c-000042").KnownCustomer {
		t.Fatal("c-000042 is not known before erasure")
	}
	code, body = s.call(t, "DELETE", "/v1/customers/c-000042", "", true)
	if code != 204 {
		t.Fatalf("erase: %d %s", code, body)
	}
	if d := cart("c-000042"); d.KnownCustomer {
		t.Errorf("erased customer still known: %+v", d)
	}
	_, raw := s.call(t, "GET", "/metrics", "", false)
	if !strings.Contains(raw, `touchpoint_http_requests_total{endpoint="customers",status="204"} 1`) {
		t.Errorf("metrics lack the customer endpoint series")
	}
}
