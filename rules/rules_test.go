package rules

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestLoadGoodRuleset(t *testing.T) {
	rs, err := Load("testdata/good/rules", "testdata/good/features.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(rs.Rules) != 4 || len(rs.Touchpoints) != 4 || len(rs.Placements) != 2 {
		t.Fatalf("got %d rules, %d touchpoints, %d placements", len(rs.Rules), len(rs.Touchpoints), len(rs.Placements))
	}
	if len(rs.Version) != 12 {
		t.Errorf("version %q is not 12 hex digits", rs.Version)
	}
	again, err := Load("testdata/good/rules", "testdata/good/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != rs.Version {
		t.Errorf("same files gave versions %s and %s", rs.Version, again.Version)
	}
	cart := rs.Placements[rs.Placement("cart_banner")]
	if cart.Count != 1 || cart.MaxCount != 2 || rs.Touchpoints[cart.Fallback].ID != "free_shipping" {
		t.Errorf("cart_banner = %+v", cart)
	}
	if hero := rs.Placements[rs.Placement("home_hero")]; hero.MaxCount != 1 || hero.Fallback != -1 {
		t.Errorf("home_hero defaults = %+v", hero)
	}
	risk := rs.Rules[3]
	if !risk.IsSuppress() || !risk.SuppressAll {
		t.Errorf("suppress * resolved to %+v", risk)
	}
	var warnings []string
	for _, w := range rs.Warnings {
		warnings = append(warnings, w.Error())
	}
	if len(rs.Warnings) != 0 {
		t.Errorf("unexpected warnings: %v", warnings)
	}
}

func TestVersionChangesWithContent(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, "testdata/good/features.yaml", filepath.Join(dir, "features.yaml"))
	os.Mkdir(filepath.Join(dir, "rules"), 0o755)
	copyFile(t, "testdata/good/rules/main.yaml", filepath.Join(dir, "rules", "main.yaml"))
	a, err := Load(filepath.Join(dir, "rules"), filepath.Join(dir, "features.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(dir, "rules", "main.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("# a comment changes the version too\n")
	f.Close()
	b, err := Load(filepath.Join(dir, "rules"), filepath.Join(dir, "features.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Version == b.Version {
		t.Errorf("version did not change after editing a file")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrokenRulesetGolden pins the messages marketers read: every problem
// in the broken files, with file:line:col and a caret.
func TestBrokenRulesetGolden(t *testing.T) {
	_, err := Load("testdata/broken/rules", "testdata/broken/features.yaml")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Load error is %T (%v), want ErrorList", err, err)
	}
	got := list.Error() + "\n"
	golden := "testdata/broken.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./rules -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("errors differ from %s (run with -update after checking):\n%s", golden, got)
	}
}

func TestExpressionErrorsPointIntoTheFile(t *testing.T) {
	schema, err := ParseSchema("features.yaml", []byte("customer:\n  ltv: {type: number}\ncontext:\n  page: {type: string}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file string
		wantPos    string
		wantMsg    string
	}{
		{"plain", "rules:\n  - id: r\n    when: customer.ltvv > 1\n    offer: [t]\n", "r.yaml:3:20:", "unknown feature customer.ltvv (did you mean ltv?)"},
		{"double quoted", "rules:\n  - id: r\n    when: \"context.pag == 'x'\"\n    offer: [t]\n", "r.yaml:3:20:", "unknown context field context.pag (did you mean page?)"},
		{"literal block", "rules:\n  - id: r\n    when: |\n      context.page == \"/\" &&\n        customer.ltv > \"x\"\n    offer: [t]\n", "r.yaml:5:22:", "mismatched types number and string"},
		{"folded block", "rules:\n  - id: r\n    when: >\n      context.page == \"/\" &&\n      customer.lt > 1\n    offer: [t]\n", "r.yaml:5:16:", "unknown feature customer.lt (did you mean ltv?)"},
		{"unknown name", "rules:\n  - id: r\n    when: custmer.ltv > 1\n    offer: [t]\n", "r.yaml:3:11:", "unknown name custmer (did you mean customer?)"},
		{"not bool", "rules:\n  - id: r\n    when: customer.ltv\n    offer: [t]\n", "r.yaml:3:11:", "expected bool"},
		{"unknown segment", "segments:\n  hv: customer.ltv > 1\nrules:\n  - id: r\n    when: segment(\"hvv\")\n    offer: [t]\n", "r.yaml:5:11:", `unknown segment "hvv" (did you mean hv?)`},
		{"segment cycle", "segments:\n  a: segment(\"b\")\n  b: segment(\"a\")\nrules:\n  - id: r\n    when: segment(\"a\")\n    offer: [t]\n", "r.yaml:2:6:", "refers to itself"},
	}
	tp := "touchpoints:\n  - id: t\n    kind: offer\n"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(schema, []string{"r.yaml", "t.yaml"}, map[string][]byte{"r.yaml": []byte(tc.file), "t.yaml": []byte(tp)})
			if err == nil {
				t.Fatal("no error")
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			if !strings.HasPrefix(first, tc.wantPos) || !strings.Contains(first, tc.wantMsg) {
				t.Errorf("got %q, want prefix %q containing %q", first, tc.wantPos, tc.wantMsg)
			}
		})
	}
}

func TestSegmentsInline(t *testing.T) {
	schema, _ := ParseSchema("f.yaml", []byte("customer:\n  ltv: {type: number}\n"))
	file := "segments:\n  big: customer.ltv > 100\n  huge: segment(\"big\") && customer.ltv > 1000\ntouchpoints:\n  - id: t\n    kind: offer\nrules:\n  - id: r\n    when: segment(\"huge\")\n    offer: [t]\n"
	rs, err := Compile(schema, []string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(file)})
	if err != nil {
		t.Fatal(err)
	}
	for ltv, want := range map[float64]bool{50: false, 500: false, 5000: true} {
		env := rs.NewEnv()
		env.SetCustomer(0, numberValue(ltv))
		out, err := runProgram(rs.Rules[0].When, env)
		if err != nil || out != want {
			t.Errorf("ltv %v: got %v, %v; want %v", ltv, out, err, want)
		}
	}
}

