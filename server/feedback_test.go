package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

// fakeCustomers records every write and answers with err when it is set.
// Event ids it has seen count once, as a real store does.
type fakeCustomers struct {
	mu       sync.Mutex
	err      error
	seen     map[string]bool
	erased   []string
	features map[string]map[string]features.Value
	consent  map[string]map[string]features.Consent
	events   []features.Event
}

func newFakeCustomers() *fakeCustomers {
	return &fakeCustomers{seen: map[string]bool{}, features: map[string]map[string]features.Value{},
		consent: map[string]map[string]features.Consent{}}
}

func (f *fakeCustomers) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeCustomers) PutFeatures(_ context.Context, id string, values map[string]features.Value) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.features[id] == nil {
		f.features[id] = map[string]features.Value{}
	}
	for k, v := range values {
		f.features[id][k] = v
	}
	return nil
}

func (f *fakeCustomers) PutConsent(_ context.Context, id string, c map[string]features.Consent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.consent[id] = c
	return nil
}

func (f *fakeCustomers) Erase(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.erased = append(f.erased, id)
	return nil
}

func (f *fakeCustomers) ApplyEvents(_ context.Context, events []features.Event) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	n := 0
	for _, e := range events {
		if !f.seen[e.ID] {
			f.seen[e.ID] = true
			f.events = append(f.events, e)
			n++
		}
	}
	return n, nil
}

func (f *fakeCustomers) ReserveDecisions(context.Context, string, int32, []features.DecisionLimit) (bool, error) {
	return true, nil
}

func (f *fakeCustomers) snapshot() (erased []string, feats map[string]map[string]features.Value) {
	f.mu.Lock()
	defer f.mu.Unlock()
	feats = map[string]map[string]features.Value{}
	for k, v := range f.features {
		feats[k] = v
	}
	return slices.Clone(f.erased), feats
}

// fakeSchema knows the channels web, app, email and sms, and any feature
// but "unknown".
type fakeSchema struct{}

func (fakeSchema) CheckFeatures(values map[string]features.Value) *engine.RequestError {
	if _, ok := values["unknown"]; ok {
		return &engine.RequestError{Code: "unknown_feature", Field: "features.unknown", Message: "features.unknown is not declared"}
	}
	return nil
}

func (fakeSchema) CheckChannel(ch string) *engine.RequestError {
	if slices.Contains([]string{"web", "app", "email", "sms"}, ch) {
		return nil
	}
	return &engine.RequestError{Code: "invalid_field", Field: "channel", Message: "channel " + strconv.Quote(ch) + " is not one of web, app, email, sms"}
}

func (fakeSchema) TouchpointKind(string) string { return "coupon" }
func (fakeSchema) Attribute(*features.Event)    {}

// TrackEvent knows one event, cart_updated, whose number property value
// sets cart_value.
func (fakeSchema) TrackEvent(ev *features.Event, name string, props map[string]features.Value) *engine.RequestError {
	if name != "cart_updated" {
		return &engine.RequestError{Code: "unknown_event", Field: "name", Message: "name " + name + " is not declared"}
	}
	ev.Type = name
	if v, ok := props["value"]; ok {
		ev.Updates = append(ev.Updates, features.FeatureUpdate{Feature: "cart_value", Op: features.UpdateSet, Value: v})
	}
	return nil
}

func startFeedbackServer(t *testing.T, cfg Config) (*testServer, *fakeCustomers) {
	t.Helper()
	fc := newFakeCustomers()
	return startServerWith(t, cfg, newFakeDecider(), Options{Customers: fc, Schema: fakeSchema{}}), fc
}

var adminAuth = map[string]string{"Authorization": "Bearer " + testAdminKey}

