package workbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

const (
	rulesDir   = "../configs/rules"
	schemaPath = "../configs/features.yaml"
)

// demo is the demo ruleset served by a real engine over the demo
// customers, and a workbench over both.
func demo(t *testing.T, decisionLog string) (*Workbench, *engine.Engine) {
	t.Helper()
	store, err := features.OpenJSONL("../configs/demo/customers.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{RulesDir: rulesDir, SchemaPath: schemaPath}, store, zerolog.Nop(), engine.WithoutLearning())
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{RulesDir: rulesDir, SchemaPath: schemaPath, DecisionLog: decisionLog}, eng, store, zerolog.Nop()), eng
}

func cartYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rulesDir, "cart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lineOf is the 1-based line of the first occurrence of s in text.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	i := strings.Index(text, s)
	if i < 0 {
		t.Fatalf("%q is not in the file", s)
	}
	return strings.Count(text[:i], "\n") + 1
}

func TestSchemaDescribesFormsFields(t *testing.T) {
	w, eng := demo(t, "")
	s := w.Schema()
	if s.Ruleset != eng.Ruleset().Version {
		t.Errorf("ruleset %s, want %s", s.Ruleset, eng.Ruleset().Version)
	}
	field := func(list []Field, name string) Field {
		for _, f := range list {
			if f.Name == name {
				return f
			}
		}
		t.Fatalf("no field %s", name)
		return Field{}
	}
	if ch := field(s.Context, "channel"); !ch.Required || !slices.Contains(ch.Values, "web") {
		t.Errorf("context.channel = %+v, want required with values", ch)
	}
	if tier := field(s.Features, "tier"); tier.Type != "string" || len(tier.Values) == 0 {
		t.Errorf("tier = %+v", tier)
	}
	if c := field(s.Features, "coupon_dismissals_30d"); !c.Counter || c.Type != "number" {
		t.Errorf("a counter feature = %+v, want counter", c)
	}
	if len(s.Placements) != len(eng.Ruleset().Placements) || !slices.Equal(s.ConsentChannels, []string{"email", "sms"}) {
		t.Errorf("placements %d, consent channels %v", len(s.Placements), s.ConsentChannels)
	}
	for _, p := range s.Placements {
		if p.ID == "cart_banner" && (p.MaxCount != 2 || p.Fallback != "cart_free_returns_info") {
			t.Errorf("cart_banner = %+v", p)
		}
	}
}

// Each rule lists the fixtures written under it and those that matched
// it elsewhere, with the rule's outcome in each.
func TestRulesListFixtureCoverage(t *testing.T) {
	w, eng := demo(t, "")
	c := w.Rules()
	if c.Tests.Total == 0 || c.Tests.Failed != 0 || c.Tests.Passed != c.Tests.Total {
		t.Fatalf("tests = %+v", c.Tests)
	}
	if len(c.Rules) != len(eng.Ruleset().Rules) || len(c.Files) != len(eng.Ruleset().Files) {
		t.Fatalf("%d rules and %d files, want %d and %d", len(c.Rules), len(c.Files), len(eng.Ruleset().Rules), len(eng.Ruleset().Files))
	}
	var coupon *Rule
	for i := range c.Rules {
		if c.Rules[i].ID == "cart_abandon_coupon" {
			coupon = &c.Rules[i]
		}
	}
	if coupon == nil {
		t.Fatal("no cart_abandon_coupon")
	}
	cart := cartYAML(t)
	if coupon.File != "cart.yaml" || coupon.Line != lineOf(t, cart, "- id: cart_abandon_coupon") {
		t.Errorf("cart_abandon_coupon at %s:%d", coupon.File, coupon.Line)
	}
	if !slices.Equal(coupon.Placements, []string{"cart_banner"}) || !slices.Equal(coupon.Touchpoints, []string{"cart_coupon_10"}) {
		t.Errorf("offers %v in %v", coupon.Touchpoints, coupon.Placements)
	}
	own, elsewhere, declined := 0, 0, 0
	for _, f := range coupon.Fixtures {
		switch {
		case f.Owner == "cart_abandon_coupon":
			own++
			if f.Outcome == engine.OutcomeConditionFalse {
				declined++
			}
		case f.Outcome == engine.OutcomeMatched:
			elsewhere++
		default:
			t.Errorf("fixture %q of %s covers the coupon with outcome %s", f.Name, f.Owner, f.Outcome)
		}
	}
	if own == 0 || elsewhere == 0 || declined == 0 {
		t.Errorf("coupon fixtures: %d own (%d declining), %d elsewhere; want some of each", own, declined, elsewhere)
	}
	// Results are kept per ruleset version rather than run again.
	if a, b := w.fixtureResults(eng.Ruleset()), w.fixtureResults(eng.Ruleset()); &a[0] != &b[0] {
		t.Error("fixtures ran twice for one ruleset")
	}
}

