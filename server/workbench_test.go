package server

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/workbench"
)

// startDemo serves the demo rules and customers with the workbench, as
// `touchpoint serve` does.
func startDemo(t *testing.T, cfg Config) *testServer {
	t.Helper()
	store, err := features.OpenJSONL("../configs/demo/customers.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	ecfg := engine.Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml"}
	eng, err := engine.New(ecfg, store, zerolog.Nop(), engine.WithoutLearning())
	if err != nil {
		t.Fatal(err)
	}
	wb := workbench.New(workbench.Config{RulesDir: ecfg.RulesDir, SchemaPath: ecfg.SchemaPath}, eng, store, zerolog.Nop())
	return startServerWith(t, cfg, eng, Options{Schema: eng, Customers: features.NewOverlay(store, nil), Workbench: wb})
}

var admin = map[string]string{"Authorization": "Bearer " + testAdminKey}

func TestWorkbenchEndpointsNeedTheAdminKey(t *testing.T) {
	ts := startDemo(t, testConfig())
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/admin/schema", ""},
		{"GET", "/admin/rules", ""},
		{"GET", "/admin/rules/file?path=cart.yaml", ""},
		{"POST", "/admin/drafts/check", `{"files":{"cart.yaml":""}}`},
		{"POST", "/admin/drafts/replay", `{"files":{"cart.yaml":""}}`},
		{"GET", "/v1/customers/c-000042", ""},
	} {
		r := ts.do(t, c.method, c.path, c.body, nil)
		expectError(t, r, http.StatusUnauthorized, codeUnauthorized)
		if strings.Contains(string(r.body), "Mei") || strings.Contains(string(r.body), "rules:") {
			t.Errorf("%s %s leaks data without the key: %s", c.method, c.path, r.body)
		}
	}
	cfg := testConfig()
	cfg.AdminKey = ""
	off := startDemo(t, cfg)
	expectError(t, off.do(t, "GET", "/admin/schema", "", admin), http.StatusForbidden, codeAdminDisabled)
}