// readmeEvent is an event shaped like the README's POST /v1/events example.
func readmeEvent(i int) string {
	return fmt.Sprintf(`{"event_id": "ev-%06d", "decision_id": "01a2085e41dc63dcb19e0003bec65641", "customer_id": "c-000042",
  "touchpoint": "cart_coupon_10", "type": "impression", "value": 12.5, "ts": %q,
  "channel": "web", "rule": "cart_abandon_coupon"}`, i, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
}

func eventBatch(n int) string {
	events := make([]string, n)
	for i := range events {
		events[i] = readmeEvent(i)
	}
	return `{"events": [` + strings.Join(events, ", ") + `]}`
}

// The answer says what each count means: accepted is the batch, applied
// the events counted now, duplicates those counted before.
func TestEventsAnswer(t *testing.T) {
	ts, _ := startFeedbackServer(t, testConfig())
	for _, tc := range []struct {
		body, want string
	}{
		{eventBatch(2), `{"accepted":2,"applied":2,"duplicates":0}`},
		{eventBatch(3), `{"accepted":3,"applied":1,"duplicates":2}`},
	} {
		r := ts.do(t, http.MethodPost, "/v1/events", tc.body, nil)
		if r.status != http.StatusAccepted || string(r.body) != tc.want {
			t.Errorf("events: %d %s, want 202 %s", r.status, r.body, tc.want)
		}
	}
}

func TestEventsStrictness(t *testing.T) {
	ts, fc := startFeedbackServer(t, testConfig())
	now := time.Now().UTC().Format(time.RFC3339)
	ev := func(fields string) string {
		return `{"events":[{"event_id":"e-1","customer_id":"c-1","touchpoint":"t","type":"click"` + fields + `}]}`
	}
	tests := []struct {
		name, body, code, field string
	}{
		{"raw newline in an id", "{\"events\":[{\"event_id\":\"e\n1\",\"customer_id\":\"c-1\",\"touchpoint\":\"t\",\"type\":\"click\"}]}", "invalid_json", "events[0].event_id"},
		{"raw tab in customer_id", "{\"events\":[{\"event_id\":\"e-1\",\"customer_id\":\"c\t1\",\"touchpoint\":\"t\",\"type\":\"click\"}]}", "invalid_json", "events[0].customer_id"},
		{"customer_id invalid UTF-8", "{\"events\":[{\"event_id\":\"e-1\",\"customer_id\":\"c-\xc3\",\"touchpoint\":\"t\",\"type\":\"click\"}]}", "invalid_field", "events[0].customer_id"},
		{"rule invalid UTF-8", ev(",\"rule\":\"r\xff\""), "invalid_field", "events[0].rule"},
		{"customer_id escaped control", ev(`,"decision_id":"d\u0007"`), "invalid_field", "events[0].decision_id"},
		{"key twice in an event", ev(`,"type":"impression"`), "invalid_field", "events[0].type"},
		{"events twice", `{"events":[],"events":[]}`, "invalid_field", "events"},
		{"unknown event key", ev(`,"customer":"c-2"`), "unknown_field", "events[0].customer"},
		{"unknown top-level key", `{"events":[],"batch":1}`, "unknown_field", "batch"},
		{"ts before 2000", ev(`,"ts":"1999-12-31T23:59:59Z"`), "invalid_field", "events[0].ts"},
		{"ts zero time", ev(`,"ts":"0001-01-01T00:00:00Z"`), "invalid_field", "events[0].ts"},
		{"ts in the future", ev(`,"ts":"2999-01-01T00:00:00Z"`), "invalid_field", "events[0].ts"},
		{"trailing garbage", ev("") + `x`, "invalid_json", ""},
		{"too many", `{"events":[` + strings.TrimSuffix(strings.Repeat(`{},`, 1001), ",") + `]}`, "invalid_field", "events"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eb := expectError(t, ts.do(t, http.MethodPost, "/v1/events", tc.body, nil), http.StatusBadRequest, tc.code)
			if eb.Error.Field != tc.field {
				t.Errorf("field = %q, want %q; message %q", eb.Error.Field, tc.field, eb.Error.Message)
			}
			if tc.field != "" && !strings.Contains(eb.Error.Message, tc.field) {
				t.Errorf("message %q does not name %s", eb.Error.Message, tc.field)
			}
		})
	}
	// An event at the edge is fine, and nothing above was applied.
	if r := ts.do(t, http.MethodPost, "/v1/events", ev(`,"ts":"2000-01-01T00:00:00Z"`), nil); r.status != http.StatusAccepted {
		t.Errorf("event on 2000-01-01: %d %s", r.status, r.body)
	}
	if r := ts.do(t, http.MethodPost, "/v1/events", ev(`,"ts":"`+now+`"`), nil); r.status != http.StatusAccepted {
		t.Errorf("event now: %d %s", r.status, r.body)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.events) != 1 {
		t.Errorf("applied %d events, want 1 (e-1 once)", len(fc.events))
	}
}