func TestFileAnswersOnlyRuleFiles(t *testing.T) {
	w, _ := demo(t, "")
	got, err := w.File("cart.yaml")
	if err != nil || string(got) != cartYAML(t) {
		t.Fatalf("File(cart.yaml) = %d bytes, %v", len(got), err)
	}
	for _, p := range []string{"../features.yaml", "models/coupon_response.json", "/etc/passwd", "", "cart.yaml/"} {
		if _, err := w.File(p); !errors.Is(err, ErrNoSuchFile) {
			t.Errorf("File(%q) = %v, want ErrNoSuchFile", p, err)
		}
	}
}

func TestCheckReportsErrorsAtTheirLineAndRunsFixtures(t *testing.T) {
	w, eng := demo(t, "")
	cart := cartYAML(t)

	t.Run("unchanged", func(t *testing.T) {
		c, err := w.Check(Draft{"cart.yaml": []byte(cart)})
		if err != nil {
			t.Fatal(err)
		}
		if !c.OK || c.Version == nil || *c.Version != eng.Ruleset().Version || c.Tests.Failed != 0 {
			t.Errorf("unchanged draft: ok %v version %v tests %+v", c.OK, c.Version, c.Tests.TestCounts)
		}
	})
	t.Run("broken", func(t *testing.T) {
		broken := strings.Replace(cart, "customer.cart_value < 60", "customer.cart_valeu < 60", 1)
		c, err := w.Check(Draft{"cart.yaml": []byte(broken)})
		if err != nil {
			t.Fatal(err)
		}
		if c.OK || c.Version != nil || c.Tests != nil || len(c.Errors) != 1 {
			t.Fatalf("broken draft: %+v", c)
		}
		e := c.Errors[0]
		line := lineOf(t, broken, "customer.cart_valeu")
		if e.File != "cart.yaml" || e.Line != line || !strings.Contains(e.Message, "did you mean cart_value") ||
			!strings.Contains(e.Source, "cart_valeu") || e.Col < 1 {
			t.Errorf("error = %+v, want cart.yaml:%d", e, line)
		}
	})
	t.Run("failing fixtures", func(t *testing.T) {
		looser := strings.Replace(cart, "customer.cart_value < 60", "customer.cart_value < 100", 1)
		c, err := w.Check(Draft{"cart.yaml": []byte(looser)})
		if err != nil {
			t.Fatal(err)
		}
		if c.OK || c.Version == nil || c.Tests == nil || c.Tests.Failed == 0 || c.Tests.Failed+c.Tests.Passed != c.Tests.Total {
			t.Fatalf("looser draft: ok %v tests %+v", c.OK, c.Tests)
		}
		for _, r := range c.Tests.Results {
			if !r.Passed && (r.File == "" || r.Line == 0 || r.Problem == "") {
				t.Errorf("a failed test does not say where or why: %+v", r)
			}
		}
	})
	t.Run("invalid drafts", func(t *testing.T) {
		many := Draft{}
		for i := range MaxDraftFiles + 1 {
			many[fmt.Sprintf("f%d.yaml", i)] = nil
		}
		for name, d := range map[string]Draft{"empty": {}, "outside": {"../x.yaml": nil}, "too many": many} {
			if _, err := w.Check(d); err == nil {
				t.Errorf("%s draft accepted", name)
			}
		}
	})
	if eng.Ruleset().Version != w.live.Ruleset().Version {
		t.Error("checking drafts changed the live ruleset")
	}
}

