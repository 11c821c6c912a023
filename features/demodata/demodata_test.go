package demodata

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	schemaPath    = "../../configs/features.yaml"
	demoPath      = "../../configs/demo/customers.jsonl"
	demoCustomers = 3000
	demoSeed      = 42
)

var update = flag.Bool("update", false, "rewrite configs/demo/customers.jsonl from the generator")

func generate(t testing.TB, n int, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Generate(&buf, n, seed); err != nil {
		t.Fatalf("Generate(%d, %d): %v", n, seed, err)
	}
	return buf.Bytes()
}

type record struct {
	ID       string         `json:"id"`
	Features map[string]any `json:"features"`
}

func parse(t *testing.T, data []byte) []record {
	t.Helper()
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %d is not a record: %v\n%s", line, err, sc.Bytes())
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a := generate(t, 2000, 7)
	b := generate(t, 2000, 7)
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed produced different output")
	}
	if c := generate(t, 2000, 8); bytes.Equal(a, c) {
		t.Fatal("different seeds produced identical output")
	}
	// A longer run starts with the shorter one.
	if long := generate(t, 2500, 7); !bytes.HasPrefix(long, a) {
		t.Fatal("the first 2000 customers changed when asking for 2500")
	}
}

func TestLinesAndIDs(t *testing.T) {
	data := generate(t, 1200, 1)
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Fatal("output does not end with a newline")
	}
	recs := parse(t, data)
	if len(recs) != 1200 {
		t.Fatalf("got %d records, want 1200", len(recs))
	}
	for i, r := range recs {
		if want := fmt.Sprintf("c-%06d", i+1); r.ID != want {
			t.Fatalf("record %d has id %q, want %q", i+1, r.ID, want)
		}
		if len(r.Features) == 0 {
			t.Fatalf("%s has no features", r.ID)
		}
	}
}

func TestIDFormat(t *testing.T) {
	var p profile
	pinned(func(*profile) {})(&p)
	for n, want := range map[int]string{1: "c-000001", 42: "c-000042", 999999: "c-999999", 1000000: "c-1000000", 12345678: "c-12345678"} {
		line := p.appendJSON(nil, n)
		if !bytes.HasPrefix(line, []byte(`{"id":"`+want+`",`)) {
			t.Errorf("customer %d: line starts %.24s, want id %s", n, line, want)
		}
	}
}

