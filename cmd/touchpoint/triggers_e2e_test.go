package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/delivery"
	"github.com/touchpoint-dev/touchpoint/triggers"
)

// webhookInbox is a real HTTP receiver that checks each message's
// signature and keeps it.
type webhookInbox struct {
	t    *testing.T
	mu   sync.Mutex
	msgs []triggers.Message
	ids  map[string]int
	bad  []string
}

func newWebhookInbox(t *testing.T) (*webhookInbox, *httptest.Server) {
	in := &webhookInbox{t: t, ids: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		in.mu.Lock()
		defer in.mu.Unlock()
		if err := delivery.Verify([]byte(webhookSecret), r.Header.Get(delivery.HeaderSignature), body, time.Now(), delivery.DefaultTolerance); err != nil {
			in.bad = append(in.bad, err.Error())
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m triggers.Message
		if err := json.Unmarshal(body, &m); err != nil || m.ID != r.Header.Get(delivery.HeaderDelivery) {
			in.bad = append(in.bad, fmt.Sprintf("message %s (%v)", body, err))
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
		in.ids[m.ID]++
		in.msgs = append(in.msgs, m)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return in, srv
}

func (in *webhookInbox) received() []triggers.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]triggers.Message(nil), in.msgs...)
}

// pointWebhook makes the workspace's demo deliveries post to url.
func pointWebhook(t *testing.T, dir, url string) {
	t.Helper()
	p := filepath.Join(dir, "rules", "triggers.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(string(b), "https://crm.example.com/hooks/touchpoint", url, 1)
	if out == string(b) {
		t.Fatal("the demo's webhook URL moved; update this test")
	}
	writeTestFile(t, p, out)
}

// The demo's triggers end to end on the real binary: a cart left alone
// gets its email once the (scaled) two hours are over, signed; a cart
// followed by a checkout gets nothing; and the metrics say so.
func TestDemoTriggersDeliverSignedWebhooks(t *testing.T) {
	in, hook := newWebhookInbox(t)
	dir := workspace(t)
	pointWebhook(t, dir, hook.URL)
	cfg := filepath.Join(dir, "touchpoint.yaml")
	writeTestFile(t, cfg, "log:\n  level: info\ntriggers:\n  every: 20ms\n")
	// 3600: the two hours of the cart trigger pass in two seconds.
	s := startServer(t, dir, "--config", cfg, "--time-scale", "3600")

	// A customer who checks out after updating her cart is not reminded.
	buyer := `{"features":{"first_name":"Ana","cart_abandon_7d":1,"cart_value":0,"consent_marketing":true,"consent_email":true,"lifecycle":"active","stage":"purchase"}}`
	if code, out := s.call(t, "PUT", "/v1/customers/buyer-1/features", buyer, true); code != 200 {
		t.Fatalf("PUT: %d %s", code, out)
	}
	post := func(events ...string) {
		t.Helper()
		if code, out := s.call(t, "POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, false); code != 202 {
			t.Fatalf("events: %d %s", code, out)
		}
	}
	post(`{"event_id":"b-1","customer_id":"buyer-1","type":"track","name":"cart_updated","properties":{"value":70,"items":2}}`,
		`{"event_id":"b-2","customer_id":"buyer-1","type":"track","name":"checkout_completed","properties":{"value":70}}`)
	// Mei leaves hers; the retried batch starts nothing more.
	mei := `{"event_id":"m-1","customer_id":"c-000042","type":"track","name":"cart_updated","properties":{"value":95,"items":3}}`
	post(mei)
	post(mei)

	waitLong(t, "Mei's abandoned-cart email", func() bool { return len(in.received()) >= 1 })
	m := in.received()[0]
	if m.CustomerID != "c-000042" || m.Trigger != "cart_abandoned" || m.Channel != "email" || m.Placement != "email_slot" ||
		len(m.Items) != 1 || m.Items[0].Touchpoint != "email_cart_reminder" || !strings.Contains(string(m.Items[0].Content), "Mei") || m.DecisionID == "" {
		t.Errorf("message = %+v", m)
	}
	metric := func(name string) string {
		_, out := s.call(t, "GET", "/metrics", "", false)
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" ")
			}
		}
		return ""
	}
	waitLong(t, "the queue to empty", func() bool { return metric("touchpoint_triggers_pending") == "0" })
	for name, want := range map[string]string{
		`touchpoint_triggers_total{outcome="scheduled"}`: "2",
		`touchpoint_triggers_total{outcome="cancelled"}`: "1",
		`touchpoint_triggers_total{outcome="delivered"}`: "1",
	} {
		if got := metric(name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.bad) > 0 || len(in.msgs) != 1 {
		t.Errorf("the receiver got %d messages and refused %v", len(in.msgs), in.bad)
	}
}