// decideLog writes n decide requests, as the decision log's lines would
// carry them, for customers on /cart.
func decideLog(t *testing.T, ids []string) string {
	t.Helper()
	var b bytes.Buffer
	for _, id := range ids {
		fmt.Fprintf(&b, `{"decision_id":"d-%s","customer_id":%q,"known_customer":true,"context":{"channel":"web","page":"/cart"},"placements":[{"id":"cart_banner","candidates":[]}]}`+"\n", id, id)
	}
	p := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplayComparesTheDraftWithTheLiveRules(t *testing.T) {
	var ids []string
	for i := 1; i <= 300; i++ {
		ids = append(ids, fmt.Sprintf("c-%06d", i))
	}
	ids = append(ids, "c-000042")
	w, eng := demo(t, decideLog(t, ids))
	cart := cartYAML(t)
	// A coupon only for the surest redeemers: most who had it lose it.
	stricter := strings.Replace(cart, `model("coupon_response") >= 0.2`, `model("coupon_response") >= 0.99`, 1)
	if stricter == cart {
		t.Fatal("cart.yaml changed: the test cannot find the coupon rule's condition")
	}
	rep, err := w.Replay(context.Background(), Draft{"cart.yaml": []byte(stricter)}, DefaultReplay)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Base != eng.Ruleset().Version || rep.Draft == rep.Base || rep.Requests != len(ids) || rep.Replayed != len(ids) {
		t.Fatalf("replay: %+v", rep)
	}
	if len(rep.Placements) != 1 || rep.Placements[0].ID != "cart_banner" || rep.Placements[0].Lost == 0 || rep.Changed <= 0 {
		t.Fatalf("placements: %+v", rep.Placements)
	}
	lostCoupon := false
	for _, ex := range rep.Placements[0].Examples {
		lostCoupon = lostCoupon || ex.Kind == "lost" && len(ex.Base) == 1 && ex.Base[0].Touchpoint == "cart_coupon_10" && ex.CustomerID != ""
	}
	if !lostCoupon {
		t.Errorf("no example of a lost cart_coupon_10: %+v", rep.Placements[0].Examples)
	}
	lostRule := false
	for _, r := range rep.Rules {
		lostRule = lostRule || r.Rule == "cart_abandon_coupon" && r.Losses > 0
	}
	if !lostRule {
		t.Errorf("rules: %+v, want cart_abandon_coupon losing", rep.Rules)
	}

	t.Run("limit keeps the latest", func(t *testing.T) {
		rep, err := w.Replay(context.Background(), Draft{"cart.yaml": []byte(stricter)}, 10)
		if err != nil || rep.Requests != 10 {
			t.Fatalf("limit 10: %v, %+v", err, rep)
		}
	})
	t.Run("a broken draft is not replayed", func(t *testing.T) {
		_, err := w.Replay(context.Background(), Draft{"cart.yaml": []byte("rules: [")}, 10)
		var de *DraftError
		if !errors.As(err, &de) || len(de.Problems) == 0 || de.Problems[0].File != "cart.yaml" {
			t.Fatalf("broken draft: %v", err)
		}
	})
	t.Run("no decision log", func(t *testing.T) {
		w, _ := demo(t, "")
		if _, err := w.Replay(context.Background(), Draft{"cart.yaml": []byte(cart)}, 10); !errors.Is(err, ErrNoTraffic) {
			t.Fatalf("without a log: %v", err)
		}
	})
	t.Run("no traffic yet", func(t *testing.T) {
		w, _ := demo(t, filepath.Join(t.TempDir(), "not-yet.jsonl"))
		rep, err := w.Replay(context.Background(), Draft{"cart.yaml": []byte(cart)}, 10)
		if err != nil || rep.Requests != 0 || rep.Note == "" {
			t.Fatalf("empty log: %v %+v", err, rep)
		}
	})
}

func TestTailKeepsWholeLatestLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	write := func(s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, file string
		limit      int
		want       string
	}{
		{"all", "a\nb\nc\n", 10, "a\nb\nc\n"},
		{"last two", "a\nb\nc\n", 2, "b\nc\n"},
		{"a line being written", "a\nb\nc", 10, "a\nb\n"},
		{"nothing whole", "abc", 10, ""},
		{"empty", "", 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(tc.file)
			got, err := tail(p, tc.limit)
			if err != nil || string(got) != tc.want {
				t.Errorf("tail = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if got, err := tail(filepath.Join(t.TempDir(), "missing"), 5); err != nil || got != nil {
		t.Errorf("missing file: %q, %v", got, err)
	}
}

func TestCustomerAsDecisionsSeeIt(t *testing.T) {
	w, _ := demo(t, "")
	c, err := w.Customer(context.Background(), "c-000042")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Known || c.Features["first_name"] != "Mei" || c.Features["cart_value"] != 89.9 {
		t.Errorf("c-000042 = %+v", c)
	}
	nobody, err := w.Customer(context.Background(), "nobody")
	if err != nil || nobody.Known || len(nobody.Features) != 0 || nobody.Consent == nil || nobody.Counters == nil {
		t.Errorf("unknown customer = %+v, %v", nobody, err)
	}
}