func TestFeaturesStrictness(t *testing.T) {
	ts, fc := startFeedbackServer(t, testConfig())
	tests := []struct {
		name, body, code, field string
	}{
		{"unknown top-level key", `{"features":{"tier":"gold"},"feature":{"tier":"silver"}}`, "unknown_field", "feature"},
		{"features twice", `{"features":{"tier":"gold"},"features":{"tier":"silver"}}`, "invalid_field", "features"},
		{"feature twice", `{"features":{"tier":"gold","tier":"silver"}}`, "invalid_field", "features.tier"},
		{"raw control in a value", "{\"features\":{\"first_name\":\"Zo\x01e\"}}", "invalid_json", "features.first_name"},
		{"invalid UTF-8 value", "{\"features\":{\"first_name\":\"Zo\xe9\"}}", "invalid_field", "features.first_name"},
		{"invalid UTF-8 list item", "{\"features\":{\"tags\":[\"a\",\"\xff\"]}}", "invalid_field", "features.tags[1]"},
		{"missing", `{}`, "missing_field", "features"},
		{"not an object", `{"features":[1]}`, "invalid_field", "features"},
		{"trailing garbage", `{"features":{"tier":"gold"}} {}`, "invalid_json", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eb := expectError(t, ts.do(t, http.MethodPut, "/v1/customers/c-1/features", tc.body, adminAuth), http.StatusBadRequest, tc.code)
			if eb.Error.Field != tc.field {
				t.Errorf("field = %q, want %q; message %q", eb.Error.Field, tc.field, eb.Error.Message)
			}
		})
	}
	// Escaped control characters are text like any other.
	if r := ts.do(t, http.MethodPut, "/v1/customers/c-1/features", `{"features":{"address":"1 Main St\nSpringfield"}}`, adminAuth); r.status != http.StatusOK {
		t.Fatalf("escaped newline: %d %s", r.status, r.body)
	}
	if _, feats := fc.snapshot(); len(feats) != 1 || feats["c-1"]["address"].Str != "1 Main St\nSpringfield" {
		t.Errorf("features written = %v", feats)
	}
}

func TestConsentStrictness(t *testing.T) {
	ts, _ := startFeedbackServer(t, testConfig())
	tests := []struct {
		name, body, code, field string
	}{
		{"trailing garbage", `{"channels":{"email":true}}garbage`, "invalid_json", ""},
		{"second document", `{"channels":{"email":true}} {"channels":{"sms":true}}`, "invalid_json", ""},
		{"channel twice", `{"channels":{"email":true,"email":false}}`, "invalid_field", "channels.email"},
		{"channels twice", `{"channels":{"email":true},"channels":{"sms":true}}`, "invalid_field", "channels"},
		{"unknown key", `{"channels":{"email":true},"at":"now"}`, "unknown_field", "at"},
		{"not a bool", `{"channels":{"email":"yes"}}`, "invalid_field", "channels.email"},
		{"unknown channel", `{"channels":{"fax":true}}`, "invalid_field", "channels.fax"},
		{"empty", `{"channels":{}}`, "missing_field", "channels"},
		{"raw control", "{\"channels\":{\"em\x02ail\":true}}", "invalid_json", "channels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eb := expectError(t, ts.do(t, http.MethodPut, "/v1/customers/c-1/consent", tc.body, adminAuth), http.StatusBadRequest, tc.code)
			if eb.Error.Field != tc.field {
				t.Errorf("field = %q, want %q; message %q", eb.Error.Field, tc.field, eb.Error.Message)
			}
		})
	}
	if r := ts.do(t, http.MethodPut, "/v1/customers/c-1/consent", `{"channels":{"email":true,"sms":false}}`, adminAuth); r.status != http.StatusOK {
		t.Errorf("consent: %d %s", r.status, r.body)
	}
}

