package experiments

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// synthLog writes a decision log and events for an experiment: customers
// assigned by the experiment itself, shown an item per arm, clicking at
// the arm's rate. skip drops that share of one arm's exposures, as a
// client that fails to report them would.
func synthLog(t *testing.T, x *Experiment, n int, rates map[string]float64, skipArm string, skip float64) (string, string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	var log, events strings.Builder
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("c-%d", i)
		a := x.Assign(id)
		if !a.In {
			continue
		}
		arm := Holdout
		if !a.Holdout {
			arm = x.Variants[a.Variant].Name
		}
		if arm == skipArm && rng.Float64() < skip {
			continue
		}
		did := fmt.Sprintf("d-%d", i)
		fmt.Fprintf(&log, `{"decision_id":%q,"customer_id":%q,"placements":[{"id":"p","candidates":[{"touchpoint":"t-%s","reason":"chosen","chosen":true,"propensity":1,"experiment":%q,"variant":%q}]}]}`+"\n",
			did, id, arm, x.ID, arm)
		fmt.Fprintf(&events, `{"event_id":"i%d","decision_id":%q,"touchpoint":"t-%s","type":"impression"}`+"\n", i, did, arm)
		if rng.Float64() < rates[arm] {
			fmt.Fprintf(&events, `{"event_id":"c%d","decision_id":%q,"touchpoint":"t-%s","type":"click"}`+"\n", i, did, arm)
			fmt.Fprintf(&events, `{"event_id":"v%d","decision_id":%q,"touchpoint":"t-%s","type":"conversion","value":10}`+"\n", i, did, arm)
		}
	}
	events.WriteString(`{"event_id":"x","decision_id":"elsewhere","touchpoint":"t","type":"click"}` + "\n")
	return log.String(), events.String()
}

func reportExperiment(t *testing.T) *Experiment {
	x := &Experiment{ID: "cart_coupon_test", Salt: "s", Variants: []Variant{{"control", 45}, {"ten_percent", 45}}, Holdout: 10}
	if err := Prepare([]Layered{{Experiment: x}}); err != nil {
		t.Fatal(err)
	}
	return x
}

func TestReportCountsArms(t *testing.T) {
	x := reportExperiment(t)
	rates := map[string]float64{"control": 0.04, "ten_percent": 0.08, Holdout: 0.02}
	log, events := synthLog(t, x, 40000, rates, "", 0)
	rep, err := BuildReport(x, strings.NewReader(log), strings.NewReader(events))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Arms) != 3 || rep.Unattributed != 1 || rep.SampleRatioMismatch() {
		t.Fatalf("report %+v", rep)
	}
	var exposures int64
	for _, a := range rep.Arms {
		exposures += a.Exposures
		if a.Impressions != a.Exposures || a.Conversions != a.Clicks || a.Revenue != 10*float64(a.Conversions) {
			t.Errorf("%s: %+v", a.Name, a)
		}
		lo, hi := a.ClickRate().Wilson95()
		if r := rates[a.Name]; r < lo || r > hi {
			t.Errorf("%s: click rate interval [%v, %v] misses the true %v", a.Name, lo, hi, r)
		}
	}
	if exposures != 40000 {
		t.Errorf("%d exposures, want every one of 40000", exposures)
	}
	c := Compare(rep.Arm("ten_percent").ClickRate(), rep.Arm("control").ClickRate())
	if c.P > 0.001 || c.Uplift < 0.5 {
		t.Errorf("ten_percent against control: %+v, want a clear doubling", c)
	}
}

// A client that loses a fifth of one arm's exposures trips the check.
func TestReportFlagsSampleRatioMismatch(t *testing.T) {
	x := reportExperiment(t)
	log, events := synthLog(t, x, 40000, map[string]float64{}, "ten_percent", 0.2)
	rep, err := BuildReport(x, strings.NewReader(log), strings.NewReader(events))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.SampleRatioMismatch() {
		t.Errorf("a fifth of ten_percent missing passed the check: p = %v, arms %+v", rep.SRMP, rep.Arms)
	}
}

// A placement that counted for an arm is an exposure even when it showed
// nothing, as the live counters count it.
func TestReportCountsEmptyPlacementsOfAnArm(t *testing.T) {
	x := reportExperiment(t)
	log := `{"decision_id":"d-1","placements":[{"id":"p","experiment":"cart_coupon_test","variant":"control","candidates":[]}]}
{"decision_id":"d-2","placements":[{"id":"p","experiment":"cart_coupon_test","variant":"holdout","candidates":[{"touchpoint":"f","reason":"fallback","chosen":true,"propensity":0.1,"experiment":"cart_coupon_test","variant":"holdout"}]}]}
{"decision_id":"d-3","placements":[{"id":"p","experiment":"other_test","variant":"control","candidates":[]}]}
`
	rep, err := BuildReport(x, strings.NewReader(log), strings.NewReader(`{"event_id":"e","decision_id":"d-2","touchpoint":"f","type":"impression"}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c, h := rep.Arm("control"), rep.Arm(Holdout); c.Exposures != 1 || h.Exposures != 1 || h.Impressions != 1 || rep.Arm("ten_percent").Exposures != 0 {
		t.Errorf("arms: %+v", rep.Arms)
	}
}