func TestScheduleActive(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	s := &Schedule{
		From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC),
		Days: 1<<time.Monday | 1<<time.Friday, HoursFrom: 9 * 60, HoursTo: 21 * 60, Location: shanghai,
	}
	cases := []struct {
		at   string
		want bool
	}{
		{"2026-11-09T02:00:00Z", true},  // Monday 10:00 in Shanghai
		{"2026-11-09T00:30:00Z", false}, // Monday 08:30 in Shanghai
		{"2026-11-09T13:00:00Z", false}, // Monday 21:00 in Shanghai: the end is exclusive
		{"2026-11-10T02:00:00Z", false}, // Tuesday
		{"2026-10-30T02:00:00Z", false}, // before from
		{"2027-01-04T02:00:00Z", false}, // after until
	}
	for _, tc := range cases {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := s.Active(at); got != tc.want {
			t.Errorf("Active(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
	night := &Schedule{HoursFrom: 22 * 60, HoursTo: 6 * 60, Location: time.UTC}
	for at, want := range map[string]bool{"2026-11-09T23:00:00Z": true, "2026-11-09T05:59:00Z": true, "2026-11-09T12:00:00Z": false} {
		tm, _ := time.Parse(time.RFC3339, at)
		if got := night.Active(tm); got != want {
			t.Errorf("overnight window at %s = %v, want %v", at, got, want)
		}
	}
}

func TestGuardsAreNecessaryConditions(t *testing.T) {
	schema, err := ParseSchema("f.yaml", []byte("customer:\n  ltv: {type: number}\n  tier: {type: string}\ncontext:\n  page: {type: string}\n  channel: {type: string}\n  visits: {type: number}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		when string
		want string
	}{
		{`context.page == "/cart" && customer.ltv > 1`, "context.page=[/cart]"},
		{`"/cart" == context.page`, "context.page=[/cart]"},
		{`context.channel in ["web", "app"] and context.page == "/"`, "context.channel=[app web] context.page=[/]"},
		{`customer.tier == "gold" && customer.ltv > 1`, "customer.tier=[gold]"},
		{`context.page == "/cart" || customer.ltv > 1`, ""},
		{`context.page != "/cart"`, ""},
		{`context.visits == 3`, ""},
		{`!(context.page == "/cart")`, ""},
	}
	for _, tc := range cases {
		file := "touchpoints:\n  - id: t\n    kind: offer\nrules:\n  - id: r\n    when: '" + strings.ReplaceAll(tc.when, "'", "''") + "'\n    offer: [t]\n"
		rs, err := Compile(schema, []string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(file)})
		if err != nil {
			t.Fatalf("%s: %v", tc.when, err)
		}
		var parts []string
		for _, g := range rs.Rules[0].Guards {
			name := "context." + schema.Context[g.Field].Name
			if g.Customer {
				name = "customer." + schema.Customer[g.Field].Name
			}
			parts = append(parts, name+"="+fmt.Sprint(g.Values))
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("guards of %s = %q, want %q", tc.when, got, tc.want)
		}
	}
}

func TestSegmentExpansionIsBounded(t *testing.T) {
	schema, _ := ParseSchema("f.yaml", []byte("customer:\n  ltv: {type: number}\n"))
	file := "segments:\n  s0: customer.ltv > 1\n"
	for i := 1; i < 22; i++ {
		file += fmt.Sprintf("  s%d: segment(\"s%d\") && segment(\"s%d\")\n", i, i-1, i-1)
	}
	_, err := Compile(schema, []string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(file)})
	if err == nil || !strings.Contains(err.Error(), "expands to more than 5000 expression nodes") {
		t.Fatalf("err = %v", err)
	}
}

func TestSchemaMaxStaleness(t *testing.T) {
	s, err := ParseSchema("f.yaml", []byte("customer:\n  a: {type: number, max_staleness: 5m}\n  b: {type: bool, max_staleness: 30s}\n  c: {type: string}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.MaxStaleness(); got != 30*time.Second {
		t.Errorf("MaxStaleness = %v, want 30s", got)
	}
	_, err = ParseSchema("f.yaml", []byte("customer:\n  a: {type: number, max_staleness: soon}\n"))
	if err == nil || !strings.Contains(err.Error(), "f.yaml:2:36: customer.a.max_staleness must be a positive duration") {
		t.Errorf("err = %v", err)
	}
}

func TestCounterFeatures(t *testing.T) {
	s, err := ParseSchema("f.yaml", []byte(`customer:
  ltv: {type: number}
counters:
  coupon_dismissals_30d: {event: dismiss, kind: coupon, days: 30}
  days_since_last_click: {event: click, last_seen: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Counters) != 2 || s.CustomerField("coupon_dismissals_30d") < 0 {
		t.Fatalf("counters = %v", s.Counters)
	}
	today := int32(20000)
	counters := []features.Counter{
		{Event: "dismiss", Subject: "kind:coupon", Day: today, Count: 1},
		{Event: "dismiss", Subject: "kind:coupon", Day: today - 29, Count: 2},
		{Event: "dismiss", Subject: "kind:coupon", Day: today - 30, Count: 5},
		{Event: "dismiss", Subject: "kind:offer", Day: today, Count: 7},
		{Event: "click", Subject: "all", Day: today - 4, Count: 1},
		{Event: "click", Subject: "all", Day: today - 9, Count: 1},
	}
	dismissals := s.Customer[s.CustomerField("coupon_dismissals_30d")].Counter
	lastClick := s.Customer[s.CustomerField("days_since_last_click")].Counter
	if got := dismissals.Value(counters, today); got != 3 {
		t.Errorf("coupon dismissals in 30 days = %v, want 3", got)
	}
	if got := lastClick.Value(counters, today); got != 4 {
		t.Errorf("days since last click = %v, want 4", got)
	}
	if got := lastClick.Value(nil, today); got != -1 {
		t.Errorf("days since last click, never clicked = %v, want -1", got)
	}
	for _, bad := range []string{
		"counters:\n  x: {event: view, days: 7}\n",
		"counters:\n  x: {event: click}\n",
		"counters:\n  x: {event: click, days: 7, kind: coupon, touchpoint: t}\n",
		"customer:\n  x: {type: number}\ncounters:\n  x: {event: click, days: 7}\n",
	} {
		if _, err := ParseSchema("f.yaml", []byte(bad)); err == nil {
			t.Errorf("schema %q loaded without error", bad)
		}
	}
}

func TestConsentFromRecordThenFeature(t *testing.T) {
	schema, err := ParseSchema("f.yaml", []byte("customer:\n  consent_email: {type: bool}\ncontext:\n  channel: {type: string, values: [web, email, sms]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	file := "policy:\n  consent: {kinds: [coupon], channels: [email, sms], features: {email: consent_email}}\ntouchpoints:\n  - id: t\n    kind: coupon\n"
	rs, err := Compile(schema, []string{"p.yaml"}, map[string][]byte{"p.yaml": []byte(file)})
	if err != nil {
		t.Fatal(err)
	}
	c := rs.Policy.Consent
	env := rs.NewEnv()
	env.SetCustomer(0, features.Bool(true))
	cases := []struct {
		name     string
		recorded map[string]features.Consent
		channel  string
		want     bool
	}{
		{"feature says yes", nil, "email", true},
		{"recorded refusal wins over the feature", map[string]features.Consent{"email": {Granted: false}}, "email", false},
		{"no feature and nothing recorded", nil, "sms", false},
		{"recorded consent", map[string]features.Consent{"sms": {Granted: true}}, "sms", true},
	}
	for _, tc := range cases {
		if got := c.Granted(tc.recorded, env, tc.channel); got != tc.want {
			t.Errorf("%s: Granted = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !c.Requires("coupon", "email") || c.Requires("coupon", "web") || c.Requires("offer", "email") {
		t.Error("Requires does not follow kinds and channels")
	}
}
