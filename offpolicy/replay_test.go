package offpolicy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/decisionlog/logread"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

type noCustomers struct{}

func (noCustomers) Lookup(context.Context, string) (*features.Record, error) { return nil, nil }
func (noCustomers) Ping(context.Context) error                               { return nil }

// candidateEngine serves a ruleset that always shows touchpoint best in
// placement banner.
func candidateEngine(t *testing.T, best string) *engine.Engine {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("features.yaml", "customer:\n  ltv: {type: number}\ncontext:\n  channel: {type: string, required: true}\n")
	write("rules/r.yaml", "placements:\n  - id: banner\ntouchpoints:\n  - id: a\n    kind: offer\n  - id: b\n    kind: offer\n  - id: c\n    kind: offer\n"+
		"rules:\n  - id: show_"+best+"\n    when: context.channel == \"web\"\n    offer: ["+best+"]\n")
	e, err := engine.New(engine.Config{RulesDir: filepath.Join(dir, "rules"), SchemaPath: filepath.Join(dir, "features.yaml")}, noCustomers{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A log from a policy that picked a, b or c at random, with clicks at
// known rates: the evaluation of a ruleset that always shows c estimates
// c's rate within its interval, says how many decisions change, and the
// logged reward is the average of the three.
func TestEvaluateAgainstKnownRates(t *testing.T) {
	rates := map[string]float64{"a": 0.02, "b": 0.05, "c": 0.12}
	names := []string{"a", "b", "c"}
	rng := rand.New(rand.NewPCG(9, 9))
	var log, events strings.Builder
	const n = 30000
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("d%05d", i)
		shown := names[rng.IntN(3)]
		fmt.Fprintf(&log, `{"decision_id":%q,"customer_id":"c-%d","ruleset":"old","context":{"channel":"web","page":"/"},"placements":[{"id":"banner","candidates":[`, id, i)
		for k, tp := range names {
			if k > 0 {
				log.WriteString(",")
			}
			if tp == shown {
				fmt.Fprintf(&log, `{"touchpoint":%q,"rule":"random","reason":"chosen","chosen":true,"propensity":0.3333333333333333}`, tp)
			} else {
				fmt.Fprintf(&log, `{"touchpoint":%q,"rule":"random","reason":"lost_arbitration","chosen":false}`, tp)
			}
		}
		log.WriteString("]}]}\n")
		fmt.Fprintf(&events, `{"event_id":"i%d","decision_id":%q,"customer_id":"c-%d","touchpoint":%q,"type":"impression"}`+"\n", i, id, i, shown)
		if rng.Float64() < rates[shown] {
			fmt.Fprintf(&events, `{"event_id":"k%d","decision_id":%q,"customer_id":"c-%d","touchpoint":%q,"type":"click"}`+"\n", i, id, i, shown)
		}
	}
	events.WriteString(`{"event_id":"x","customer_id":"c-1","touchpoint":"a","type":"click"}` + "\n")
	rewards, unattributed, err := Rewards(strings.NewReader(events.String()), "click")
	if err != nil || unattributed != 1 {
		t.Fatalf("rewards: %v, %d unattributed", err, unattributed)
	}
	rep, err := Evaluate(context.Background(), candidateEngine(t, "c"), strings.NewReader(log.String()), rewards)
	if err != nil {
		t.Fatal(err)
	}
	// The logged context has a field the candidate schema lacks (page).
	if rep.Decisions != n || rep.Replayed != n || rep.DroppedContext != n || len(rep.Placements) != 1 {
		t.Fatalf("report %+v", rep)
	}
	p := rep.Placements[0]
	for name, iv := range map[string]Interval{"IPS": p.IPS, "SNIPS": p.SNIPS} {
		if !(iv.Lo <= rates["c"] && rates["c"] <= iv.Hi) {
			t.Errorf("%s = %+v, want an interval holding %v", name, iv, rates["c"])
		}
	}
	if want := (0.02 + 0.05 + 0.12) / 3; !(p.Logged.Lo <= want && want <= p.Logged.Hi) {
		t.Errorf("logged %+v, want around %v", p.Logged, want)
	}
	if p.Changed != n-p.Matched || p.ByRule["show_c"] != p.Changed {
		t.Errorf("changed %d (by rule %v), matched %d of %d", p.Changed, p.ByRule, p.Matched, n)
	}
	worse, err := Evaluate(context.Background(), candidateEngine(t, "a"), strings.NewReader(log.String()), rewards)
	if err != nil {
		t.Fatal(err)
	}
	if !(worse.Overall.IPS.Hi < rep.Overall.IPS.Lo) {
		t.Errorf("always-a %+v should estimate clearly below always-c %+v", worse.Overall.IPS, rep.Overall.IPS)
	}
}

func TestReadDecisionsRefusesOtherLines(t *testing.T) {
	err := logread.ReadDecisions(strings.NewReader("{\"decision_id\":\"d\"}\nnot json\n"), func(int, *logread.Decision) error { return nil })
	if err == nil || !strings.HasPrefix(err.Error(), "line 2:") {
		t.Errorf("got %v", err)
	}
	_, err = Evaluate(context.Background(), candidateEngine(t, "a"), strings.NewReader(`{"decision_id":"d","customer_id":"c","context":{"channel":3},"placements":[{"id":"banner","candidates":[]}]}`), nil)
	if err == nil || !strings.Contains(err.Error(), "context.channel is not a string") {
		t.Errorf("got %v", err)
	}
}
