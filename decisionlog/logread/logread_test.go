package logread

import (
	"fmt"
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

// Replays read decision log lines and decide request bodies alike.
func TestReadRequests(t *testing.T) {
	in := `{"decision_id":"d-1","customer_id":"c-1","context":{"page":"/cart"},"placements":[{"id":"cart_banner","count":2,"candidates":[]}]}

{"customer_id":"c-2","placements":["hero",{"id":"recs","count":3}],"context":{"channel":"web"}}
`
	var got []string
	err := ReadRequests(strings.NewReader(in), func(line int, d *Decision) error {
		got = append(got, fmt.Sprintf("%d %s %v %s", line, d.CustomerID, d.Placements, d.Context))
		return nil
	})
	want := []string{`1 c-1 [{cart_banner 2   []}] map[page:"/cart"]`, `3 c-2 [{hero 0   []} {recs 3   []}] map[channel:"web"]`}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{`{"placements":["hero"]}`, `{"customer_id":"c"}`, `[1]`, `{"customer_id":"c","placements":[7]}`} {
		if err := ReadRequests(strings.NewReader(bad), func(int, *Decision) error { return nil }); err == nil || !strings.HasPrefix(err.Error(), "line 1:") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