// timeoutError is what a store call that ran out of time returns.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// A write the store refused says nothing was applied; any other failure
// (a timeout above all) says the outcome is unknown and that retrying is
// safe, in the words of each endpoint.
func TestStoreUnavailableSaysWhatWasApplied(t *testing.T) {
	ts, fc := startFeedbackServer(t, testConfig())
	writes := []struct {
		name, method, path, body, unknown string
	}{
		{"events", http.MethodPost, "/v1/events", eventBatch(1), "retrying with the same event ids is safe"},
		{"features", http.MethodPut, "/v1/customers/c-1/features", `{"features":{"tier":"gold"}}`, "may have been written"},
		{"consent", http.MethodPut, "/v1/customers/c-1/consent", `{"channels":{"email":true}}`, "may have been recorded"},
		{"erase", http.MethodDelete, "/v1/customers/c-1", "", "may have been erased"},
	}
	for _, failure := range []struct {
		name    string
		err     error
		applied bool // whether the answer may claim nothing was applied
	}{
		{"refused", fmt.Errorf("redis: breaker open: %w", features.ErrNotApplied), true},
		{"timeout", fmt.Errorf("redis: %w", timeoutError{}), false},
		{"deadline", context.DeadlineExceeded, false},
	} {
		fc.setErr(failure.err)
		for _, w := range writes {
			t.Run(failure.name+"/"+w.name, func(t *testing.T) {
				r := ts.do(t, w.method, w.path, w.body, adminAuth)
				eb := expectError(t, r, http.StatusServiceUnavailable, "unavailable")
				if r.header.Get("Retry-After") == "" {
					t.Errorf("no Retry-After")
				}
				msg := eb.Error.Message
				switch {
				case failure.applied && !strings.Contains(msg, "nothing was applied"):
					t.Errorf("message %q does not say nothing was applied", msg)
				case !failure.applied && strings.Contains(msg, "nothing was applied"):
					t.Errorf("message %q claims nothing was applied after %v", msg, failure.err)
				case !failure.applied && !strings.Contains(msg, w.unknown):
					t.Errorf("message %q lacks %q", msg, w.unknown)
				}
			})
		}
	}
	if !errors.Is(fmt.Errorf("x: %w", features.ErrNotApplied), features.ErrNotApplied) {
		t.Fatal("ErrNotApplied does not survive wrapping")
	}
}

// The customer id is read from the raw path and decoded once: an encoded
// "/.." stays inside the id and never reaches another customer.
func TestCustomerIDFromRawPath(t *testing.T) {
	ts, fc := startFeedbackServer(t, testConfig())
	tests := []struct {
		name, method, path, body string
		status                   int
		id                       string // the customer written or erased
	}{
		{"erase traversal", http.MethodDelete, "/v1/customers/c-000777%2F..%2Fc-000101", "", 204, "c-000777/../c-000101"},
		{"features traversal", http.MethodPut, "/v1/customers/zzz%2F..%2Fc-000500/features", `{"features":{"tier":"gold"}}`, 200, "zzz/../c-000500"},
		{"traversal past the prefix", http.MethodDelete, "/v1/customers/a%2F..%2F..%2F..%2Fhealthz", "", 204, "a/../../../healthz"},
		{"traversal onto an endpoint", http.MethodPut, "/v1/customers/a%2F..%2F..%2Fdecide/features", `{"features":{"tier":"gold"}}`, 200, "a/../../decide"},
		{"decoded once", http.MethodDelete, "/v1/customers/c-1%252F..%252Fc-2", "", 204, "c-1%2F..%2Fc-2"},
		{"spaces and non-ASCII", http.MethodDelete, "/v1/customers/Zo%C3%AB%20M%C3%BCller%2Fshop%3F%23", "", 204, "Zoë Müller/shop?#"},
		{"plus is a plus", http.MethodDelete, "/v1/customers/a+b", "", 204, "a+b"},
		{"raw dot-dot segment", http.MethodDelete, "/v1/customers/c-1/../c-2", "", 404, ""},
		{"raw traversal into customers", http.MethodDelete, "/v1/decide/../customers/c-2", "", 404, ""},
		{"trailing slash", http.MethodDelete, "/v1/customers/c-1/", "", 404, ""},
		{"unknown sub-resource", http.MethodPut, "/v1/customers/c-1/history", "{}", 404, ""},
		{"bad escape", http.MethodDelete, "/v1/customers/c-%zz1", "", 400, ""},
		{"truncated escape", http.MethodDelete, "/v1/customers/c-1%2", "", 400, ""},
		{"encoded dot-dot", http.MethodDelete, "/v1/customers/%2E%2E", "", 400, ""},
		{"encoded control", http.MethodDelete, "/v1/customers/c-1%0A", "", 400, ""},
		{"encoded invalid UTF-8", http.MethodDelete, "/v1/customers/c-%FF", "", 400, ""},
		{"too long", http.MethodDelete, "/v1/customers/" + strings.Repeat("x", 257), "", 400, ""},
		{"empty", http.MethodDelete, "/v1/customers/", "", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			erasedBefore, _ := fc.snapshot()
			// A raw request: Go's client would refuse a malformed escape.
			r := ts.raw(t, tc.method+" "+tc.path+" HTTP/1.1\r\nAuthorization: Bearer "+testAdminKey+"\r\n", tc.body, len(tc.body))
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.status, r.body)
			}
			if r.status == 400 {
				if eb := expectError(t, r, 400, "invalid_field"); eb.Error.Field != "id" {
					t.Errorf("field = %q, want id", eb.Error.Field)
				}
			}
			erased, feats := fc.snapshot()
			switch {
			case tc.id == "":
				if len(erased) != len(erasedBefore) {
					t.Errorf("erased %q on a refused request", erased[len(erasedBefore):])
				}
			case tc.method == http.MethodDelete:
				if got := erased[len(erased)-1]; got != tc.id {
					t.Errorf("erased %q, want %q", got, tc.id)
				}
			default:
				if _, ok := feats[tc.id]; !ok {
					t.Errorf("features of %q not written; written: %v", tc.id, feats)
				}
			}
		})
	}
	erased, feats := fc.snapshot()
	for _, victim := range []string{"c-000101", "c-000500", "c-2"} {
		if slices.Contains(erased, victim) || feats[victim] != nil {
			t.Errorf("%s was reached", victim)
		}
	}
}