func TestWorkbenchEndpoints(t *testing.T) {
	ts := startDemo(t, testConfig())
	cart, err := os.ReadFile("../configs/rules/cart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	draft := func(files map[string]string) string {
		b, _ := json.Marshal(map[string]any{"files": files})
		return string(b)
	}

	r := ts.do(t, "GET", "/admin/schema", "", admin)
	var schema workbench.Schema
	if r.status != 200 || json.Unmarshal(r.body, &schema) != nil || len(schema.Features) == 0 || len(schema.Placements) == 0 {
		t.Fatalf("schema: %d %s", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("admin answers may be cached: %q", r.header.Get("Cache-Control"))
	}

	r = ts.do(t, "GET", "/admin/rules/file?path=cart.yaml", "", admin)
	var file struct{ Path, Content string }
	if r.status != 200 || json.Unmarshal(r.body, &file) != nil || file.Content != string(cart) {
		t.Fatalf("file: %d %.200s", r.status, r.body)
	}
	expectError(t, ts.do(t, "GET", "/admin/rules/file?path=..%2Ffeatures.yaml", "", admin), 404, codeNotFound)
	expectError(t, ts.do(t, "GET", "/admin/rules/file", "", admin), 400, codeMissingField)

	broken := strings.Replace(string(cart), "customer.cart_value < 60", "customer.cart_valeu < 60", 1)
	r = ts.do(t, "POST", "/admin/drafts/check", draft(map[string]string{"cart.yaml": broken}), admin)
	var check workbench.Check
	if r.status != 200 || json.Unmarshal(r.body, &check) != nil || check.OK || len(check.Errors) != 1 || check.Errors[0].File != "cart.yaml" {
		t.Fatalf("check of a broken draft: %d %s", r.status, r.body)
	}

	for name, c := range map[string]struct {
		body, code, field string
		status            int
	}{
		"not json":       {`{"files":`, codeInvalidJSON, "files", 400},
		"no files":       {`{}`, codeMissingField, "files", 400},
		"empty files":    {`{"files":{}}`, codeInvalidField, "files", 400},
		"unknown field":  {`{"files":{"a.yaml":""},"limit":5}`, codeUnknownField, "limit", 400},
		"not text":       {`{"files":{"a.yaml":7}}`, codeInvalidField, "files.a.yaml", 400},
		"outside":        {`{"files":{"../../etc/x.yaml":""}}`, codeInvalidField, "files", 400},
		"not yaml":       {`{"files":{"x.sh":""}}`, codeInvalidField, "files", 400},
		"files twice":    {`{"files":{"a.yaml":""},"files":{"b.yaml":""}}`, codeInvalidField, "files", 400},
		"too large":      {`{"files":{"a.yaml":"` + strings.Repeat("x", maxDraftBody) + `"}}`, codeBodyTooLarge, "", 413},
		"top not object": {`[]`, codeInvalidJSON, "", 400},
	} {
		t.Run(name, func(t *testing.T) {
			e := expectError(t, ts.do(t, "POST", "/admin/drafts/check", c.body, admin), c.status, c.code)
			if e.Error.Field != c.field {
				t.Errorf("field = %q, want %q", e.Error.Field, c.field)
			}
		})
	}
	expectError(t, ts.do(t, "GET", "/admin/drafts/check", "", admin), 405, codeMethodNotAllowed)
	expectError(t, ts.do(t, "POST", "/admin/schema", "", admin), 405, codeMethodNotAllowed)
	// This server logs no decisions, so there is nothing to replay.
	expectError(t, ts.do(t, "POST", "/admin/drafts/replay", draft(map[string]string{"cart.yaml": string(cart)}), admin), 409, codeNotSupported)
	e := expectError(t, ts.do(t, "POST", "/admin/drafts/replay", `{"files":{"cart.yaml":""},"limit":0}`, admin), 400, codeInvalidField)
	if e.Error.Field != "limit" {
		t.Errorf("limit 0: field %q", e.Error.Field)
	}

	r = ts.do(t, "GET", "/v1/customers/c-000042", "", admin)
	var cust workbench.Customer
	if r.status != 200 || json.Unmarshal(r.body, &cust) != nil || !cust.Known || cust.Features["first_name"] != "Mei" {
		t.Fatalf("customer: %d %s", r.status, r.body)
	}
	expectError(t, ts.do(t, "PATCH", "/v1/customers/c-000042", "", admin), 405, codeMethodNotAllowed)
}

func TestWorkbenchNeedsAWorkbench(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	expectError(t, ts.do(t, "GET", "/admin/schema", "", admin), 501, codeNotSupported)
}

// A what-if preview decides for a changed customer and needs the admin
// key; its features are checked against the schema.
func TestDecideWhatIf(t *testing.T) {
	ts := startDemo(t, testConfig())
	const mei = `"customer_id":"c-000042","placements":["cart_banner"],"context":{"channel":"web","page":"/cart"}`
	shown := func(r response) string {
		t.Helper()
		var d struct {
			Placements map[string][]struct{ Touchpoint string }
		}
		if r.status != 200 || json.Unmarshal(r.body, &d) != nil || len(d.Placements["cart_banner"]) == 0 {
			t.Fatalf("decide: %d %s", r.status, r.body)
		}
		return d.Placements["cart_banner"][0].Touchpoint
	}
	if got := shown(ts.do(t, "POST", "/v1/decide", `{`+mei+`}`, nil)); got != "cart_coupon_10" {
		t.Fatalf("Mei on /cart: %s", got)
	}
	noConsent := `{` + mei + `,"what_if":{"features":{"cart_abandon_7d":1,"cart_value":89.9,"cart_items":3,"coupon_propensity":0.62,"consent_marketing":false}}}`
	if got := shown(ts.do(t, "POST", "/v1/decide", noConsent, admin)); got != "cart_free_returns_info" {
		t.Errorf("without marketing consent: %s, want the fallback", got)
	}
	expectError(t, ts.do(t, "POST", "/v1/decide", noConsent, nil), 401, codeUnauthorized)
	for name, c := range map[string]struct{ whatIf, code, field string }{
		"not an object":    {`[]`, codeInvalidField, "what_if"},
		"unknown key":      {`{"mood":"x"}`, codeUnknownField, "what_if.mood"},
		"unknown feature":  {`{"features":{"shoe_size":42}}`, "unknown_feature", "what_if.features.shoe_size"},
		"wrong type":       {`{"features":{"tier":3}}`, codeInvalidField, "what_if.features.tier"},
		"not allowed":      {`{"features":{"tier":"diamond"}}`, codeInvalidField, "what_if.features.tier"},
		"a counter":        {`{"features":{"coupon_dismissals_30d":1}}`, codeInvalidField, "what_if.features.coupon_dismissals_30d"},
		"consent not bool": {`{"consent":{"email":"yes"}}`, codeInvalidField, "what_if.consent.email"},
		"history":          {`{"history":"some"}`, codeInvalidField, "what_if.history"},
		"history type":     {`{"history":false}`, codeInvalidField, "what_if.history"},
		"twice":            {`{"history":"none","history":"none"}`, codeInvalidField, "what_if.history"},
	} {
		t.Run(name, func(t *testing.T) {
			e := expectError(t, ts.do(t, "POST", "/v1/decide", `{`+mei+`,"what_if":`+c.whatIf+`}`, admin), 400, c.code)
			if e.Error.Field != c.field {
				t.Errorf("field = %q, want %q (%s)", e.Error.Field, c.field, e.Error.Message)
			}
		})
	}
}

func TestPlaygroundFiles(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	r := ts.do(t, "GET", "/ui/", "", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<script type=\"module\"") {
		t.Fatalf("GET /ui/: %d %s %.100s", r.status, r.header.Get("Content-Type"), r.body)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("ETag") == "" {
		t.Errorf("headers: %v", r.header)
	}
	again := ts.do(t, "GET", "/ui/", "", map[string]string{"If-None-Match": r.header.Get("ETag")})
	if again.status != 304 || len(again.body) != 0 {
		t.Errorf("revalidation: %d with %d bytes", again.status, len(again.body))
	}
	if js := ts.do(t, "GET", "/ui/vendor/editor.js", "", nil); js.status != 200 || !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") {
		t.Errorf("the editor: %d %s", js.status, js.header.Get("Content-Type"))
	}
	expectError(t, ts.do(t, "GET", "/ui/../admin/ruleset", "", nil), 401, codeUnauthorized) // normalised to /admin/ruleset
	expectError(t, ts.do(t, "GET", "/ui/missing.js", "", nil), 404, codeNotFound)
	expectError(t, ts.do(t, "POST", "/ui/", "", nil), 405, codeMethodNotAllowed)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(ts.url + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || !strings.HasSuffix(resp.Header.Get("Location"), "/ui/") {
		t.Errorf("GET /ui: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