func TestEmptyAndInvalidCounts(t *testing.T) {
	if out := generate(t, 0, 1); len(out) != 0 {
		t.Fatalf("0 customers wrote %d bytes", len(out))
	}
	if err := Generate(io.Discard, -1, 1); err == nil {
		t.Fatal("a negative count was accepted")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsReturned(t *testing.T) {
	if err := Generate(failingWriter{}, 5000, 1); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want the writer's error", err)
	}
}

// schemaField is one entry of the feature schema, decoded strictly enough to
// notice a field the generator does not know how to check.
type schemaField struct {
	Type        string   `yaml:"type"`
	Default     any      `yaml:"default"`
	Values      []string `yaml:"values"`
	Description string   `yaml:"description"`
	Required    bool     `yaml:"required"`
}

func loadSchema(t *testing.T) map[string]schemaField {
	t.Helper()
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Customer map[string]schemaField `yaml:"customer"`
		Context  map[string]schemaField `yaml:"context"`
		// Counter features are computed from events at decision time;
		// the generator writes no values for them.
		Counters yaml.Node `yaml:"counters"`
		Events   yaml.Node `yaml:"events"`
		On       yaml.Node `yaml:"on"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	if len(doc.Customer) == 0 {
		t.Fatalf("%s declares no customer features", schemaPath)
	}
	return doc.Customer
}

func TestValuesRespectSchema(t *testing.T) {
	schema := loadSchema(t)
	recs := parse(t, generate(t, 5000, 3))
	seen := map[string]bool{}
	for _, r := range recs {
		for name, v := range r.Features {
			f, ok := schema[name]
			if !ok {
				t.Fatalf("%s: feature %q is not declared in the schema", r.ID, name)
			}
			seen[name] = true
			if err := checkValue(f, v); err != nil {
				t.Fatalf("%s: feature %s: %v", r.ID, name, err)
			}
		}
	}
	for name := range schema {
		if !seen[name] {
			t.Errorf("schema feature %q is never generated", name)
		}
	}
}

func checkValue(f schemaField, v any) error {
	switch f.Type {
	case "number":
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("want a number, got %T %v", v, v)
		}
	case "bool":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("want a bool, got %T %v", v, v)
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %T %v", v, v)
		}
		if len(f.Values) > 0 && !slices.Contains(f.Values, s) {
			return fmt.Errorf("%q is not one of %v", s, f.Values)
		}
	case "list":
		items, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list, got %T %v", v, v)
		}
		for _, it := range items {
			if _, ok := it.(string); !ok {
				return fmt.Errorf("list entry %v is a %T, want a string", it, it)
			}
		}
	default:
		return fmt.Errorf("schema type %q is unknown to this test", f.Type)
	}
	return nil
}

// TestDistributions checks the population has the shape the demo relies on.
// Bounds are loose: they catch a broken generator, not sampling noise.
func TestDistributions(t *testing.T) {
	recs := parse(t, generate(t, 20000, 11))
	n := float64(len(recs))
	var noConsent, risk, complaint, abandon, birthday float64
	sum := map[string]float64{}
	count := map[string]float64{}
	for _, r := range recs {
		f := r.Features
		if f["consent_marketing"] == false {
			noConsent++
		}
		if f["risk_flag"] == true {
			risk++
		}
		if f["open_complaint"] == true {
			complaint++
		}
		if f["cart_abandon_7d"].(float64) >= 1 {
			abandon++
		}
		if d := f["days_to_birthday"].(float64); d >= 0 && d <= 7 {
			birthday++
		}
		lc := "lifecycle=" + f["lifecycle"].(string)
		sum[lc] += f["churn_risk"].(float64)
		count[lc]++
		st := "stage=" + f["stage"].(string)
		sum[st] += f["ltv"].(float64)
		count[st]++
		tier := "tier=" + f["tier"].(string)
		sum[tier] += f["ltv"].(float64)
		count[tier]++
	}
	share := func(name string, got, lo, hi float64) {
		if got/n < lo || got/n > hi {
			t.Errorf("%s: %.2f%%, want %.0f%%..%.0f%%", name, 100*got/n, 100*lo, 100*hi)
		}
	}
	share("no marketing consent", noConsent, 0.12, 0.18)
	share("risk flag", risk, 0.005, 0.015)
	share("open complaint", complaint, 0.02, 0.04)
	share("cart abandoners", abandon, 0.08, 0.13)
	share("birthday within a week", birthday, 0.01, 0.04)

	mean := func(k string) float64 { return sum[k] / count[k] }
	if mean("lifecycle=lapsing") <= mean("lifecycle=active")+0.3 {
		t.Errorf("lapsing churn risk %.2f is not well above active %.2f", mean("lifecycle=lapsing"), mean("lifecycle=active"))
	}
	if mean("stage=loyalty") <= 3*mean("stage=use") {
		t.Errorf("loyalty-stage LTV %.0f is not well above use-stage %.0f", mean("stage=loyalty"), mean("stage=use"))
	}
	for _, pair := range [][2]string{{"tier=silver", "tier=gold"}, {"tier=gold", "tier=platinum"}} {
		if mean(pair[0]) >= mean(pair[1]) {
			t.Errorf("%s mean LTV %.0f is not below %s %.0f", pair[0], mean(pair[0]), pair[1], mean(pair[1]))
		}
	}
}

func TestShowcaseCustomers(t *testing.T) {
	recs := parse(t, generate(t, 2100, demoSeed))
	get := func(n int) map[string]any { return recs[n-1].Features }

	mei := get(42)
	if mei["first_name"] != "Mei" || mei["cart_abandon_7d"].(float64) < 1 || mei["coupon_propensity"].(float64) < 0.5 || mei["consent_marketing"] != true {
		t.Errorf("c-000042 is not Mei the cart abandoner: %v", mei)
	}
	if v := get(7); v["tier"] != "platinum" {
		t.Errorf("c-000007 is not a platinum VIP: %v", v)
	}
	if v := get(256); v["risk_flag"] != true {
		t.Errorf("c-000256 is not risk-flagged: %v", v)
	}
	if v := get(500); v["open_complaint"] != true {
		t.Errorf("c-000500 has no open complaint: %v", v)
	}
	// A pin replaces one customer and leaves the ones after it alone.
	saved := showcase
	showcase = nil
	defer func() { showcase = saved }()
	plain := parse(t, generate(t, 50, demoSeed))
	for _, n := range []int{8, 41, 43, 50} {
		if fmt.Sprint(plain[n-1]) != fmt.Sprint(recs[n-1]) {
			t.Errorf("customer %d changed because of the showcase pins", n)
		}
	}
	if fmt.Sprint(plain[41]) == fmt.Sprint(recs[41]) {
		t.Error("customer 42 is the same with and without its pin")
	}
}

// TestDemoFile keeps configs/demo/customers.jsonl in step with the
// generator. Run with -update to rewrite it after changing the generator.
func TestDemoFile(t *testing.T) {
	want := generate(t, demoCustomers, demoSeed)
	if *update {
		if err := os.WriteFile(demoPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(demoPath)
	if err != nil {
		t.Fatalf("%v (run go test ./features/demodata -run TestDemoFile -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what Generate(%d, seed %d) writes; run go test ./features/demodata -run TestDemoFile -update", demoPath, demoCustomers, demoSeed)
	}
}

func BenchmarkGenerate10k(b *testing.B) {
	var size int64
	{
		cw := &countingWriter{}
		if err := Generate(cw, 10000, 1); err != nil {
			b.Fatal(err)
		}
		size = cw.n
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := Generate(io.Discard, 10000, 1); err != nil {
			b.Fatal(err)
		}
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