// Each endpoint names its own limit when a body is too large, whether the
// handler or fasthttp itself refuses it.
func TestBodyLimitsPerEndpoint(t *testing.T) {
	cfg := testConfig()
	ts, fc := startFeedbackServer(t, cfg)

	// A full batch of README-shaped events fits.
	batch := eventBatch(maxEventsPerBatch)
	if len(batch) <= cfg.MaxBodyBytes*2 {
		t.Fatalf("a batch of 1,000 events is only %d bytes; the test needs one larger than the decide limit", len(batch))
	}
	r := ts.do(t, http.MethodPost, "/v1/events", batch, nil)
	if r.status != http.StatusAccepted || string(r.body) != `{"accepted":1000,"applied":1000,"duplicates":0}` {
		t.Fatalf("1,000 events (%d bytes): %d %s", len(batch), r.status, r.body)
	}
	if len(batch)*3 > cfg.MaxEventsBodyBytes {
		t.Errorf("1,000 README-shaped events take %d bytes: less than 3x margin under max_events_body_bytes %d", len(batch), cfg.MaxEventsBodyBytes)
	}

	pad := func(n int) string { return strings.Repeat(" ", n) }
	tests := []struct {
		name, method, path, body string
		limit                    int
	}{
		{"events just over", http.MethodPost, "/v1/events", `{"events":[]}` + pad(cfg.MaxEventsBodyBytes), cfg.MaxEventsBodyBytes},
		{"decide just over", http.MethodPost, "/v1/decide", `{}` + pad(cfg.MaxBodyBytes), cfg.MaxBodyBytes},
		{"features over", http.MethodPut, "/v1/customers/c-1/features", `{}` + pad(maxCustomerBody), maxCustomerBody},
		// Over fasthttp's own limit, the largest of all: fasthttp refuses
		// from Content-Length alone and ErrorHandler answers. Only the
		// headers are sent, so the answer is not lost to a reset.
		{"events far over", http.MethodPost, "/v1/events", "", cfg.MaxEventsBodyBytes},
		{"decide far over", http.MethodPost, "/v1/decide", "", cfg.MaxBodyBytes},
		{"features far over", http.MethodPut, "/v1/customers/c-1/features", "", maxCustomerBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.body != "" {
				// A fresh connection each: fasthttp closes one it refused.
				ts.client.CloseIdleConnections()
				r = ts.do(t, tc.method, tc.path, tc.body, adminAuth)
			} else {
				r = ts.raw(t, tc.method+" "+tc.path+" HTTP/1.1\r\nAuthorization: Bearer "+testAdminKey+"\r\n", "", 10<<20)
			}
			eb := expectError(t, r, http.StatusRequestEntityTooLarge, "body_too_large")
			if want := strconv.Itoa(tc.limit) + " bytes"; !strings.Contains(eb.Error.Message, want) {
				t.Errorf("message %q does not name the %s limit", eb.Error.Message, want)
			}
		})
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.events) != maxEventsPerBatch {
		t.Errorf("%d events applied, want %d", len(fc.events), maxEventsPerBatch)
	}
}

// The loadtest reads accepted and duplicates from the answer; the applied
// field added between them must not confuse a JSON reader either.
func TestEventsAnswerIsJSON(t *testing.T) {
	var got map[string]int
	if err := json.Unmarshal(eventsAnswer(nil, 5, 3), &got); err != nil {
		t.Fatal(err)
	}
	if got["accepted"] != 5 || got["applied"] != 3 || got["duplicates"] != 2 || len(got) != 3 {
		t.Errorf("answer = %v", got)
	}
}
