package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every endpoint that takes a body refuses a key the API does not define,
// at any level, the same way: 400 unknown_field naming it, and nothing
// applied.
func TestUnknownKeysRefusedEverywhere(t *testing.T) {
	ws := workspace(t)
	s := startServer(t, ws)
	cart, err := os.ReadFile(filepath.Join(ws, "rules", "cart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := json.Marshal(map[string]string{"cart.yaml": string(cart)})
	const event = `{"event_id":"uk-1","decision_id":"d-1","customer_id":"c-002026","touchpoint":"points_expiry_reminder","type":"impression"`

	cases := []struct {
		name, method, path, body string
		admin                    bool
		field                    string
	}{
		{"decide", "POST", "/v1/decide", `{"customer_id":"c-000042","placements":["cart_banner"],"debug":true}`, false, "debug"},
		{"decide placement", "POST", "/v1/decide", `{"customer_id":"c-000042","placements":[{"id":"cart_banner","size":"xl"}]}`, false, "placements[0].size"},
		{"decide what_if", "POST", "/v1/decide", `{"customer_id":"c-000042","placements":["cart_banner"],"what_if":{"histroy":"none"}}`, true, "what_if.histroy"},
		{"events", "POST", "/v1/events", `{"events":[` + event + `}],"batch":"b-1"}`, false, "batch"},
		{"event", "POST", "/v1/events", `{"events":[` + event + `,"campain":"x"}]}`, false, "events[0].campain"},
		{"features", "PUT", "/v1/customers/uk-1/features", `{"features":{"tier":"gold"},"merge":true}`, true, "merge"},
		{"consent", "PUT", "/v1/customers/uk-1/consent", `{"channels":{"email":true},"source":"web"}`, true, "source"},
		{"draft check", "POST", "/admin/drafts/check", `{"files":` + string(files) + `,"dry_run":true}`, true, "dry_run"},
		{"draft check limit", "POST", "/admin/drafts/check", `{"files":` + string(files) + `,"limit":5}`, true, "limit"},
		{"draft replay", "POST", "/admin/drafts/replay", `{"files":` + string(files) + `,"limit":5,"seed":1}`, true, "seed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, raw := s.call(t, tc.method, tc.path, tc.body, tc.admin)
			var eb struct {
				Error struct{ Code, Field, Message string }
			}
			if err := json.Unmarshal([]byte(raw), &eb); err != nil {
				t.Fatalf("%d %s: %v", code, raw, err)
			}
			if code != 400 || eb.Error.Code != "unknown_field" || eb.Error.Field != tc.field || !strings.Contains(eb.Error.Message, tc.field) {
				t.Errorf("%s %s: %d %s; want 400 unknown_field naming %s", tc.method, tc.path, code, raw, tc.field)
			}
		})
	}

	// The refused writes changed nothing: the event counts now, for the
	// first time, and the customer has no stored features.
	if code, raw := s.call(t, "POST", "/v1/events", `{"events":[`+event+`}]}`, false); code != 202 || !strings.Contains(raw, `"applied":1,"duplicates":0`) {
		t.Errorf("events after the refused batches: %d %s", code, raw)
	}
	code, raw := s.call(t, "GET", "/v1/customers/uk-1", "", true)
	if code != 200 || strings.Contains(raw, "gold") {
		t.Errorf("customer after the refused PUT: %d %s", code, raw)
	}
	if code, raw := s.call(t, "PUT", "/v1/customers/uk-1/features", `{"features":{"tier":"gold"}}`, true); code != 200 {
		t.Fatalf("PUT features: %d %s", code, raw)
	}
	if code, raw := s.call(t, "GET", "/v1/customers/uk-1", "", true); code != 200 || !strings.Contains(raw, "gold") {
		t.Errorf("customer after a PUT without the unknown key: %d %s", code, raw)
	}
}
