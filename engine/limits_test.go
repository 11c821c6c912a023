package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// The ruleset the limit tests decide with: a guarded suppress rule, rules
// that show what a cut list looks like, and the nested loops over a
// list feature at the depth that loads.
const limitsSchema = `customer:
  tags: {type: list}
  risk: {type: bool}
context:
  channel: {type: string, required: true, values: [web]}
  page:    {type: string}
  seen:    {type: list, max_items: 2}
`

const limitsRules = `placements:
  - id: hero
    count: 3
    fallback: generic
touchpoints:
  - {id: generic, kind: content}
  - {id: cut_tags, kind: offer}
  - {id: pairs, kind: offer}
  - {id: cut_seen, kind: offer}
rules:
  - id: hold_checkout
    when: context.page == "/checkout" && customer.risk
    suppress: ["*"]
  - id: cut_tags
    when: len(customer.tags) == 100 && none(customer.tags, {# == "t-399"})
    offer: [cut_tags]
  - id: pairs
    when: any(customer.tags, {all(customer.tags, {# != "t-399"})})
    offer: [pairs]
  - id: cut_seen
    when: len(context.seen) == 2
    offer: [cut_seen]
`

func limitsSource() mapSource {
	tags := make([]string, 400)
	for i := range tags {
		tags[i] = fmt.Sprintf("t-%03d", i)
	}
	return mapSource{
		"c-many": {ID: "c-many", Values: features.NewValues(map[string]features.Value{"tags": features.List(tags...), "risk": features.Bool(true)})},
	}
}

func writeLimits(t *testing.T, ruleFile string) (dir string, cfg Config) {
	t.Helper()
	dir = t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "features.yaml"), []byte(limitsSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules", "main.yaml"), []byte(ruleFile), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, Config{RulesDir: filepath.Join(dir, "rules"), SchemaPath: filepath.Join(dir, "features.yaml")}
}

func hero(page string, seen ...string) Request {
	ctx := []ContextField{{Name: "channel", Value: features.String("web")}, {Name: "page", Value: features.String(page)}}
	if seen != nil {
		ctx = append(ctx, ContextField{Name: "seen", Value: features.List(seen...)})
	}
	return Request{CustomerID: "c-many", Placements: []PlacementRequest{{ID: "hero"}}, Context: ctx}
}

