package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

func demoEngine(t *testing.T, dir string, store features.Store) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Config{RulesDir: dir, SchemaPath: "../configs/features.yaml"}, store, zerolog.Nop(), engine.WithoutLearning())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// draftDir copies the demo rules and applies edit to one file.
func draftDir(t *testing.T, file, from, to string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../configs/rules")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), from, to, 1)
	if edited == string(b) {
		t.Fatalf("%q is not in %s; update this test", from, file)
	}
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A draft that raises the 10% coupon's threshold: every cart decision
// that showed that coupon loses it to the fallback, nothing else changes,
// and the losses are the coupon rule's.
func TestReplayFindsWhatADraftChanges(t *testing.T) {
	store, err := features.OpenJSONL("../configs/demo/customers.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	base := demoEngine(t, "../configs/rules", store)
	draft := demoEngine(t, draftDir(t, "cart.yaml", `model("coupon_response") >= 0.2`, `model("coupon_response") >= 2`), store)

	var in strings.Builder
	coupons := 0
	ctx := context.Background()
	for i := 1; i <= 400; i++ {
		id := fmt.Sprintf("c-%06d", i)
		if i%2 == 0 {
			// Half as decision log lines, half as decide requests.
			fmt.Fprintf(&in, `{"decision_id":"d-%d","customer_id":%q,"context":{"channel":"web","page":"/cart","not_in_schema":1},"placements":[{"id":"cart_banner","candidates":[]},{"id":"product_recs","count":2,"candidates":[]}]}`+"\n", i, id)
		} else {
			fmt.Fprintf(&in, `{"customer_id":%q,"context":{"channel":"web","page":"/cart"},"placements":["cart_banner",{"id":"product_recs","count":2}]}`+"\n", id)
		}
		req := engine.Request{CustomerID: id, Placements: []engine.PlacementRequest{{ID: "cart_banner"}}, Context: []engine.ContextField{
			{Name: "channel", Value: features.String("web")}, {Name: "page", Value: features.String("/cart")}}}
		var d engine.Decision
		if err := base.Decide(ctx, &req, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Placements[0].Items) > 0 && d.Placements[0].Items[0].Touchpoint == "cart_coupon_10" {
			coupons++
		}
	}
	in.WriteString(`{"customer_id":"c-000001","customer_hash":"","placements":["no_such_placement"]}` + "\n")
	rep, err := Run(ctx, base, draft, strings.NewReader(in.String()), Options{Examples: 2})
	if err != nil {
		t.Fatal(err)
	}
	if coupons == 0 {
		t.Fatal("no demo customer got the 10% coupon; the test proves nothing")
	}
	if rep.Requests != 401 || rep.Replayed != 400 || rep.Failed != 1 || !strings.Contains(rep.FailedExample, "line 401: the base refused it") || rep.DroppedContext != 200 {
		t.Errorf("report header: %+v", rep)
	}
	if len(rep.Placements) != 2 {
		t.Fatalf("placements: %+v", rep.Placements)
	}
	cart, recs := rep.Placements[0], rep.Placements[1]
	// A customer who loses the coupon sees the fallback (lost) or what
	// another rule offers in its place (swapped).
	if cart.ID != "cart_banner" || cart.Decisions != 400 || cart.Lost+cart.Swapped != coupons || cart.Lost == 0 || cart.Gained != 0 || cart.Unchanged != 400-coupons {
		t.Errorf("cart_banner: %+v, want %d lost or swapped", cart, coupons)
	}
	if recs.ID != "product_recs" || recs.Changed() != 0 {
		t.Errorf("product_recs: %+v", recs)
	}
	gains := 0
	for _, r := range rep.Rules {
		gains += r.Gains
		if r.Rule == "cart_abandon_coupon" && (r.Losses != coupons || r.Gains != 0) || r.Rule != "cart_abandon_coupon" && r.Losses != 0 {
			t.Errorf("rule %+v", r)
		}
	}
	if rep.Rules[0].Rule != "cart_abandon_coupon" || gains != cart.Swapped {
		t.Errorf("rules: %+v; the %d swaps should each show another rule's offer", rep.Rules, cart.Swapped)
	}
	if len(cart.Examples) > 4 || countKind(cart.Examples, Lost) != min(2, cart.Lost) {
		t.Fatalf("examples, at most 2 per kind: %+v", cart.Examples)
	}
	for _, ex := range cart.Examples {
		if ex.Base[0].Touchpoint != "cart_coupon_10" || ex.CustomerID == "" || ex.Kind == Lost && !ex.Draft[0].Fallback {
			t.Errorf("example: %+v", ex)
		}
	}
	if got, want := rep.Changed(), float64(coupons)/800; got != want {
		t.Errorf("changed share %v, want about %v", got, want)
	}
}

func TestCompare(t *testing.T) {
	s := func(list ...string) []Shown {
		var out []Shown
		for _, tp := range list {
			out = append(out, Shown{Touchpoint: strings.TrimPrefix(tp, "fb:"), Fallback: strings.HasPrefix(tp, "fb:")})
		}
		return out
	}
	for _, c := range []struct {
		base, draft []Shown
		want        string
	}{
		{s("a"), s("a"), Unchanged},
		{s("fb:f"), s("a"), Gained},
		{s("a"), s("a", "b"), Gained},
		{s("a", "b"), s("a"), Lost},
		{s("a"), s("fb:f"), Lost},
		{s("a"), s("b"), Swapped},
		{s("a", "b"), s("b", "a"), Swapped},
		{nil, nil, Unchanged},
	} {
		if got := compare(c.base, c.draft); got != c.want {
			t.Errorf("%v → %v: %s, want %s", c.base, c.draft, got, c.want)
		}
	}
}
