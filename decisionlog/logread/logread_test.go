package logread

import (
	"strings"
	"testing"
)

func TestReadDecisionsAndEvents(t *testing.T) {
	var got []string
	err := ReadDecisions(strings.NewReader(`{"decision_id":"d1","customer_id":"c","placements":[{"id":"p","candidates":[{"touchpoint":"t","chosen":true,"propensity":1,"experiment":"x","variant":"a"}]}]}`+"\n\n"),
		func(_ int, d *Decision) error {
			tp, p := d.Placements[0].Shown()
			c := d.Placements[0].Candidates[0]
			got = append(got, d.DecisionID, tp, c.Experiment, c.Variant)
			if p != 1 {
				t.Errorf("propensity %v", p)
			}
			return nil
		})
	if err != nil || strings.Join(got, " ") != "d1 t x a" {
		t.Fatalf("got %v, %v", got, err)
	}
	if err := ReadDecisions(strings.NewReader("{\"decision_id\":\"d\"}\nnot json\n"), func(int, *Decision) error { return nil }); err == nil || !strings.HasPrefix(err.Error(), "line 2:") {
		t.Errorf("a line that is not JSON: %v", err)
	}
	if err := ReadDecisions(strings.NewReader(`{"customer_id":"c"}`), func(int, *Decision) error { return nil }); err == nil || !strings.Contains(err.Error(), "no decision_id") {
		t.Errorf("a line without a decision id: %v", err)
	}
	var values []float64
	if err := ReadEvents(strings.NewReader(`{"decision_id":"d1","touchpoint":"t","type":"conversion","value":12.5}`), func(_ int, ev *Event) error {
		values = append(values, ev.Value)
		return nil
	}); err != nil || len(values) != 1 || values[0] != 12.5 {
		t.Errorf("events: %v %v", values, err)
	}
}
