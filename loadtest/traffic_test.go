package loadtest

import (
	"encoding/json"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type decideBody struct {
	CustomerID string            `json:"customer_id"`
	Placements []json.RawMessage `json:"placements"`
	Context    map[string]any    `json:"context"`
}

// testNow timestamps events in tests that compare bodies.
var testNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestGeneratorIsDeterministic(t *testing.T) {
	tr := demoTraffic(t)
	a := NewGenerator(tr, 1_000_000, 7).NewSource()
	b := NewGenerator(tr, 1_000_000, 7).NewSource()
	other := NewGenerator(tr, 1_000_000, 8).NewSource()
	const n = 2000
	want := make([]string, n)
	for i := range want {
		body, _, _ := a.Body(nil, uint64(i), testNow)
		want[i] = string(body)
	}
	// Another source, building in reverse order, must produce the same
	// request for each sequence number: workers build in any order.
	differ := 0
	for i := n - 1; i >= 0; i-- {
		body, _, _ := b.Body(nil, uint64(i), testNow)
		if string(body) != want[i] {
			t.Fatalf("seed 7, request %d differs between sources:\n%s\n%s", i, body, want[i])
		}
		if o, _, _ := other.Body(nil, uint64(i), testNow); string(o) != want[i] {
			differ++
		}
	}
	if differ < n/2 {
		t.Errorf("seed 8 repeats seed 7 for %d of %d requests", n-differ, n)
	}
}

func TestGeneratorRespectsWeights(t *testing.T) {
	tr := demoTraffic(t)
	const customers, n = 3000, 60_000
	src := NewGenerator(tr, customers, 1).NewSource()
	views := make([]int, len(tr.Views))
	ids := map[string]int{}
	anonymous, devices, decides := 0, map[string]int{}, 0
	idForm := regexp.MustCompile(`^c-\d{6}$`)
	var buf []byte
	for i := range n {
		var vi int
		var kind RequestKind
		buf, kind, vi = src.Body(buf[:0], uint64(i), testNow)
		if kind == EventsRequest {
			continue // TestEventBodies covers them
		}
		decides++
		views[vi]++
		var d decideBody
		if err := json.Unmarshal(buf, &d); err != nil {
			t.Fatalf("request %d is not JSON: %v\n%s", i, err, buf)
		}
		switch {
		case strings.HasPrefix(d.CustomerID, "visitor-"):
			anonymous++
		case idForm.MatchString(d.CustomerID):
			ids[d.CustomerID]++
		default:
			t.Fatalf("customer id %q is neither c-%%06d nor visitor-N", d.CustomerID)
		}
		if tr.Views[vi].Name == "web_home" {
			devices[d.Context["device"].(string)]++
		}
	}
	total := 0.0
	for _, v := range tr.Views {
		total += v.Weight
	}
	if got := 1 - float64(decides)/n; math.Abs(got-tr.Events.Share) > 0.01 {
		t.Errorf("event batches are %.3f of requests, want %.3f", got, tr.Events.Share)
	}
	for i, v := range tr.Views {
		want := v.Weight / total
		got := float64(views[i]) / float64(decides)
		if math.Abs(got-want) > 0.01 {
			t.Errorf("view %s: share %.3f, want %.3f", v.Name, got, want)
		}
	}
	if got := float64(anonymous) / float64(decides); math.Abs(got-tr.Anonymous) > 0.01 {
		t.Errorf("anonymous share %.3f, want %.3f", got, tr.Anonymous)
	}
	// Weighted context values: web_home devices are mobile 60, desktop 32, tablet 8.
	home := float64(devices["mobile"] + devices["desktop"] + devices["tablet"])
	if got := float64(devices["mobile"]) / home; math.Abs(got-0.60) > 0.03 {
		t.Errorf("web_home mobile share %.3f, want 0.60", got)
	}
	// Zipf: the first hundred ids are drawn far more often than the last
	// hundred (about 27 times with zipf_s 1.1, zipf_v 100), and ids stay
	// within --customers.
	head, tail := 0, 0
	for id, c := range ids {
		if id > "c-003000" {
			t.Errorf("customer %s is beyond --customers %d", id, customers)
		}
		switch {
		case id <= "c-000100":
			head += c
		case id > "c-002900":
			tail += c
		}
	}
	if head < 10*tail {
		t.Errorf("first 100 customers drawn %d times, last 100 %d times: not Zipf", head, tail)
	}
	if len(ids) < 1000 {
		t.Errorf("only %d distinct customers in %d decides: the tail is missing", len(ids), decides)
	}
}

func TestCustomerIDs(t *testing.T) {
	for n, want := range map[int]string{1: "c-000001", 42: "c-000042", 999_999: "c-999999", 1_000_000: "c-1000000", 12_345_678: "c-12345678"} {
		if got := string(appendCustomerID(nil, n)); got != want {
			t.Errorf("appendCustomerID(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBodyDoesNotAllocate(t *testing.T) {
	tr := demoTraffic(t)
	tr.Events.Batch = 5
	src := NewGenerator(tr, 1_000_000, 1).NewSource()
	buf := make([]byte, 0, 4096)
	seq := uint64(0)
	events := 0
	// Real time, so the timestamp is formatted afresh as seconds pass.
	allocs := testing.AllocsPerRun(5000, func() {
		var kind RequestKind
		buf, kind, _ = src.Body(buf[:0], seq, time.Now())
		if kind == EventsRequest {
			events++
		}
		seq++
	})
	if allocs != 0 || events == 0 {
		t.Errorf("Body allocates %.1f times per request (%d event batches among them)", allocs, events)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		eventsAnswer([]byte(`{"accepted":5,"duplicates":0}`))
	}); allocs != 0 {
		t.Errorf("reading an events answer allocates %.1f times", allocs)
	}
}

// TestTrafficMatchesDemo checks every request the demo traffic file can
// produce against the demo's placements and context schema, read as plain
// YAML: unknown placements, counts above max_count, undeclared context
// fields and values outside a field's list would all be 400s.
func TestTrafficMatchesDemo(t *testing.T) {
	var pl struct {
		Placements []struct {
			ID       string `yaml:"id"`
			Count    int    `yaml:"count"`
			MaxCount int    `yaml:"max_count"`
		} `yaml:"placements"`
	}
	readYAML(t, "../configs/rules/placements.yaml", &pl)
	maxCount := map[string]int{}
	for _, p := range pl.Placements {
		m := max(p.MaxCount, p.Count, 1)
		maxCount[p.ID] = m
	}
	var schema struct {
		Context map[string]struct {
			Type     string   `yaml:"type"`
			Required bool     `yaml:"required"`
			Values   []string `yaml:"values"`
		} `yaml:"context"`
	}
	readYAML(t, "../configs/features.yaml", &schema)

	tr := demoTraffic(t)
	src := NewGenerator(tr, 1_000_000, 1).NewSource()
	seen := map[string]bool{}
	var buf []byte
	for i := range 20_000 {
		var vi int
		buf, vi = src.Decide(buf[:0], uint64(i))
		seen[tr.Views[vi].Name] = true
		var d decideBody
		if err := json.Unmarshal(buf, &d); err != nil {
			t.Fatal(err)
		}
		for _, raw := range d.Placements {
			var p struct {
				ID    string `json:"id"`
				Count int    `json:"count"`
			}
			if err := json.Unmarshal(raw, &p.ID); err != nil {
				if err := json.Unmarshal(raw, &p); err != nil {
					t.Fatalf("placement %s: %v", raw, err)
				}
			}
			m, ok := maxCount[p.ID]
			if !ok {
				t.Fatalf("view %s asks for unknown placement %q", tr.Views[vi].Name, p.ID)
			}
			if p.Count > m {
				t.Fatalf("view %s asks %s for %d, above max_count %d", tr.Views[vi].Name, p.ID, p.Count, m)
			}
		}
		for k, v := range d.Context {
			f, ok := schema.Context[k]
			if !ok {
				t.Fatalf("view %s sends undeclared context field %q", tr.Views[vi].Name, k)
			}
			s, isString := v.(string)
			if f.Type == "string" && !isString {
				t.Fatalf("view %s: context.%s = %v is not a string", tr.Views[vi].Name, k, v)
			}
			if len(f.Values) > 0 && !slices.Contains(f.Values, s) {
				t.Fatalf("view %s: context.%s = %q is not one of %v", tr.Views[vi].Name, k, s, f.Values)
			}
		}
		for k, f := range schema.Context {
			if _, ok := d.Context[k]; f.Required && !ok {
				t.Fatalf("view %s lacks required context field %q", tr.Views[vi].Name, k)
			}
		}
	}
	if len(seen) != len(tr.Views) {
		t.Errorf("only %d of %d views drawn", len(seen), len(tr.Views))
	}
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestTrafficErrors(t *testing.T) {
	const ok = "version: 1\nviews:\n  - name: a\n    weight: 1\n    placements: [home_hero]\n    context: {channel: web}\n"
	if tr, err := ParseTraffic("t.yaml", []byte(ok)); err != nil || tr.Path != "/v1/decide" || tr.ZipfS != defaultZipfS {
		t.Fatalf("minimal file: %+v, %v", tr, err)
	}
	if _, err := ParseTraffic("t.yaml", []byte(ok+"events: []\n")); err != nil {
		t.Errorf("an empty events list is the documented hook: %v", err)
	}
	for name, c := range map[string]struct{ file, want string }{
		"unknown key":  {ok + "viewz: []\n", "field viewz not found"},
		"version":      {strings.Replace(ok, "version: 1", "version: 2", 1), "version must be 1"},
		"no views":     {"version: 1\n", "at least one view is required"},
		"zero weight":  {strings.Replace(ok, "weight: 1", "weight: 0", 1), `t.yaml:3:5: view "a": weight must be a positive number`},
		"no placement": {strings.Replace(ok, "placements: [home_hero]", "placements: []", 1), "at least one placement is required"},
		"bad zipf":     {ok + "customers: {zipf_s: 1}\n", "customers.zipf_s must be in (1, 10]"},
		"anonymous":    {ok + "customers: {anonymous: 2}\n", "customers.anonymous must be a share"},
		"bad weight":   {strings.Replace(ok, "{channel: web}", "{channel: {web: lots}}", 1), `weight of "web" must be a positive number`},
		"null value":   {strings.Replace(ok, "{channel: web}", "{channel: null}", 1), "null is not a context value"},
		"placement":    {strings.Replace(ok, "[home_hero]", "[{id: home_hero, cnt: 2}]", 1), "field cnt not found"},
		"duplicate":    {ok + "  - name: a\n    weight: 1\n    placements: [x]\n", `view "a" is defined twice`},
		"empty":        {"", "empty traffic file"},
		"path":         {ok + "path: v1/decide\n", "path must start with /"},
		"alias":        {ok + "customers: {zipf_s: &z 1.5, zipf_v: *z}\n", "t.yaml:7:37: YAML alias *z is not allowed"},
	} {
		_, err := ParseTraffic("t.yaml", []byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

func TestTrafficValueTypes(t *testing.T) {
	tr, err := ParseTraffic("t.yaml", []byte(`version: 1
views:
  - name: a
    weight: 1
    placements: [{id: product_recs, count: 3}, home_hero]
    context: {channel: web, page: "/a \"b\"", n: 3, ok: true, device: [mobile]}
`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := NewGenerator(tr, 10, 1).NewSource().Decide(nil, 0)
	want := `,"placements":[{"id":"product_recs","count":3},"home_hero"],"context":{"channel":"web","page":"/a \"b\"","n":3,"ok":true,"device":"mobile"}}`
	if !strings.HasSuffix(string(body), want) {
		t.Errorf("body = %s\nwant suffix %s", body, want)
	}
}
