package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// budgetWorkspace is a ruleset whose only offer is a coupon with a budget
// of 100, shown to everyone, with a fallback for when it is spent.
func budgetWorkspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "../../configs/features.yaml", filepath.Join(dir, "features.yaml"))
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	os.WriteFile(filepath.Join(dir, "customers.jsonl"), nil, 0o644)
	rules := `placements:
  - id: banner
    fallback: info
  - id: strip
    fallback: info_strip
touchpoints:
  - id: coupon
    kind: coupon
    placements: [banner]
    budget: {total: 100}
  - id: info
    kind: content
    placements: [banner]
  - id: deal
    kind: offer
    placements: [strip]
    cap: {count: 1, per: 1d, on: decisions}
  - id: info_strip
    kind: content
    placements: [strip]
rules:
  - id: everyone
    when: "true"
    offer: [coupon, deal]
    tests:
      - name: everyone gets the coupon while it lasts
        context: {channel: web}
        expect: {banner: [coupon]}
`
	if err := os.WriteFile(filepath.Join(dir, "rules", "budget.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBudgetAcrossNodes runs two servers on one Redis and sends 1,000
// concurrent decisions across them: exactly 100 coupons are issued.
func TestBudgetAcrossNodes(t *testing.T) {
	redis := redistest.Start(t)
	dir := budgetWorkspace(t)
	nodes := []*process{
		startServer(t, dir, "--redis", redis.URL()),
		startServer(t, dir, "--redis", redis.URL()),
	}
	var coupons, fallbacks, failures atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > 1000 {
					return
				}
				node := nodes[i%2]
				code, d, raw, err := node.decide(fmt.Sprintf(`{"customer_id":"visitor-%d","placements":["banner"],"context":{"channel":"web"}}`, i))
				if err != nil || code != 200 || len(d.Placements["banner"]) != 1 {
					failures.Add(1)
					t.Errorf("decide: %d %v %s", code, err, raw)
					continue
				}
				switch d.Placements["banner"][0].Touchpoint {
				case "coupon":
					coupons.Add(1)
				case "info":
					fallbacks.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if coupons.Load() != 100 || fallbacks.Load() != 900 || failures.Load() != 0 {
		t.Errorf("issued %d coupons and %d fallbacks with %d failures; want exactly 100 and 900", coupons.Load(), fallbacks.Load(), failures.Load())
	}
}

// TestDecisionCapAcrossNodes decides for one known customer from two
// servers at once: a cap of one decision a day lets exactly one through.
func TestDecisionCapAcrossNodes(t *testing.T) {
	redis := redistest.Start(t)
	dir := budgetWorkspace(t)
	nodes := []*process{
		startServer(t, dir, "--redis", redis.URL()),
		startServer(t, dir, "--redis", redis.URL()),
	}
	if code, body := nodes[0].call(t, "PUT", "/v1/customers/k-1/features", `{"features":{"ltv":10}}`, true); code != 200 {
		t.Fatalf("put features: %d %s", code, body)
	}
	// 200 decides from 16 clients per node at once: concurrent enough to
	// race on the cap, and within what admission control lets a node take
	// at once (a burst of 100 per node would be refused in part as
	// overload on a busy machine, which is not what this test is about).
	var deals, failures atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func(node *process) {
			defer wg.Done()
			for next.Add(1) <= 200 {
				code, d, raw, err := node.decide(`{"customer_id":"k-1","placements":["strip"],"context":{"channel":"web"}}`)
				if err != nil || code != 200 || len(d.Placements["strip"]) != 1 {
					failures.Add(1)
					t.Errorf("decide: %d %v %s", code, err, raw)
					return
				}
				if d.Placements["strip"][0].Touchpoint == "deal" {
					deals.Add(1)
				}
			}
		}(nodes[w%2])
	}
	wg.Wait()
	if deals.Load() != 1 || failures.Load() != 0 {
		t.Errorf("deal issued %d times with %d failures; want exactly once", deals.Load(), failures.Load())
	}
}

// TestRedisOutageUnderLoad kills Redis while decisions run and restarts it:
// every decision still answers 200 (degraded while Redis is down), and the
// node recovers on its own.
func TestRedisOutageUnderLoad(t *testing.T) {
	redis := redistest.Start(t)
	ws := workspace(t)
	s := startServer(t, ws, "--redis", redis.URL())
	code, body := s.call(t, "PUT", "/v1/customers/c-1/features", `{"features":{"first_name":"Ada","cart_abandon_7d":1,"cart_value":80,"coupon_propensity":0.5,"consent_marketing":true,"lifecycle":"active","stage":"purchase"}}`, true)
	if code != 200 {
		t.Fatalf("put features: %d %s", code, body)
	}
	storeState := func() string {
		_, raw := s.call(t, "GET", "/readyz", "", false)
		return raw
	}
	var stop atomic.Bool
	var total, failures, degraded atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				// Different customers, so most lookups miss the cache and
				// reach Redis.
				code, _, raw, err := s.decide(fmt.Sprintf(`{"customer_id":"c-%d-%d","placements":["cart_banner"],"context":{"channel":"web","page":"/cart"}}`, w, i))
				total.Add(1)
				if err != nil || code != 200 {
					failures.Add(1)
					t.Errorf("decide during the outage: %d %v %s", code, err, raw)
				}
				if strings.Contains(raw, `"degraded":true`) {
					degraded.Add(1)
				}
			}
		}(w)
	}
	waitUntil(t, "some traffic", func() bool { return total.Load() > 100 })
	redis.Kill()
	waitUntil(t, "the store to be reported down", func() bool { return strings.Contains(storeState(), `"store":"down"`) })
	waitUntil(t, "degraded decisions", func() bool { return degraded.Load() > 0 })
	redis.Restart()
	waitUntil(t, "the store to recover", func() bool { return strings.Contains(storeState(), `"store":"up"`) })
	before := total.Load()
	waitUntil(t, "traffic after recovery", func() bool { return total.Load() > before+100 })
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d decisions failed during the outage", failures.Load(), total.Load())
	}
	// After recovery, decisions use Redis again (the data survived in the
	// restarted process only if it was persisted; this one was not, so
	// write again and read back).
	if code, body := s.call(t, "PUT", "/v1/customers/c-1/features", `{"features":{"first_name":"Ada"}}`, true); code != 200 {
		t.Errorf("put features after recovery: %d %s", code, body)
	}
	code, d, raw, err := s.decide(`{"customer_id":"c-1","placements":["cart_banner"],"context":{"channel":"web","page":"/cart"}}`)
	if err != nil || code != 200 || !d.KnownCustomer || strings.Contains(raw, `"degraded":true`) {
		t.Errorf("after recovery: %d %v %s", code, err, raw)
	}
	code, metrics := s.call(t, "GET", "/metrics", "", false)
	if code != 200 || !strings.Contains(metrics, "touchpoint_degraded_decisions_total") || strings.Contains(metrics, "touchpoint_degraded_decisions_total 0\n") {
		t.Errorf("degraded decisions are not counted in metrics: %d", code)
	}
	values := metricValues(metrics)
	for name, positive := range map[string]bool{
		"touchpoint_store_breaker_opens_total":       true,
		"touchpoint_store_resubscribes_total":        true,
		"touchpoint_store_dial_failures_total":       true,
		"touchpoint_store_bad_values_total":          false,
		"touchpoint_store_invalidation_panics_total": false,
	} {
		if v, ok := values[name]; !ok || (v > 0) != positive {
			t.Errorf("%s = %v (exported %v); want it above zero: %v", name, v, ok, positive)
		}
	}
	// Every log line is JSON, the client library's own included, and the
	// outage is told as it starts and as it ends, not once per failure.
	logs := s.logs.String()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("a log line is not JSON: %s", line)
		}
	}
	opened, closed := strings.Count(logs, "redis circuit breaker opened"), strings.Count(logs, "redis circuit breaker closed")
	if opened < 1 || opened > 2 || closed != opened {
		t.Errorf("breaker logged opening %d and closing %d times; want once or twice each, as it changed", opened, closed)
	}
	lost, restored := strings.Count(logs, "invalidation subscription lost"), strings.Count(logs, "invalidation subscription restored")
	if lost != 1 || restored != 1 {
		t.Errorf("subscription logged lost %d and restored %d times; want once each", lost, restored)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", logs)
	}
}

