package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestDecideSuccess(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())

	r := ts.decide(t, `{"customer_id":"c-000042","placements":[{"id":"cart_banner","count":2},"empty","fallback"],`+
		`"context":{"channel":"web","page":"/cart","device":"mobile","items":3,"logged_in":true,"tags":["a","b"]},"explain":false}`)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d; body %s", r.status, r.body)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	want := `{"decision_id":"d-c-000042","customer_id":"c-000042","ruleset":"2024-06-01.1","known_customer":true,` +
		`"placements":{"cart_banner":[` +
		`{"touchpoint":"cart_banner_tp0","kind":"coupon","rule":"rule_cart_banner","score":8,"content":{"text":"\u003cb\u003e10% off\u003c/b\u003e \u0026 more"}},` +
		`{"touchpoint":"cart_banner_tp1","kind":"coupon","rule":"rule_cart_banner","score":8,"content":{"text":"\u003cb\u003e10% off\u003c/b\u003e \u0026 more"}}],` +
		`"empty":[],` +
		`"fallback":[{"touchpoint":"generic_banner","kind":"banner","fallback":true,"score":0,"content":{}}]}}`
	if string(r.body) != want {
		t.Errorf("body\n got %s\nwant %s", r.body, want)
	}
}

func TestDecideExplainAndDegraded(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	r := ts.decide(t, `{"customer_id":"c-degraded","placements":["cart_banner"],"explain":true}`)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d; body %s", r.status, r.body)
	}
	var got struct {
		Degraded bool `json:"degraded"`
		Explain  struct {
			Rules      []map[string]any `json:"rules"`
			Candidates []map[string]any `json:"candidates"`
		} `json:"explain"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("decode: %v; body %s", err, r.body)
	}
	if !got.Degraded || !strings.Contains(string(r.body), `"degraded":true,"degraded_reasons":["feature_store"]`) {
		t.Errorf("degraded or its reason missing: %s", r.body)
	}
	if r := ts.decide(t, `{"customer_id":"c-deadline","placements":["cart_banner"]}`); !strings.Contains(string(r.body), `"degraded":true,"degraded_reasons":["rule_deadline"]`) {
		t.Errorf("deadline reason missing: %s", r.body)
	}
	if len(got.Explain.Rules) != 2 || len(got.Explain.Candidates) != 2 {
		t.Fatalf("explain = %+v", got.Explain)
	}
	if _, ok := got.Explain.Rules[0]["score"]; !ok {
		t.Errorf("matched rule has no score: %v", got.Explain.Rules[0])
	}
	if e := got.Explain.Rules[1]["error"]; e != "unknown feature <vip>" {
		t.Errorf("rule error = %v", e)
	}
	if _, ok := got.Explain.Rules[1]["score"]; ok {
		t.Errorf("unmatched rule has a score: %v", got.Explain.Rules[1])
	}
	if c := got.Explain.Candidates[1]; c["by"] != "vip_only" || c["chosen"] != false || c["reason"] != "suppressed" || c["priority"] != 5.0 {
		t.Errorf("candidate = %v", c)
	}
	if _, ok := got.Explain.Candidates[0]["by"]; ok {
		t.Errorf("chosen candidate has by: %v", got.Explain.Candidates[0])
	}

	// Without explain there is no explain key and no degraded key.
	r = ts.decide(t, `{"customer_id":"c-1","placements":["cart_banner"]}`)
	if strings.Contains(string(r.body), `"explain"`) || strings.Contains(string(r.body), `"degraded"`) {
		t.Errorf("unexpected keys: %s", r.body)
	}
}

func TestDecideValidation(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	long := strings.Repeat("x", 257)
	many := strings.TrimSuffix(strings.Repeat(`"p",`, 17), ",")

	tests := []struct {
		name   string
		body   string
		status int
		code   string
		field  string // must appear in the message (and match the field key when set)
	}{
		{"truncated", `{"customer_id":"c-1",`, 400, "invalid_json", "offset 21"},
		{"missing comma", `{"customer_id":"c-1" "placements":["a"]}`, 400, "invalid_json", "offset 21"},
		{"bad literal", "{\n\"explain\": tru}", 400, "invalid_json", "explain"},
		{"empty body", ``, 400, "invalid_json", "empty"},
		{"not an object", `["c-1"]`, 400, "invalid_json", "object"},
		{"missing customer_id", `{"placements":["a"]}`, 400, "missing_field", "customer_id"},
		{"missing placements", `{"customer_id":"c-1"}`, 400, "missing_field", "placements"},
		{"customer_id number", `{"customer_id":42,"placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"customer_id null", `{"customer_id":null,"placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"customer_id empty", `{"customer_id":"","placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"customer_id too long", `{"customer_id":"` + long + `","placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"customer_id twice", `{"customer_id":"a","customer_id":"b","placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"placements object", `{"customer_id":"c-1","placements":{"id":"a"}}`, 400, "invalid_field", "placements"},
		{"placements empty", `{"customer_id":"c-1","placements":[]}`, 400, "invalid_field", "placements"},
		{"too many placements", `{"customer_id":"c-1","placements":[` + many + `]}`, 400, "invalid_field", "placements"},
		{"placement number", `{"customer_id":"c-1","placements":["a",7]}`, 400, "invalid_field", "placements[1]"},
		{"placement id too long", `{"customer_id":"c-1","placements":["` + long + `"]}`, 400, "invalid_field", "placements[0]"},
		{"placement id empty", `{"customer_id":"c-1","placements":[{"id":""}]}`, 400, "invalid_field", "placements[0].id"},
		{"placement id missing", `{"customer_id":"c-1","placements":["a",{"count":1}]}`, 400, "missing_field", "placements[1].id"},
		{"placement id number", `{"customer_id":"c-1","placements":[{"id":3}]}`, 400, "invalid_field", "placements[0].id"},
		{"negative count", `{"customer_id":"c-1","placements":["a",{"id":"b","count":-1}]}`, 400, "invalid_field", "placements[1].count"},
		{"zero count", `{"customer_id":"c-1","placements":[{"id":"b","count":0}]}`, 400, "invalid_field", "placements[0].count"},
		{"count twice", `{"customer_id":"c-1","placements":[{"id":"b","count":1,"count":2}]}`, 400, "invalid_field", "placements[0].count"},
		{"placement id twice", `{"customer_id":"c-1","placements":[{"id":"b","id":"c"}]}`, 400, "invalid_field", "placements[0].id"},
		{"raw newline in customer_id", "{\"customer_id\":\"c-1\n\",\"placements\":[\"a\"]}", 400, "invalid_json", "customer_id"},
		{"raw tab in context value", "{\"customer_id\":\"c-1\",\"placements\":[\"a\"],\n \"context\":{\"page\":\"/a\tb\"}}", 400, "invalid_json", "context.page"},
		{"raw NUL in placement", "{\"customer_id\":\"c-1\",\"placements\":[\"a\", \"b\x00\"]}", 400, "invalid_json", "placements[1]"},
		{"raw control in a key", "{\"customer_id\":\"c-1\",\"placements\":[\"a\"],\"context\":{\"pa\x01ge\":\"/\"}}", 400, "invalid_json", "context"},
		{"invalid escape", `{"customer_id":"c-\x41","placements":["a"]}`, 400, "invalid_json", "customer_id"},
		{"customer_id invalid UTF-8", "{\"customer_id\":\"c-\xff\xfe\",\"placements\":[\"a\"]}", 400, "invalid_field", "customer_id"},
		{"customer_id escaped control", `{"customer_id":"c-1\n","placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"customer_id zero-width space", `{"customer_id":"c-1\u200b","placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"customer_id leading space", `{"customer_id":" c-1","placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"customer_id dot dot", `{"customer_id":"..","placements":["a"]}`, 400, "invalid_field", "customer_id"},
		{"fractional count", `{"customer_id":"c-1","placements":[{"id":"b","count":1.5}]}`, 400, "invalid_field", "placements[0].count"},
		{"string count", `{"customer_id":"c-1","placements":[{"id":"b","count":"2"}]}`, 400, "invalid_field", "placements[0].count"},
		{"huge count", `{"customer_id":"c-1","placements":[{"id":"b","count":100000}]}`, 400, "invalid_field", "placements[0].count"},
		{"duplicate placement", `{"customer_id":"c-1","placements":["a","b","a"]}`, 400, "invalid_field", "placements[2]"},
		{"duplicate placement object", `{"customer_id":"c-1","placements":["a",{"id":"a"}]}`, 400, "invalid_field", "placements[1].id"},
		{"unknown placement key", `{"customer_id":"c-1","placements":[{"id":"a","size":"xl"}]}`, 400, "unknown_field", "placements[0].size"},
		{"context array", `{"customer_id":"c-1","placements":["a"],"context":["web"]}`, 400, "invalid_field", "context"},
		{"context object value", `{"customer_id":"c-1","placements":["a"],"context":{"geo":{"lat":1}}}`, 400, "invalid_field", "context.geo"},
		{"context null value", `{"customer_id":"c-1","placements":["a"],"context":{"page":null}}`, 400, "invalid_field", "context.page"},
		{"context list of numbers", `{"customer_id":"c-1","placements":["a"],"context":{"tags":["a",2]}}`, 400, "invalid_field", "context.tags[1]"},
		{"context NaN", `{"customer_id":"c-1","placements":["a"],"context":{"score":NaN}}`, 400, "invalid_field", "context.score"},
		{"context duplicate", `{"customer_id":"c-1","placements":["a"],"context":{"page":"/a","page":"/b"}}`, 400, "invalid_field", "context.page"},
		{"explain string", `{"customer_id":"c-1","placements":["a"],"explain":"yes"}`, 400, "invalid_field", "explain"},
		{"unknown field", `{"customer_id":"c-1","placements":["a"],"debug":true}`, 400, "unknown_field", "debug"},
		{"engine request error", `{"customer_id":"c-reqerr","placements":["nope"]}`, 400, "unknown_placement", "placements[0].id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.decide(t, tc.body)
			eb := expectError(t, r, tc.status, tc.code)
			if !strings.Contains(eb.Error.Message, tc.field) {
				t.Errorf("message %q does not name %q", eb.Error.Message, tc.field)
			}
			if eb.Error.Field != "" && !strings.HasPrefix(tc.field, eb.Error.Field) && eb.Error.Field != tc.field {
				t.Errorf("field = %q, want %q", eb.Error.Field, tc.field)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
		})
	}
}

func TestDecideInternalErrorAndEncoding(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	r := ts.decide(t, `{"customer_id":"c-fail","placements":["a"]}`)
	eb := expectError(t, r, http.StatusInternalServerError, "internal")
	if strings.Contains(eb.Error.Message, "fire") {
		t.Errorf("internal error text leaked to the client: %q", eb.Error.Message)
	}

	r = ts.do(t, http.MethodPost, "/v1/decide", `{"customer_id":"c-1","placements":["a"]}`,
		map[string]string{"Content-Encoding": "gzip"})
	expectError(t, r, http.StatusUnsupportedMediaType, "unsupported_encoding")
}

func TestBodyTooLarge(t *testing.T) {
	cfg := testConfig()
	ts := startServer(t, cfg, newFakeDecider())

	// Just over the limit: read by fasthttp, refused by the handler.
	pad := strings.Repeat("x", cfg.MaxBodyBytes)
	r := ts.decide(t, `{"customer_id":"c-1","placements":["a"],"context":{"pad":"`+pad+`"}}`)
	eb := expectError(t, r, http.StatusRequestEntityTooLarge, "body_too_large")
	if !strings.Contains(eb.Error.Message, "65536") {
		t.Errorf("message %q does not state the limit", eb.Error.Message)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}

	// Far over the limit: fasthttp refuses from Content-Length alone and
	// ErrorHandler answers in the same JSON shape. A raw connection sends
	// only the headers, so the answer is not lost to a reset.
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/decide HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 10<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	expectError(t, response{status: resp.StatusCode, header: resp.Header, body: []byte(body.String())},
		http.StatusRequestEntityTooLarge, "body_too_large")

	// The server is unharmed.
	if r := ts.decide(t, `{"customer_id":"c-1","placements":["a"]}`); r.status != http.StatusOK {
		t.Errorf("after 413: status %d", r.status)
	}
}

func TestRouting(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())

	r := ts.do(t, http.MethodGet, "/v2/decide", "", nil)
	expectError(t, r, http.StatusNotFound, "not_found")

	r = ts.do(t, http.MethodGet, "/v1/decide", "", nil)
	expectError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := r.header.Get("Allow"); got != "POST, OPTIONS" {
		t.Errorf("Allow = %q", got)
	}

	r = ts.do(t, http.MethodPost, "/healthz", "{}", nil)
	expectError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := r.header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow = %q", got)
	}

	r = ts.do(t, http.MethodGet, "/healthz", "", nil)
	if r.status != http.StatusOK || string(r.body) != `{"status":"ok"}` {
		t.Errorf("healthz = %d %s", r.status, r.body)
	}
	r = ts.do(t, http.MethodHead, "/healthz", "", nil)
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Errorf("HEAD healthz = %d %q", r.status, r.body)
	}
}

