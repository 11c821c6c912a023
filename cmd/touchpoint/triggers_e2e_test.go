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
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
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

// The proof: two nodes on one Redis, 1,000 customers leave a
// cart, half of them then check out; exactly the other half are sent
// their email, each under one firing id, signed, though one node is
// killed while firings are being delivered.
func TestTriggersAcrossNodesSurviveAKilledNode(t *testing.T) {
	in, hook := newWebhookInbox(t)
	redis := redistest.Start(t)
	dir := workspace(t)
	pointWebhook(t, dir, hook.URL)
	// Quick retries and a short lease, so that the killed node's firings
	// come back within seconds.
	p := filepath.Join(dir, "rules", "triggers.yaml")
	b, _ := os.ReadFile(p)
	writeTestFile(t, p, strings.Replace(string(b), "timeout: 2s}", "timeout: 2s, max_attempts: 2, backoff_max: 100ms}", 1))
	cfg := filepath.Join(dir, "touchpoint.yaml")
	writeTestFile(t, cfg, "log:\n  level: info\nredis:\n  lookup_timeout: 5s\ntriggers:\n  every: 20ms\n  lease: 6s\n")
	// 360: the cart trigger's two hours pass in 20 seconds, time enough
	// to post every event first on a busy machine.
	args := []string{"--config", cfg, "--redis", redis.URL(), "--time-scale", "360"}
	nodes := []*process{startServer(t, dir, args...), startServer(t, dir, args...)}

	const n = 1000
	abandoner := `{"features":{"first_name":"Kim","cart_abandon_7d":1,"cart_value":0,"consent_marketing":true,"consent_email":true,"lifecycle":"active","stage":"purchase"}}`
	var carts, checkouts []string
	for i := range n {
		id := fmt.Sprintf("k-%04d", i)
		if code, out := nodes[i%2].call(t, "PUT", "/v1/customers/"+id+"/features", abandoner, true); code != 200 {
			t.Fatalf("PUT %s: %d %s", id, code, out)
		}
		carts = append(carts, fmt.Sprintf(`{"event_id":"cart-%d","customer_id":%q,"type":"track","name":"cart_updated","properties":{"value":60,"items":2}}`, i, id))
		if i%2 == 1 {
			checkouts = append(checkouts, fmt.Sprintf(`{"event_id":"buy-%d","customer_id":%q,"type":"track","name":"checkout_completed","properties":{"value":60}}`, i, id))
		}
	}
	started := time.Now()
	for i, batch := range [][]string{carts[:n/2], carts[n/2:], checkouts} {
		if code, out := nodes[i%2].call(t, "POST", "/v1/events", `{"events":[`+strings.Join(batch, ",")+`]}`, false); code != 202 {
			t.Fatalf("events: %d %s", code, out)
		}
	}
	if time.Since(started) > 15*time.Second {
		t.Skip("posting the events took longer than the trigger's delay; the machine is too busy for this test to mean anything")
	}

	waitLong(t, "the first emails", func() bool { return len(in.received()) >= 20 })
	nodes[0].cmd.Process.Kill()
	waitFor(t, 2*time.Minute, "an email for every customer who did not check out", func() bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		customers := map[string]bool{}
		for _, m := range in.msgs {
			customers[m.CustomerID] = true
		}
		return len(customers) >= n/2
	})
	in.mu.Lock()
	defer in.mu.Unlock()
	ids := map[string]string{}
	for _, m := range in.msgs {
		var i int
		fmt.Sscanf(m.CustomerID, "k-%d", &i)
		if i%2 == 1 {
			t.Errorf("%s checked out and was still sent %s", m.CustomerID, m.ID)
		}
		if prev, ok := ids[m.CustomerID]; ok && prev != m.ID {
			t.Errorf("%s was sent two firings, %s and %s", m.CustomerID, prev, m.ID)
		}
		ids[m.CustomerID] = m.ID
	}
	if len(ids) != n/2 || len(in.bad) > 0 {
		t.Errorf("%d customers were sent their email (want %d); refused: %v", len(ids), n/2, in.bad)
	}
	t.Logf("%d messages for %d customers (a retry of the killed node's firings shares their id)", len(in.msgs), len(ids))
}