// TestLearningAcrossNodes runs the demo's A/B test and bandit on two
// nodes sharing Redis: decisions made on one node and events posted to
// the other count once, in the store, and both nodes report the same
// counts and read the same posteriors.
func TestLearningAcrossNodes(t *testing.T) {
	redis := redistest.Start(t)
	dir := workspace(t)
	cfg := filepath.Join(dir, "touchpoint.yaml")
	// Lookups and rules get room: a decision degraded by a slow lookup or
	// the decide deadline on a busy machine would still be an exposure,
	// but show nothing to count.
	writeTestFile(t, cfg, "log:\n  level: info\nrules:\n  learn_every: 50ms\n  decide_deadline: 0s\nredis:\n  lookup_timeout: 5s\n")
	nodes := []*process{
		startServer(t, dir, "--config", cfg, "--redis", redis.URL()),
		startServer(t, dir, "--config", cfg, "--redis", redis.URL()),
	}
	const n = 400
	exposures := map[string]int{}
	promos := map[string]int{}
	var events []string
	for i := 0; i < n; i++ {
		node, other := nodes[i%2], nodes[(i+1)%2]
		customer := fmt.Sprintf("x-%d", i)
		code, d, raw, err := node.decide(`{"customer_id":"` + customer + `","placements":[{"id":"cart_banner"},{"id":"promo_strip"}],"context":{"channel":"web","page":"/cart"}}`)
		if err != nil || code != 200 || len(d.Placements["cart_banner"]) != 1 || len(d.Placements["promo_strip"]) != 1 {
			t.Fatalf("decide: %d %v %s", code, err, raw)
		}
		banner, promo := d.Placements["cart_banner"][0], d.Placements["promo_strip"][0]
		if banner.Experiment != "cart_coupon_test" {
			t.Fatalf("everyone on /cart enters cart_coupon_test: %s", raw)
		}
		exposures[banner.Variant]++
		promos[promo.Touchpoint]++
		events = append(events,
			fmt.Sprintf(`{"event_id":"b%d","decision_id":%q,"customer_id":%q,"touchpoint":%q,"type":"impression"}`, i, d.DecisionID, customer, banner.Touchpoint),
			fmt.Sprintf(`{"event_id":"p%d","decision_id":%q,"customer_id":%q,"touchpoint":%q,"type":"impression"}`, i, d.DecisionID, customer, promo.Touchpoint),
			fmt.Sprintf(`{"event_id":"c%d","decision_id":%q,"customer_id":%q,"touchpoint":%q,"type":"click"}`, i, d.DecisionID, customer, promo.Touchpoint))
		if len(events) >= 300 || i == n-1 {
			// Half the batches twice: retries count once.
			for k := 0; k <= i%2; k++ {
				if code, body := other.call(t, "POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, false); code != 202 {
					t.Fatalf("events: %d %s", code, body)
				}
			}
			events = events[:0]
		}
	}
	var want []string
	for _, arm := range []string{"control", "fifteen_percent", "holdout"} {
		want = append(want, fmt.Sprintf(`"name":%q,"expected_percent":[0-9.]+,"exposures":%d,"impressions":%d,`, arm, exposures[arm], exposures[arm]))
	}
	for i, node := range nodes {
		waitLong(t, fmt.Sprintf("node %d's report to count every decision and impression", i), func() bool {
			code, body := node.call(t, "GET", "/v1/experiments/cart_coupon_test", "", true)
			if code != 200 {
				return false
			}
			for _, w := range want {
				if !regexp.MustCompile(w).MatchString(body) {
					return false
				}
			}
			return true
		})
		waitLong(t, fmt.Sprintf("node %d's bandit to read every impression and click", i), func() bool {
			code, body := node.call(t, "GET", "/admin/bandits", "", true)
			if code != 200 {
				return false
			}
			for tp, k := range promos {
				if !strings.Contains(body, fmt.Sprintf(`"touchpoint":%q,"impressions":%d,"rewards":%d,`, tp, k, k)) {
					return false
				}
			}
			return true
		})
	}
}