// TestListsAreCutToMaxItems is the nested any/all over a
// 400-item list feature: the list is cut to max_items when a decision
// reads it, and counted each time, so the two-level rule walks at most
// 100×100 items; context lists are cut the same way. The rule nested three
// deep does not load, and a reload that tries keeps the old ruleset.
func TestListsAreCutToMaxItems(t *testing.T) {
	dir, cfg := writeLimits(t, limitsRules)
	e, err := New(cfg, limitsSource(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		d := decide(t, e, hero("/"))
		if got := strings.Join(chosen(d, "hero"), ","); got != "cut_tags,pairs" {
			t.Fatalf("decision %d: hero = %s, want cut_tags,pairs (the rules see the first 100 tags)", i, got)
		}
	}
	if n := e.Status().ListsTruncated; n != 3 {
		t.Errorf("ListsTruncated = %d after three decisions, want 3", n)
	}
	d := decide(t, e, hero("/", "a", "b", "c", "d", "e"))
	if got := strings.Join(chosen(d, "hero"), ","); got != "cut_seen,cut_tags,pairs" {
		t.Errorf("hero = %s, want cut_seen,cut_tags,pairs (context.seen cut to 2)", got)
	}
	if n := e.Status().ListsTruncated; n != 5 {
		t.Errorf("ListsTruncated = %d, want 5 (the customer's list and the context's)", n)
	}

	v1 := e.Status().Version
	cubic := strings.Replace(limitsRules, `{all(customer.tags, {# != "t-399"})}`, `{all(customer.tags, {any(customer.tags, {# == "t-399"})})}`, 1)
	if err := os.WriteFile(filepath.Join(dir, "rules", "main.yaml"), []byte(cubic), 0o644); err != nil {
		t.Fatal(err)
	}
	err = e.Reload()
	if err == nil || !strings.Contains(err.Error(), "main.yaml:18:51: rule pairs.when: loops over lists nest 3 deep here (any inside all inside any)") {
		t.Fatalf("reload error = %v", err)
	}
	if e.Status().Version != v1 {
		t.Errorf("the refused ruleset replaced the serving one")
	}
}

// TestDecideDeadline uses a 1 ns deadline, which has always passed by the
// first reading of the clock, before the first rule: whatever the machine,
// every rule that would run is skipped.
func TestDecideDeadline(t *testing.T) {
	_, cfg := writeLimits(t, limitsRules)
	cases := []struct {
		name     string
		deadline time.Duration
		page     string
		want     string // hero
		degraded bool
		outcomes string // explain: rule=outcome, in rule order
	}{
		{"no deadline", 0, "/", "cut_tags,pairs", false,
			"hold_checkout=condition_false cut_tags=matched pairs=matched cut_seen=condition_false"},
		{"offer rules skipped, fallback shown", time.Nanosecond, "/", "generic", true,
			"hold_checkout=condition_false cut_tags=skipped_deadline pairs=skipped_deadline cut_seen=skipped_deadline"},
		{"a skipped suppress rule fails closed", time.Nanosecond, "/checkout", "", true,
			"hold_checkout=skipped_deadline cut_tags=skipped_deadline pairs=skipped_deadline cut_seen=skipped_deadline"},
		{"a suppress rule that ran", 0, "/checkout", "", false,
			"hold_checkout=matched cut_tags=matched pairs=matched cut_seen=condition_false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg.DecideDeadline = tc.deadline
			e, err := New(cfg, limitsSource(), zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			for _, explain := range []bool{false, true} {
				req := hero(tc.page)
				req.Explain = explain
				d := decide(t, e, req)
				if got := strings.Join(chosen(d, "hero"), ","); got != tc.want {
					t.Errorf("explain %v: hero = %q, want %q", explain, got, tc.want)
				}
				wantReasons := DegradedReason(0)
				if tc.degraded {
					wantReasons = DegradedRuleDeadline
				}
				if d.Degraded != tc.degraded || d.DegradedReasons != wantReasons {
					t.Errorf("explain %v: degraded %v %v, want %v %v", explain, d.Degraded, d.DegradedReasons, tc.degraded, wantReasons)
				}
				if !explain {
					continue
				}
				var outcomes []string
				for _, r := range d.Explain.Rules {
					outcomes = append(outcomes, r.Rule+"="+r.Outcome)
				}
				if got := strings.Join(outcomes, " "); got != tc.outcomes {
					t.Errorf("explain outcomes\n got %s\nwant %s", got, tc.outcomes)
				}
			}
			want := uint64(0)
			if tc.degraded {
				want = 2
			}
			if n := e.Status().DeadlineExceeded; n != want {
				t.Errorf("DeadlineExceeded = %d, want %d", n, want)
			}
		})
	}
}

func TestDegradedReasons(t *testing.T) {
	var names []string
	all := DegradedFeatureStore | DegradedRuleDeadline
	for r, ok := all.Next(0); ok; r, ok = all.Next(r) {
		names = append(names, r.String())
	}
	if got := strings.Join(names, ","); got != "feature_store,rule_deadline" {
		t.Errorf("reasons = %s", got)
	}
	if _, ok := DegradedReason(0).Next(0); ok {
		t.Error("the empty set has a reason")
	}
	if r, ok := DegradedReason(1 << 7).Next(0); !ok || r != 1<<7 {
		t.Errorf("top bit: %v %v", r, ok)
	}
	if _, ok := DegradedReason(1 << 7).Next(1 << 7); ok {
		t.Error("Next past the top bit found a reason")
	}
	e := newTestEngine(t, "")
	d := decide(t, e, Request{CustomerID: "broken-store", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	if d.DegradedReasons != DegradedFeatureStore {
		t.Errorf("store failure gave reasons %v", d.DegradedReasons)
	}
}

// TestRangesAreBounded: a range escapes max_items, so what one rule
// evaluation may build on the VM is bounded too.
func TestRangesAreBounded(t *testing.T) {
	rules := limitsRules + "  - id: big_range\n    when: any(1..5000, {# < 0})\n    offer: [pairs]\n"
	_, cfg := writeLimits(t, rules)
	e, err := New(cfg, limitsSource(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	req := hero("/")
	req.Explain = true
	d := decide(t, e, req)
	for _, r := range d.Explain.Rules {
		if r.Rule == "big_range" && (r.Outcome != OutcomeExpressionError || !strings.Contains(r.Error, "memory budget exceeded")) {
			t.Errorf("big_range: %+v, want an expression error (memory budget exceeded)", r)
		}
	}
}

// aliasBomb nests levels of width aliases: a few hundred bytes that
// expand to width^(levels-1) strings.
func aliasBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString("touchpoints:\n  - id: bomb\n    kind: content\n    content:\n      l0: &l0 \"lol\"\n")
	for l := 1; l < levels; l++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", l-1), width), ",")
		fmt.Fprintf(&b, "      l%d: &l%d [%s]\n", l, l, refs)
	}
	return b.String()
}

func TestReloadRefusesAliasBomb(t *testing.T) {
	dir := copyTestdata(t)
	e := newTestEngine(t, dir)
	v1 := e.Status().Version
	if err := os.WriteFile(filepath.Join(dir, "rules", "bomb.yaml"), []byte(aliasBomb(7, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	err := e.Reload()
	if err == nil || !strings.Contains(err.Error(), "bomb.yaml:6:16: YAML alias *l0 is not allowed (and 59 more in this file)") {
		t.Fatalf("reload error = %v", err)
	}
	if st := e.Status(); st.Version != v1 || st.FailedLoads != 1 {
		t.Errorf("status after the refused reload = %+v", st)
	}
	d := decide(t, e, Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	if d.Ruleset != v1 || chosen(d, "cart_banner")[0] != "cart_coupon_10" {
		t.Errorf("after the refused reload: %+v", d)
	}
}

// TestCompilePanicsAreRecovered: whatever a rule file makes the compiler
// do, a panic must neither take the server down at start nor on reload.
func TestCompilePanicsAreRecovered(t *testing.T) {
	panicking := func(v any) func(string, string) (*rules.Ruleset, error) {
		return func(string, string) (*rules.Ruleset, error) { panic(v) }
	}
	var logs bytes.Buffer
	log := zerolog.New(&logs)

	_, err := New(Config{RulesDir: "testdata/rules", SchemaPath: "testdata/features.yaml"}, testSource(), log, withLoader(panicking("at start")))
	if err == nil || !strings.Contains(err.Error(), "compiling the rules panicked: at start") {
		t.Fatalf("New: err = %v", err)
	}

	load := rules.Load
	e, err := New(Config{RulesDir: "testdata/rules", SchemaPath: "testdata/features.yaml"}, testSource(), log,
		withLoader(func(dir, schema string) (*rules.Ruleset, error) { return load(dir, schema) }))
	if err != nil {
		t.Fatal(err)
	}
	v1 := e.Status().Version
	logs.Reset()
	// As parallel raises a worker's panic again: the stack logged must be
	// the worker's.
	load = panicking(&rules.WorkerPanic{Value: "in a worker", Stack: []byte("goroutine 7 [running]:\nrules.compileRules.func1()")})
	err = e.Reload()
	if err == nil || !strings.Contains(err.Error(), "compiling the rules panicked: in a worker") {
		t.Fatalf("Reload: err = %v", err)
	}
	if st := e.Status(); st.Version != v1 || st.FailedLoads != 1 || !strings.Contains(st.LastError, "panicked") {
		t.Errorf("status = %+v", st)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"stack":"goroutine 7 [running]:\nrules.compileRules.func1()"`) || !strings.Contains(lines[0], `"serving":"`+v1+`"`) {
		t.Errorf("log = %q, want one line with the worker's stack", lines)
	}
	d := decide(t, e, Request{CustomerID: "c-1", Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")})
	if d.Ruleset != v1 {
		t.Errorf("decided with %q after the failed reload", d.Ruleset)
	}
}
