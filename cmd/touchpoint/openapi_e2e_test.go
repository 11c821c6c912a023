package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/touchpoint-dev/touchpoint/api"
	"github.com/touchpoint-dev/touchpoint/server"
)

// textBody decodes the playground's pages and scripts as text, which is
// all the document says of them.
func textBody(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	b, err := io.ReadAll(body)
	return string(b), err
}

func loadAPIDocument(t *testing.T) *openapi3.T {
	t.Helper()
	for _, ct := range []string{"text/html", "text/javascript", "text/css", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, textBody)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.Document())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// Every route the server serves is in api/openapi.yaml.
func TestAPIDocumentCoversEveryRoute(t *testing.T) {
	doc := loadAPIDocument(t)
	for _, r := range server.Routes() {
		item := doc.Paths.Find(r.Path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is served but not in api/openapi.yaml", r.Method, r.Path)
		}
	}
}

// Real requests to a real server, and their answers, match the document:
// successes and errors alike, on every route.
func TestAPIMatchesTheDocument(t *testing.T) {
	doc := loadAPIDocument(t)
	ws := workspace(t)
	s := startServer(t, ws)
	doc.Servers = openapi3.Servers{{URL: s.base}} // the test's server, not the documented default
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// A decision to send events about and an experiment report to read.
	_, d, _, err := s.decide(cartRequest)
	if err != nil {
		t.Fatal(err)
	}
	cart, err := os.ReadFile(filepath.Join(ws, "rules", "cart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	draft := func(text string) string {
		b, _ := json.Marshal(map[string]any{"files": map[string]string{"cart.yaml": text}})
		return string(b)
	}
	broken := draft(strings.Replace(string(cart), "customer.cart_value < 60", "customer.cart_valeu < 60", 1))
	cases := []struct {
		method, path, body string
		admin              bool
		status             int
	}{
		{"POST", "/v1/decide", `{"customer_id":"c-000042","placements":["cart_banner"],"context":{"channel":"web","page":"/cart"},"what_if":{"features":{"tier":"gold"},"consent":{"email":false},"history":"none"}}`, true, 200},
		{"POST", "/v1/decide", `{"customer_id":"c-000042","placements":["cart_banner"],"context":{"channel":"web"},"what_if":{"history":"none"}}`, false, 401},
		{"GET", "/v1/customers/c-000042", "", true, 200},
		{"GET", "/v1/customers/nobody-here", "", true, 200},
		{"GET", "/v1/customers/c-000042", "", false, 401},
		{"GET", "/admin/schema", "", true, 200},
		{"GET", "/admin/rules", "", true, 200},
		{"GET", "/admin/rules/file?path=cart.yaml", "", true, 200},
		{"GET", "/admin/rules/file?path=../features.yaml", "", true, 404},
		{"POST", "/admin/drafts/check", draft(string(cart)), true, 200},
		{"POST", "/admin/drafts/check", broken, true, 200},
		{"POST", "/admin/drafts/check", `{"files":{"../x.yaml":""}}`, true, 400},
		{"POST", "/admin/drafts/check", draft(string(cart)), false, 401},
		{"POST", "/admin/drafts/replay", broken, true, 409}, // this server logs no decisions
		{"GET", "/ui/", "", false, 200},
		{"GET", "/ui/app.js", "", false, 200},
		{"GET", "/ui/nope.js", "", false, 404},
		{"POST", "/v1/decide", cartRequest, false, 200},
		{"POST", "/v1/decide", `{"customer_id":"c-000042","placements":[{"id":"cart_banner"},"product_recs","promo_strip"],"context":{"channel":"web","page":"/cart"},"explain":true}`, false, 200},
		{"POST", "/v1/decide", `{"customer_id":"c-000042","placements":["home_hero"],"context":{"channel":"web"},"now":"2026-11-27T12:00:00Z"}`, true, 200},
		{"POST", "/v1/decide", `{"customer_id":"c-000042","placements":["home_hero"],"context":{"channel":"web"},"now":"2026-11-27T12:00:00Z"}`, false, 401},
		{"POST", "/v1/decide", `{"customer_id":"c-000042","placements":["nope"],"context":{"channel":"web"}}`, false, 400},
		{"POST", "/v1/events", `{"events":[{"event_id":"e1","decision_id":"` + d.DecisionID + `","customer_id":"c-000042","touchpoint":"cart_coupon_10","type":"click"}]}`, false, 202},
		{"POST", "/v1/events", `{"events":[]}`, false, 400},
		{"POST", "/v1/events", `{"events":[{"event_id":"tr-1","customer_id":"c-000042","type":"track","name":"cart_updated","properties":{"value":40,"items":1}}]}`, false, 202},
		{"POST", "/v1/events", `{"events":[{"event_id":"tr-2","customer_id":"c-000042","type":"track","name":"cart_updatd"}]}`, false, 400},
		{"PUT", "/v1/customers/api-1/features", `{"features":{"tier":"gold","ltv":120,"interests":["yoga"]}}`, true, 200},
		{"PUT", "/v1/customers/api-1/consent", `{"channels":{"email":true}}`, true, 200},
		{"PUT", "/v1/customers/api-1/features", `{"features":{"tier":"gold"}}`, false, 401},
		{"DELETE", "/v1/customers/api-1", "", true, 204},
		{"GET", "/v1/experiments/cart_coupon_test", "", true, 200},
		{"GET", "/v1/experiments/nope", "", true, 404},
		{"GET", "/healthz", "", false, 200},
		{"GET", "/readyz", "", false, 200},
		{"GET", "/metrics", "", false, 200},
		{"GET", "/openapi.yaml", "", false, 200},
		{"POST", "/admin/reload", "", true, 200},
		{"GET", "/admin/ruleset", "", true, 200},
		{"GET", "/admin/ruleset", "", false, 401},
		{"GET", "/admin/bandits", "", true, 200},
	}
	ctx := context.Background()
	for _, c := range cases {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, err := http.NewRequest(c.method, s.base+c.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.admin {
			req.Header.Set("Authorization", "Bearer "+adminKey)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: not in the document: %v", c.method, c.path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if c.status < 400 {
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s %s: the request does not match the document: %v", c.method, c.path, err)
			}
			if c.body != "" {
				req.Body = io.NopCloser(strings.NewReader(c.body)) // the validation read it
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, resp.StatusCode, c.status, raw)
			continue
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(raw)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s (%d): the answer does not match the document: %v\n%s", c.method, c.path, resp.StatusCode, err, truncate(raw, 600))
		}
	}
}

// Every route server.Routes lists is served: none answers "no endpoint".
func TestEveryListedRouteIsServed(t *testing.T) {
	s := startServer(t, workspace(t))
	for _, r := range server.Routes() {
		req, err := http.NewRequest(r.Method, s.base+strings.ReplaceAll(r.Path, "{id}", "route-check"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("Origin", "http://localhost:3000")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusMethodNotAllowed || strings.Contains(string(raw), "no endpoint at") {
			t.Errorf("%s %s is listed but not served: %d %s", r.Method, r.Path, resp.StatusCode, raw)
		}
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