func TestReadyz(t *testing.T) {
	fd := newFakeDecider()
	ts := startServer(t, testConfig(), fd)

	r := ts.do(t, http.MethodGet, "/readyz", "", nil)
	if r.status != http.StatusOK || string(r.body) != `{"status":"ready","store":"up"}` {
		t.Errorf("readyz = %d %s", r.status, r.body)
	}
	fd.setReadyErr(errors.New("no ruleset loaded"))
	r = ts.do(t, http.MethodGet, "/readyz", "", nil)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "no ruleset loaded") {
		t.Errorf("readyz = %d %s", r.status, r.body)
	}
}

// A failing shared store degrades decisions, so it shows in /readyz and
// /metrics without taking the node out of rotation.
func TestReadyzReportsStoreState(t *testing.T) {
	state := "down"
	ts := startServerWith(t, testConfig(), newFakeDecider(), Options{StoreStats: func() StoreStats {
		return StoreStats{State: state, Calls: 10, Failures: 4, Rejected: 3, BreakerOpens: 1}
	}})
	r := ts.do(t, http.MethodGet, "/readyz", "", nil)
	if r.status != http.StatusOK || string(r.body) != `{"status":"ready","store":"down"}` {
		t.Errorf("readyz = %d %s", r.status, r.body)
	}
	r = ts.do(t, http.MethodGet, "/metrics", "", nil)
	for _, want := range []string{"touchpoint_store_up 0", "touchpoint_store_failures_total 4", "touchpoint_store_breaker_opens_total 1"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestCORS(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	const allowed = "https://shop.example.com"

	t.Run("preflight allowed", func(t *testing.T) {
		r := ts.do(t, http.MethodOptions, "/v1/decide", "", map[string]string{
			"Origin":                         allowed,
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "content-type, x-request-id",
		})
		if r.status != http.StatusNoContent {
			t.Fatalf("status = %d; body %s", r.status, r.body)
		}
		for k, want := range map[string]string{
			"Access-Control-Allow-Origin":  allowed,
			"Access-Control-Allow-Methods": "POST, OPTIONS",
			"Access-Control-Allow-Headers": "content-type, x-request-id",
			"Access-Control-Max-Age":       "600",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if !strings.Contains(r.header.Get("Vary"), "Origin") {
			t.Errorf("Vary = %q", r.header.Get("Vary"))
		}
	})
	t.Run("preflight default headers", func(t *testing.T) {
		r := ts.do(t, http.MethodOptions, "/v1/decide", "", map[string]string{"Origin": allowed, "Access-Control-Request-Method": "POST"})
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Headers") != "Content-Type" {
			t.Errorf("status %d, Allow-Headers %q", r.status, r.header.Get("Access-Control-Allow-Headers"))
		}
	})
	t.Run("preflight denied", func(t *testing.T) {
		r := ts.do(t, http.MethodOptions, "/v1/decide", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
		eb := expectError(t, r, http.StatusForbidden, "origin_not_allowed")
		if !strings.Contains(eb.Error.Message, "https://evil.example") {
			t.Errorf("message %q", eb.Error.Message)
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Allow-Origin = %q on a denied preflight", got)
		}
	})
	t.Run("post allowed", func(t *testing.T) {
		r := ts.do(t, http.MethodPost, "/v1/decide", `{"customer_id":"c-1","placements":["a"]}`, map[string]string{"Origin": allowed})
		if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != allowed || r.header.Get("Vary") != "Origin" {
			t.Errorf("status %d, Allow-Origin %q, Vary %q", r.status, r.header.Get("Access-Control-Allow-Origin"), r.header.Get("Vary"))
		}
		// Errors carry the CORS headers too, so the page can read them.
		r = ts.do(t, http.MethodPost, "/v1/decide", `{}`, map[string]string{"Origin": allowed})
		if r.status != http.StatusBadRequest || r.header.Get("Access-Control-Allow-Origin") != allowed {
			t.Errorf("error answer: status %d, Allow-Origin %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("post from other origin", func(t *testing.T) {
		r := ts.do(t, http.MethodPost, "/v1/decide", `{"customer_id":"c-1","placements":["a"]}`, map[string]string{"Origin": "https://evil.example"})
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Allow-Origin = %q for a disallowed origin", got)
		}
	})
	t.Run("wildcard", func(t *testing.T) {
		cfg := testConfig()
		cfg.CORS.AllowedOrigins = []string{"*"}
		ws := startServer(t, cfg, newFakeDecider())
		r := ws.do(t, http.MethodOptions, "/v1/decide", "", map[string]string{"Origin": "https://anyone.example", "Access-Control-Request-Method": "POST"})
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("status %d, Allow-Origin %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
	})
}

func TestAdmin(t *testing.T) {
	auth := map[string]string{"Authorization": "Bearer " + testAdminKey}

	t.Run("disabled", func(t *testing.T) {
		cfg := testConfig()
		cfg.AdminKey = ""
		ts := startServer(t, cfg, newFakeDecider())
		expectError(t, ts.do(t, http.MethodPost, "/admin/reload", "", auth), http.StatusForbidden, "admin_disabled")
		eb := expectError(t, ts.do(t, http.MethodGet, "/admin/ruleset", "", nil), http.StatusForbidden, "admin_disabled")
		if !strings.Contains(eb.Error.Message, "TOUCHPOINT_ADMIN_KEY") {
			t.Errorf("message %q does not say how to enable the admin API", eb.Error.Message)
		}
		eb = expectError(t, ts.do(t, http.MethodDelete, "/v1/customers/c-1", "", nil), http.StatusForbidden, "admin_disabled")
		if !strings.Contains(eb.Error.Message, "TOUCHPOINT_ADMIN_KEY") {
			t.Errorf("message %q does not say how to enable the customer endpoints", eb.Error.Message)
		}
	})

	fd := newFakeDecider()
	ts := startServer(t, testConfig(), fd)

	t.Run("unauthorized", func(t *testing.T) {
		for name, h := range map[string]map[string]string{
			"missing":   nil,
			"wrong key": {"Authorization": "Bearer not-the-key-at-all-00"},
			"prefix":    {"Authorization": "Bearer " + testAdminKey[:len(testAdminKey)-1]},
			"basic":     {"Authorization": "Basic " + testAdminKey},
		} {
			r := ts.do(t, http.MethodPost, "/admin/reload", "", h)
			expectError(t, r, http.StatusUnauthorized, "unauthorized")
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s: WWW-Authenticate = %q", name, got)
			}
		}
		// Unknown admin paths are hidden behind authentication too.
		expectError(t, ts.do(t, http.MethodGet, "/admin/secrets", "", nil), http.StatusUnauthorized, "unauthorized")
	})

	t.Run("reload ok", func(t *testing.T) {
		r := ts.do(t, http.MethodPost, "/admin/reload", "", auth)
		if r.status != http.StatusOK {
			t.Fatalf("status %d; body %s", r.status, r.body)
		}
		var got map[string]string
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("decode: %v; body %s", err, r.body)
		}
		if got["ruleset"] != "2024-06-02.1" || got["loaded_at"] != "2024-06-02T08:30:00Z" {
			t.Errorf("reload answer = %v", got)
		}
	})

	t.Run("reload invalid", func(t *testing.T) {
		fd.setReloadErr(errors.New("rules/cart.yaml:12:7: unknown feature \"cart_vlaue\"\nrules/home.yaml:3:1: duplicate rule \"hero\""))
		defer fd.setReloadErr(nil)
		r := ts.do(t, http.MethodPost, "/admin/reload", "", auth)
		eb := expectError(t, r, http.StatusUnprocessableEntity, "ruleset_invalid")
		if !strings.Contains(eb.Error.Message, "rules/cart.yaml:12:7") || !strings.Contains(eb.Error.Message, "rules/home.yaml:3:1") {
			t.Errorf("message %q lacks the diagnostics", eb.Error.Message)
		}
	})

	t.Run("ruleset", func(t *testing.T) {
		r := ts.do(t, http.MethodGet, "/admin/ruleset", "", auth)
		if r.status != http.StatusOK {
			t.Fatalf("status %d; body %s", r.status, r.body)
		}
		var got map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("decode: %v", err)
		}
		for _, k := range []string{"version", "loaded_at", "files", "rules", "touchpoints", "placements", "warnings", "last_error", "last_error_at", "reloads", "failed_loads"} {
			if _, ok := got[k]; !ok {
				t.Errorf("ruleset status lacks %q: %s", k, r.body)
			}
		}
		if got["version"] != "2024-06-02.1" || got["rules"] != 12.0 {
			t.Errorf("ruleset status = %s", r.body)
		}
		if _, err := time.Parse(time.RFC3339, got["loaded_at"].(string)); err != nil {
			t.Errorf("loaded_at: %v", err)
		}
	})

	t.Run("methods", func(t *testing.T) {
		r := ts.do(t, http.MethodGet, "/admin/reload", "", auth)
		expectError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
		if r.header.Get("Allow") != "POST" {
			t.Errorf("Allow = %q", r.header.Get("Allow"))
		}
		expectError(t, ts.do(t, http.MethodGet, "/admin/secrets", "", auth), http.StatusNotFound, "not_found")
	})
}

func TestPanicRecovered(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	r := ts.decide(t, `{"customer_id":"c-panic","placements":["a"]}`)
	expectError(t, r, http.StatusInternalServerError, "internal")
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}

	if r := ts.decide(t, `{"customer_id":"c-1","placements":["a"]}`); r.status != http.StatusOK {
		t.Fatalf("request after panic: status %d; body %s", r.status, r.body)
	}

	logs := ts.logs.String()
	for _, want := range []string{`"level":"error"`, `"component":"server"`, `fake decider exploded`, `"stack":`, `handleDecide`} {
		if !strings.Contains(logs, want) {
			t.Errorf("panic log lacks %s; logs:\n%s", want, logs)
		}
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	ts.decide(t, `{"customer_id":"c-1","placements":["a"]}`)
	ts.decide(t, `{"customer_id":"c-2","placements":["a"]}`)
	ts.decide(t, `{"customer_id":"c-3"}`)
	ts.do(t, http.MethodGet, "/nope", "", nil)

	r := ts.do(t, http.MethodGet, "/metrics", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	body := string(r.body)
	want := []string{
		`touchpoint_http_requests_total{endpoint="decide",status="200"} 2`,
		`touchpoint_http_requests_total{endpoint="decide",status="400"} 1`,
		`touchpoint_http_requests_total{endpoint="not_found",status="404"} 1`,
		`touchpoint_decide_duration_seconds_bucket{le="2.5e-05"}`,
		`touchpoint_decide_duration_seconds_count 3`,
		`touchpoint_rule_errors_total{rule="cart_abandon_coupon"} 3`,
		`touchpoint_ruleset_info{version="2024-06-01.1"} 1`,
		`touchpoint_ruleset_loaded_timestamp_seconds 1.7172432e+09`,
		`touchpoint_ruleset_reloads_total 4`,
		`touchpoint_ruleset_failed_reloads_total 1`,
		`touchpoint_feature_lists_truncated_total 5`,
		`touchpoint_rule_deadline_exceeded_total 2`,
		`touchpoint_feature_cache_hits_total 42`,
		`touchpoint_feature_cache_misses_total 7`,
		`touchpoint_feature_cache_bytes 12345`,
		`touchpoint_feature_cache_entries 9`,
		`touchpoint_learning_store_failures_total{op="flush"} 0`,
		`touchpoint_build_info{commit="`,
		`go_goroutines `,
	}
	if runtime.GOOS == "linux" {
		want = append(want, `process_cpu_seconds_total `)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}

	// promhttp negotiates compression with the scraper.
	r = ts.do(t, http.MethodGet, "/metrics", "", map[string]string{"Accept-Encoding": "gzip"})
	if r.status != http.StatusOK || r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip scrape: status %d, Content-Encoding %q", r.status, r.header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("gzip scrape: %v", err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip scrape: %v", err)
	}
	if w := `touchpoint_http_requests_total{endpoint="decide",status="200"} 2`; !strings.Contains(string(unzipped), w) {
		t.Errorf("gzip scrape lacks %q", w)
	}
}

// readyzInProcess calls the handler directly: once shutdown has closed the
// listener, no new connection can reach /readyz.
func readyzInProcess(s *Server) (int, string) {
	var req fasthttp.Request
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI("/readyz")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	s.handle(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

func TestGracefulShutdown(t *testing.T) {
	fd := newFakeDecider()
	ts := startServer(t, testConfig(), fd)

	type result struct {
		r   response
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := ts.client.Post(ts.url+"/v1/decide", "application/json",
			strings.NewReader(`{"customer_id":"c-block","placements":["cart_banner"]}`))
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, err = bufio.NewReader(resp.Body).WriteTo(&b)
		inflight <- result{r: response{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}, err: err}
	}()
	select {
	case <-fd.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("decide never reached the engine")
	}

	ts.cancel()
	waitFor(t, 5*time.Second, "readyz to report draining", func() bool {
		status, body := readyzInProcess(ts.srv)
		return status == http.StatusServiceUnavailable && strings.Contains(body, "draining")
	})
	waitFor(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case <-ts.done:
		t.Fatal("Run returned while a request was in flight")
	default:
	}

	close(fd.release)
	select {
	case res := <-inflight:
		if res.err != nil {
			t.Fatalf("in-flight request failed: %v", res.err)
		}
		if res.r.status != http.StatusOK || !strings.Contains(string(res.r.body), `"decision_id":"d-c-block"`) {
			t.Fatalf("in-flight request: status %d; body %s", res.r.status, res.r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request never completed")
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		ts.done <- nil // for the cleanup check
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the in-flight request finished")
	}
}

func TestDrainDelayKeepsServing(t *testing.T) {
	cfg := testConfig()
	// Long enough for the checks below on a slow machine; Run returns at
	// its end.
	cfg.DrainDelay = 3 * time.Second
	ts := startServer(t, cfg, newFakeDecider())
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	ts.cancel()
	waitFor(t, 2*time.Second, "readyz over HTTP to report draining", func() bool {
		resp, err := fresh.Get(ts.url + "/readyz")
		if err != nil {
			t.Fatalf("readyz during drain delay: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	resp, err := fresh.Post(ts.url+"/v1/decide", "application/json", strings.NewReader(`{"customer_id":"c-1","placements":["a"]}`))
	if err != nil {
		t.Fatalf("decide during drain delay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("decide during drain delay: status %d, connection close %v", resp.StatusCode, resp.Close)
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = New(cfg, newFakeDecider(), Options{}).Run(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "max_body_bytes") {
		t.Fatalf("Run = %v, want a max_body_bytes error", err)
	}
}