// With Redis, a redis_stream delivery adds each message to its stream,
// and a webhook message the receiver refuses is kept in the dead-letter
// stream, where an operator finds it.
func TestTriggerStreamsAndDeadLetters(t *testing.T) {
	redis := redistest.Start(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such customer in the CRM", http.StatusBadRequest)
	}))
	t.Cleanup(refusing.Close)
	dir := workspace(t)
	pointWebhook(t, dir, refusing.URL)
	p := filepath.Join(dir, "rules", "triggers.yaml")
	b, _ := os.ReadFile(p)
	// The points text goes to a stream instead of the webhook.
	src := strings.Replace(string(b), "deliveries:\n", "deliveries:\n  - id: push_stream\n    redis_stream: {stream: \"tp:outbound\", maxlen: 1000}\n", 1)
	at := strings.Index(src, "  - id: points_expiring")
	src = src[:at] + strings.Replace(src[at:], "deliver: crm_webhook", "deliver: push_stream", 1)
	writeTestFile(t, p, src)
	cfg := filepath.Join(dir, "touchpoint.yaml")
	writeTestFile(t, cfg, "log:\n  level: info\nredis:\n  lookup_timeout: 5s\ntriggers:\n  every: 20ms\n")
	s := startServer(t, dir, "--config", cfg, "--redis", redis.URL(), "--time-scale", "3600")

	// A time zone where it is midday now, so quiet hours do not hold the
	// text whenever the test runs (Etc/GMT-N is N hours ahead of UTC).
	ahead := (12 - time.Now().UTC().Hour() + 24) % 24
	if ahead > 12 {
		ahead -= 24
	}
	zone := fmt.Sprintf("Etc/GMT%+d", -ahead)
	if ahead == 0 {
		zone = "UTC"
	}
	hannah := `{"features":{"first_name":"Hannah","tier":"gold","timezone":"` + zone + `","consent_sms":true,"consent_marketing":true}}`
	tom := `{"features":{"first_name":"Tom","app_installed":true,"lifecycle":"active","stage":"use"}}`
	for id, f := range map[string]string{"h-1": hannah, "t-1": tom} {
		if code, out := s.call(t, "PUT", "/v1/customers/"+id+"/features", f, true); code != 200 {
			t.Fatalf("PUT %s: %d %s", id, code, out)
		}
	}
	events := `{"events":[` +
		`{"event_id":"p-1","customer_id":"h-1","type":"track","name":"points_expiring","properties":{"points":420}},` +
		`{"event_id":"c-1","customer_id":"t-1","type":"track","name":"complaint_opened","properties":{"emotion":"angry"}}]}`
	if code, out := s.call(t, "POST", "/v1/events", events, false); code != 202 {
		t.Fatalf("events: %d %s", code, out)
	}
	// The stream's values, one per line: a script flattens XRANGE's
	// nested reply into one string the test's Redis client reads.
	const values = `local out = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do for i = 2, #e[2], 2 do out[#out+1] = e[2][i] end end return table.concat(out, '\n')`
	stream := func(key string) string {
		out, _ := redis.Do("EVAL", values, "1", key)
		return out
	}
	waitLong(t, "the points text in tp:outbound", func() bool {
		out := stream("tp:outbound")
		return strings.Contains(out, "sms_points_expiry") && strings.Contains(out, `"customer_id":"h-1"`)
	})
	waitLong(t, "the refused acknowledgement in the dead letters", func() bool {
		out := stream("tp:triggers:dead")
		return strings.Contains(out, "complaint_ack") && strings.Contains(out, `"customer_id":"t-1"`)
	})
	// The deliverer counts the dead letter once the stream has taken it.
	waitLong(t, "the dead letter to be counted", func() bool {
		_, metrics := s.call(t, "GET", "/metrics", "", false)
		return strings.Contains(metrics, "touchpoint_triggers_dead_lettered_total 1\n")
	})
}
