package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// minimalTraffic is one view; tests append an events section.
const minimalTraffic = "version: 1\nviews:\n  - name: a\n    weight: 1\n    placements: [home_hero]\n    context: {channel: web}\n"

func TestEventsSection(t *testing.T) {
	tr, err := ParseTraffic("t.yaml", []byte(minimalTraffic+`events:
  share: 0.25
  types: {impression: 3, click: 1}
  touchpoints: [cart_coupon_10, birthday_gift]
`))
	if err != nil {
		t.Fatal(err)
	}
	e := tr.Events
	if e == nil || e.Share != 0.25 || e.Path != "/v1/events" || e.Batch != 1 || e.Touchpoints != 2 || !tr.HasEvents() {
		t.Fatalf("defaults: %+v", e)
	}
	tr, err = ParseTraffic("t.yaml", []byte(minimalTraffic+`events:
  share: 1
  path: /feedback/v1/events
  batch: 20
  types: {conversion: 1}
  touchpoints: {cart_coupon_10: 9, birthday_gift: 1}
`))
	if err != nil || tr.Events.Share != 1 || tr.Events.Path != "/feedback/v1/events" || tr.Events.Batch != 20 {
		t.Fatalf("full section: %+v, %v", tr.Events, err)
	}
	for name, file := range map[string]string{
		"absent": minimalTraffic,
		"null":   minimalTraffic + "events:\n",
		"list":   minimalTraffic + "events: []\n",
	} {
		if tr, err := ParseTraffic("t.yaml", []byte(file)); err != nil || tr.Events != nil || tr.HasEvents() {
			t.Errorf("%s: no events expected: %+v, %v", name, tr, err)
		}
	}
	if tr, err := ParseTraffic("t.yaml", []byte(minimalTraffic+"events: {share: 0, types: {click: 1}, touchpoints: [x]}\n")); err != nil || tr.HasEvents() {
		t.Errorf("share 0 keeps the section but sends no events: %v", err)
	}

	// Lines 1-6 are the view; the events section starts on line 7.
	for name, c := range map[string]struct{ section, want string }{
		"a list":        {"events:\n  - {type: impression}\n", "t.yaml:8:3: events must be a map"},
		"unknown key":   {"events:\n  share: 0.1\n  sahre: 0.2\n", `t.yaml:9:3: events: unknown key "sahre"`},
		"twice":         {"events:\n  share: 0.1\n  share: 0.2\n", "t.yaml:9:3: events.share is given twice"},
		"no share":      {"events:\n  types: {click: 1}\n  touchpoints: [x]\n", "t.yaml:8:3: events.share is required"},
		"share > 1":     {"events:\n  share: 1.5\n", "t.yaml:8:10: events.share must be a fraction of all requests between 0 and 1, got \"1.5\""},
		"share text":    {"events:\n  share: lots\n", "t.yaml:8:10: events.share must be a fraction"},
		"no types":      {"events:\n  share: 0.1\n  touchpoints: [x]\n", "t.yaml:8:3: events.types is required"},
		"no tps":        {"events:\n  share: 0.1\n  types: {click: 1}\n", "t.yaml:8:3: events.touchpoints is required"},
		"bad type":      {"events:\n  share: 0.1\n  types: {impresion: 1}\n  touchpoints: [x]\n", `t.yaml:9:11: events.types: "impresion" is not an event type; use impression, click, conversion, dismiss`},
		"type weight":   {"events:\n  share: 0.1\n  types: {click: 0}\n  touchpoints: [x]\n", "t.yaml:9:18: events.types.click: weight must be a positive number"},
		"types list":    {"events:\n  share: 0.1\n  types: [click]\n  touchpoints: [x]\n", "t.yaml:9:10: events.types must be a map"},
		"batch":         {"events:\n  share: 0.1\n  batch: 1001\n", "t.yaml:9:10: events.batch must be a whole number of events per request from 1 to 1000"},
		"batch frac":    {"events:\n  share: 0.1\n  batch: 1.5\n", "t.yaml:9:10: events.batch must be a whole number"},
		"path":          {"events:\n  share: 0.1\n  path: v1/events\n", `t.yaml:9:9: events.path must be a URL path starting with /, got "v1/events"`},
		"empty tps":     {"events:\n  share: 0.1\n  types: {click: 1}\n  touchpoints: []\n", "t.yaml:10:16: events.touchpoints: at least one touchpoint id is required"},
		"duplicate tp":  {"events:\n  share: 0.1\n  types: {click: 1}\n  touchpoints: [x, x]\n", `t.yaml:10:20: events.touchpoints: "x" is listed twice`},
		"tp weight":     {"events:\n  share: 0.1\n  types: {click: 1}\n  touchpoints: {x: -1}\n", "t.yaml:10:20: events.touchpoints.x: weight must be a positive number"},
		"tp not id":     {"events:\n  share: 0.1\n  types: {click: 1}\n  touchpoints: [{id: x}]\n", "t.yaml:10:17: events.touchpoints: each entry is a touchpoint id"},
		"tp scalar":     {"events:\n  share: 0.1\n  types: {click: 1}\n  touchpoints: x\n", "t.yaml:10:16: events.touchpoints must be a list"},
		"scalar events": {"events: yes\n", "t.yaml:7:9: events must be a map"},
	} {
		_, err := ParseTraffic("t.yaml", []byte(minimalTraffic+c.section))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

func TestWithEventShare(t *testing.T) {
	tr := demoTraffic(t)
	off, err := tr.WithEventShare(0)
	if err != nil || off.HasEvents() || !tr.HasEvents() {
		t.Fatalf("share 0: %v; the original must keep its events", err)
	}
	all, err := tr.WithEventShare(1)
	if err != nil || all.Events.Share != 1 || tr.Events.Share == 1 {
		t.Fatalf("share 1: %v", err)
	}
	plain, _ := ParseTraffic("t.yaml", []byte(minimalTraffic))
	if _, err := plain.WithEventShare(0.1); err == nil || !strings.Contains(err.Error(), "needs an events section") {
		t.Errorf("a share without a section: %v", err)
	}
	if _, err := tr.WithEventShare(1.5); err == nil {
		t.Error("a share above 1 is accepted")
	}
}

// TestEventKindsAreDeterministic: whether request n is an event batch
// depends on the seed and n alone, and adding events leaves every
// remaining decide as it was.
func TestEventKindsAreDeterministic(t *testing.T) {
	tr := demoTraffic(t)
	const n = 20_000
	a, b, other := NewGenerator(tr, 3000, 7), NewRunGenerator(tr, 3000, 7, "run2"), NewGenerator(tr, 3000, 8)
	noEvents, _ := tr.WithEventShare(0)
	plain := NewGenerator(noEvents, 3000, 7).NewSource()
	src := a.NewSource()
	events, differ := 0, 0
	for i := uint64(0); i < n; i++ {
		k := a.Kind(i)
		if k != b.Kind(i) {
			t.Fatalf("request %d: kind differs between generators of seed 7", i)
		}
		if k != other.Kind(i) {
			differ++
		}
		if k == EventsRequest {
			events++
			continue
		}
		with, _, _ := src.Body(nil, i, testNow)
		without, _, _ := plain.Body(nil, i, testNow)
		if !bytes.Equal(with, without) {
			t.Fatalf("request %d: the decide changed when events were mixed in:\n%s\n%s", i, with, without)
		}
	}
	if got := float64(events) / n; math.Abs(got-tr.Events.Share) > 0.01 {
		t.Errorf("events are %.3f of requests, want %.3f", got, tr.Events.Share)
	}
	// Two seeds pick different requests: with share p they disagree on
	// about 2p(1-p) of them.
	if want := 2 * tr.Events.Share * (1 - tr.Events.Share) * n; math.Abs(float64(differ)-want) > want/5 {
		t.Errorf("seeds 7 and 8 disagree on %d requests, want about %.0f", differ, want)
	}
	if plain.g.Kind(1) != DecideRequest {
		t.Error("share 0 still draws event batches")
	}
	all, _ := tr.WithEventShare(1)
	g := NewGenerator(all, 3000, 7)
	for i := range uint64(1000) {
		if g.Kind(i) != EventsRequest {
			t.Fatalf("share 1: request %d is a decide", i)
		}
	}
}

type eventsBody struct {
	Events []struct {
		EventID    string         `json:"event_id"`
		DecisionID string         `json:"decision_id"`
		CustomerID string         `json:"customer_id"`
		Touchpoint string         `json:"touchpoint"`
		Type       string         `json:"type"`
		Name       string         `json:"name"`
		Properties map[string]any `json:"properties"`
		TS         string         `json:"ts"`
	} `json:"events"`
}

// decodeEvents reads a batch the way a strict client of the events API
// would: unknown fields and trailing bytes are errors.
func decodeEvents(t *testing.T, body []byte) eventsBody {
	t.Helper()
	var b eventsBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("not the events API's JSON: %v\n%s", err, body)
	}
	if dec.More() {
		t.Fatalf("bytes after the batch:\n%s", body)
	}
	return b
}

// demoEvents reads the behavioural events configs/features.yaml declares
// (name: property: type) and the values its string features allow, as
// plain YAML: an event or property the schema lacks would be a 400.
func demoEvents(t *testing.T) (events map[string]map[string]string, allowed map[string][]string) {
	t.Helper()
	var schema struct {
		Events map[string]struct {
			Properties map[string]string `yaml:"properties"`
		} `yaml:"events"`
		Customer map[string]struct {
			Values []string `yaml:"values"`
		} `yaml:"customer"`
		On map[string]struct {
			Set map[string]any `yaml:"set"`
		} `yaml:"on"`
	}
	readYAML(t, "../configs/features.yaml", &schema)
	events = map[string]map[string]string{}
	for name, e := range schema.Events {
		events[name] = e.Properties
	}
	// A string property that sets a feature with a list of values must be
	// one of them.
	allowed = map[string][]string{}
	for name, on := range schema.On {
		for feature, v := range on.Set {
			if ref, ok := v.(string); ok && strings.HasPrefix(ref, "properties.") {
				if vals := schema.Customer[feature].Values; len(vals) > 0 {
					allowed[name+"."+strings.TrimPrefix(ref, "properties.")] = vals
				}
			}
		}
	}
	if len(events) == 0 {
		t.Fatal("configs/features.yaml declares no events")
	}
	return events, allowed
}

func TestEventBodies(t *testing.T) {
	tr := demoTraffic(t)
	tr.Events.Batch = 3
	// The demo's touchpoints, read as plain YAML: an event naming one the
	// rules lack would still be accepted, but count for nothing.
	known := map[string]bool{}
	for _, f := range []string{"campaigns", "cart", "journey", "lifecycle", "loyalty", "placements", "recs", "service", "store"} {
		var rules struct {
			Touchpoints []struct {
				ID string `yaml:"id"`
			} `yaml:"touchpoints"`
		}
		readYAML(t, "../configs/rules/"+f+".yaml", &rules)
		for _, tp := range rules.Touchpoints {
			known[tp.ID] = true
		}
	}
	declared, allowed := demoEvents(t)
	if len(allowed["complaint_opened.emotion"]) == 0 {
		t.Fatal("the emotion feature's values were not found in configs/features.yaml")
	}
	g := NewRunGenerator(tr, 3000, 42, "r1")
	src := g.NewSource()
	ids := map[string]bool{}
	types := map[string]int{}
	names := map[string]int{}
	customers := map[string]int{}
	batches := 0
	var buf []byte
	for i := uint64(0); batches < 5000; i++ {
		if g.Kind(i) != EventsRequest {
			continue
		}
		batches++
		buf = src.Events(buf[:0], i, testNow)
		b := decodeEvents(t, buf)
		if len(b.Events) != 3 {
			t.Fatalf("batch %d has %d events, want 3", i, len(b.Events))
		}
		var decisionID string
		for j, e := range b.Events {
			if ids[e.EventID] {
				t.Fatalf("event id %s is sent twice", e.EventID)
			}
			ids[e.EventID] = true
			if !strings.HasPrefix(e.EventID, "lt-42-r1-") || len(e.EventID) > maxEventIDBytes {
				t.Fatalf("event id %q does not carry the seed and run", e.EventID)
			}
			if ts, err := time.Parse(time.RFC3339, e.TS); err != nil || !ts.Equal(testNow) {
				t.Fatalf("ts %q is not now in RFC 3339: %v", e.TS, err)
			}
			if e.CustomerID != b.Events[0].CustomerID {
				t.Fatalf("batch %d event %d: one batch is one customer's", i, j)
			}
			types[e.Type]++
			if e.Type == "track" {
				if e.DecisionID != "" || e.Touchpoint != "" {
					t.Fatalf("a track event carries feedback fields: %+v", e)
				}
				props, ok := declared[e.Name]
				if !ok {
					t.Fatalf("track event %q is not in configs/features.yaml's events", e.Name)
				}
				names[e.Name]++
				for p, v := range e.Properties {
					typ := map[string]string{"float64": "number", "string": "string", "bool": "bool"}[reflect.TypeOf(v).String()]
					if typ == "" || typ != props[p] {
						t.Fatalf("%s.properties.%s is %T %v; the schema declares %q", e.Name, p, v, v, props[p])
					}
					if vals := allowed[e.Name+"."+p]; vals != nil && !slices.Contains(vals, v.(string)) {
						t.Fatalf("%s.properties.%s = %q, which the feature it sets does not allow (%v)", e.Name, p, v, vals)
					}
				}
				if len(e.Properties) != len(props) {
					t.Fatalf("%s has properties %v; the demo traffic gives every declared one (%v)", e.Name, e.Properties, props)
				}
				continue
			}
			if e.Name != "" || e.Properties != nil {
				t.Fatalf("a feedback event carries track fields: %+v", e)
			}
			if !known[e.Touchpoint] {
				t.Fatalf("event names %q, which the demo rules do not define", e.Touchpoint)
			}
			if len(e.DecisionID) != 32 || strings.Trim(e.DecisionID, "0123456789abcdef") != "" {
				t.Fatalf("decision id %q is not 32 hex digits", e.DecisionID)
			}
			if decisionID != "" && e.DecisionID != decisionID {
				t.Fatalf("batch %d event %d: one batch is one page's decision", i, j)
			}
			decisionID = e.DecisionID
		}
		customers[b.Events[0].CustomerID]++
	}
	total := float64(3 * batches)
	for typ, w := range map[string]float64{"impression": 0.60, "click": 0.11, "conversion": 0.02, "dismiss": 0.02, "track": 0.25} {
		if got := float64(types[typ]) / total; math.Abs(got-w) > 0.015 {
			t.Errorf("type %s: share %.3f, want %.2f", typ, got, w)
		}
	}
	if tr.Events.TrackShare != 0.25 {
		t.Errorf("TrackShare %g, want 0.25", tr.Events.TrackShare)
	}
	for name, w := range map[string]float64{"cart_updated": 0.70, "checkout_completed": 0.17, "points_expiring": 0.07, "complaint_opened": 0.03, "complaint_resolved": 0.03} {
		if got := float64(names[name]) / float64(types["track"]); math.Abs(got-w) > 0.03 {
			t.Errorf("track event %s: share %.3f, want %.2f", name, got, w)
		}
	}
	// The same Zipf draw as decides: the head is far more frequent.
	if customers["c-000001"] < 5*max(customers["c-002999"], 1) {
		t.Errorf("events are not Zipf-distributed over customers: c-000001 %d, c-002999 %d", customers["c-000001"], customers["c-002999"])
	}
	for id := range customers {
		if !strings.HasPrefix(id, "c-") || id > "c-003000" {
			t.Errorf("customer %q is not one of --customers", id)
		}
	}

	// Another run with the same seed sends the same batches under new ids.
	again := NewRunGenerator(tr, 3000, 42, "r2").NewSource()
	first := src.Events(nil, 3, testNow)
	second := again.Events(nil, 3, testNow)
	if bytes.Equal(first, second) || !bytes.Equal(bytes.ReplaceAll(first, []byte("-r1-"), []byte("-r2-")), second) {
		t.Errorf("runs r1 and r2 of seed 42 should differ in event ids only:\n%s\n%s", first, second)
	}
}

func TestEventsURL(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8080":                "http://127.0.0.1:8080/v1/events",
		"http://127.0.0.1:8080/":               "http://127.0.0.1:8080/v1/events",
		"http://127.0.0.1:8080/v1/decide":      "http://127.0.0.1:8080/v1/events",
		"https://gw.example/tp/v1/decide?k=1":  "https://gw.example/tp/v1/events?k=1",
		"http://127.0.0.1:8080/something/else": "http://127.0.0.1:8080/v1/events",
	} {
		if got, err := eventsURL(raw, "/v1/decide", "/v1/events"); err != nil || got != want {
			t.Errorf("eventsURL(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
}

// pathCounter answers like okHandler and counts what arrived where.
type pathCounter struct {
	mu     sync.Mutex
	byPath map[string]int
	events int
}

func (p *pathCounter) handler(ctx *fasthttp.RequestCtx) {
	p.mu.Lock()
	if p.byPath == nil {
		p.byPath = map[string]int{}
	}
	p.byPath[string(ctx.Method())+" "+string(ctx.Path())]++
	p.events += bytes.Count(ctx.PostBody(), []byte(`"event_id"`))
	p.mu.Unlock()
	okHandler(ctx)
}

// TestRunMixesEvents sends the demo traffic to a server that counts what
// arrives where: event batches go to the events path, both kinds are in
// the report on their own, and they add up to the step.
func TestRunMixesEvents(t *testing.T) {
	var pc pathCounter
	cfg := testConfig(t, startServer(t, pc.handler))
	cfg.Rates = []float64{1000}
	cfg.Requests = 2000
	cfg.RunID = "test"
	cfg.SLO, _ = ParseSLO("p99=1s,errors=0%")
	rep := run(t, cfg)
	st := rep.Steps[0]
	if st.ByKind == nil || st.ByKind.Decide == nil || st.ByKind.Events == nil {
		t.Fatalf("by_kind missing: %+v", st.ByKind)
	}
	dec, ev := st.ByKind.Decide, st.ByKind.Events
	checkKindsAddUp(t, &st)
	if st.OK != 2000 || st.Errors.Total != 0 || st.SLO == nil || !st.SLO.Pass {
		t.Fatalf("ok %d, errors %+v, SLO %+v", st.OK, st.Errors, st.SLO)
	}
	// The preflight sends one request per view, asks about the first and
	// last customer id and sends one batch; the run the rest.
	pc.mu.Lock()
	gotEvents, gotDecides, batchCount := pc.byPath["POST /v1/events"], pc.byPath["POST /v1/decide"], pc.events
	pc.mu.Unlock()
	if gotEvents != int(ev.Sent)+1 || gotDecides != int(dec.Sent)+len(cfg.Traffic.Views)+2 || len(pc.byPath) != 2 {
		t.Errorf("server saw %v; the run sent %d decides and %d batches", pc.byPath, dec.Sent, ev.Sent)
	}
	if f := ev.Feedback; f == nil || f.Events != ev.Sent || f.Accepted != ev.OK || f.Duplicates != 0 || int(f.Events)+1 != batchCount {
		t.Errorf("feedback %+v, %d batches ok; server counted %d events", ev.Feedback, ev.OK, batchCount)
	}
	if share := float64(ev.Planned) / float64(st.Planned); math.Abs(share-cfg.Traffic.Events.Share) > 0.03 {
		t.Errorf("events are %.3f of the step, want about %.2f", share, cfg.Traffic.Events.Share)
	}
	s := rep.Settings.Events
	if s == nil || s.Share != cfg.Traffic.Events.Share || !strings.HasSuffix(s.URL, "/v1/events") || s.IDPrefix != "lt-1-test-" {
		t.Errorf("settings.events = %+v", s)
	}

	var table, page, js bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for what, want := range map[string][2]string{
		"table header": {table.String(), "  events   15% of requests are batches of 1 event to http://"},
		"table decide": {table.String(), "\n  decide  "},
		"table events": {table.String(), "\n  events  "},
		"table note":   {table.String(), "events   step 1: "},
		"html table":   {page.String(), `<table id="by-kind">`},
		"html setting": {page.String(), "15% of requests, batches of 1 event naming 20 touchpoints"},
		"json kinds":   {js.String(), `"by_kind": {`},
		"json events":  {js.String(), `"feedback": {`},
		"json setting": {js.String(), `"id_prefix": "lt-1-test-"`},
		"table track":  {table.String(), "(ids lt-1-test-…); 25% of events behavioural (cart_updated, checkout_completed, points_expiring, complaint_opened, complaint_resolved)\n"},
		"html track":   {page.String(), "naming 20 touchpoints; 25% of events behavioural (cart_updated, "},
		"json track":   {js.String(), `"track_share": 0.25`},
	} {
		if !strings.Contains(want[0], want[1]) {
			t.Errorf("%s lacks %q:\n%s", what, want[1], want[0])
		}
	}
	t.Logf("\n%s", table.String())

	// Closed loop: the same split.
	closed := cfg
	closed.Mode, closed.Concurrency, closed.Rates, closed.SLO = Closed, 4, nil, SLO{}
	closed.Requests = 500
	cst := run(t, closed).Steps[0]
	checkKindsAddUp(t, &cst)
	if cst.ByKind.Events.OK == 0 || cst.OK != 500 {
		t.Errorf("closed loop: %+v", cst.ByKind.Events)
	}
}

// checkKindsAddUp holds each kind's figures against the step's.
func checkKindsAddUp(t *testing.T, st *Step) {
	t.Helper()
	d, e := st.ByKind.Decide, st.ByKind.Events
	sum := func(f func(*KindStats) int64) int64 { return f(d) + f(e) }
	for name, c := range map[string][2]int64{
		"planned":    {sum(func(k *KindStats) int64 { return k.Planned }), st.Planned},
		"sent":       {sum(func(k *KindStats) int64 { return k.Sent }), st.Sent},
		"ok":         {sum(func(k *KindStats) int64 { return k.OK }), st.OK},
		"errors":     {sum(func(k *KindStats) int64 { return k.Errors.Total }), st.Errors.Total},
		"timeouts":   {sum(func(k *KindStats) int64 { return k.Errors.Timeout }), st.Errors.Timeout},
		"connection": {sum(func(k *KindStats) int64 { return k.Errors.Connection }), st.Errors.Connection},
		"unsent":     {sum(func(k *KindStats) int64 { return k.Errors.Unsent }), st.Errors.Unsent},
		"latencies":  {sum(func(k *KindStats) int64 { return k.Latency.Count }), st.Latency.Count},
	} {
		if c[0] != c[1] {
			t.Errorf("%s: decide + events = %d, step has %d", name, c[0], c[1])
		}
	}
	for code, n := range st.Errors.Status {
		if got := d.Errors.Status[code] + e.Errors.Status[code]; got != n {
			t.Errorf("HTTP %s: decide + events = %d, step has %d", code, got, n)
		}
	}
	for _, k := range []*KindStats{d, e} {
		if k.Planned != k.OK+k.Errors.Total {
			t.Errorf("a kind's requests are neither ok nor errors: %+v", k)
		}
		if k.Latency.Max > st.Latency.Max || (k.Latency.Count > 0 && k.Latency.Min < st.Latency.Min) {
			t.Errorf("a kind's latencies fall outside the step's: %+v vs %+v", k.Latency, st.Latency)
		}
	}
}

// TestKindsAddUpUnderErrors fails requests of both kinds every way a run
// can: error statuses, timeouts and, by interrupting, requests never sent.
func TestKindsAddUpUnderErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	var n atomic.Int64
	url := startServer(t, func(rc *fasthttp.RequestCtx) {
		switch k := n.Add(1); {
		case k == 400:
			cancel() // interrupted mid-step: the rest is never sent
		case k%7 == 0:
			rc.SetStatusCode(fasthttp.StatusServiceUnavailable)
			rc.SetBodyString(`{"error":{"code":"unavailable"}}`)
			return
		case k%11 == 0:
			<-release // outlives the client's timeout
			return
		}
		okHandler(rc)
	})
	t.Cleanup(func() { close(release) })
	cfg := testConfig(t, url)
	cfg.Preflight = false
	cfg.Rates = []float64{2000}
	cfg.Duration = 10 * time.Second
	cfg.Timeout = 100 * time.Millisecond
	cfg.Connections = 8
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := rep.Steps[0]
	e := st.ByKind.Events
	if !st.Interrupted || st.Errors.Unsent == 0 || e.Errors.Status["503"] == 0 || e.Errors.Timeout == 0 || e.Errors.Unsent == 0 {
		t.Fatalf("want every kind of failure among event batches: step %+v, events %+v", st.Errors, e.Errors)
	}
	checkKindsAddUp(t, &st)
	if e.Errors.Samples["503"] == "" || st.ByKind.Decide.Errors.Samples["503"] == "" {
		t.Errorf("each kind keeps its own first answers: %v / %v", e.Errors.Samples, st.ByKind.Decide.Errors.Samples)
	}
	var table bytes.Buffer
	WriteTable(&table, rep)
	if !strings.Contains(table.String(), "errors   step 1, events: ") || !strings.Contains(table.String(), "errors   step 1, decide: ") {
		t.Errorf("the table does not say which kind failed:\n%s", table.String())
	}
}

// TestPreflightWantsAnEventsEndpoint: a server that does not know the
// events path (one from before it existed) or cannot record events stops
// the run before it starts, saying why.
func TestPreflightWantsAnEventsEndpoint(t *testing.T) {
	for status, want := range map[int]string{
		fasthttp.StatusNotFound:       "answered 404 to an event batch: the target has no events endpoint there",
		fasthttp.StatusNotImplemented: "answered 501 to an event batch: the server cannot record events",
		fasthttp.StatusBadRequest:     `answered 400 to an event batch from the traffic file ({"events":[{"event_id":"lt-1-`,
	} {
		url := startServer(t, func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/v1/events" {
				ctx.SetStatusCode(status)
				ctx.SetBodyString(`{"error":{"code":"x"}}`)
				return
			}
			okHandler(ctx)
		})
		cfg := testConfig(t, url)
		cfg.Duration = time.Second
		_, err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%d: err = %v, want one line with %q", status, err, want)
		}
		if status != fasthttp.StatusBadRequest && (err == nil || !strings.Contains(err.Error(), "--event-share 0")) {
			t.Errorf("%d: the error does not say how to send decides only: %v", status, err)
		}
		// Decides only: the same server is fine.
		cfg.Traffic, _ = cfg.Traffic.WithEventShare(0)
		cfg.Duration, cfg.Requests = 0, 50
		if st := run(t, cfg).Steps[0]; st.OK != 50 || st.ByKind.Events != nil {
			t.Errorf("%d with --event-share 0: ok %d, by kind %+v", status, st.OK, st.ByKind)
		}
	}
}

func TestBaselineAnswersEvents(t *testing.T) {
	cfg := testConfig(t, startServer(t, baselineHandler))
	cfg.Requests = 200
	cfg.Rates = []float64{1000}
	st := run(t, cfg).Steps[0]
	if f := st.ByKind.Events.Feedback; st.Errors.Total != 0 || f.Accepted != f.Events || f.Events == 0 {
		t.Errorf("baseline: errors %+v, feedback %+v", st.Errors, f)
	}
}
