package experiments

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"testing"
)

type statsGolden struct {
	Wilson []struct {
		Successes, Trials int64
		Lo, Hi            float64
	}
	Compare []struct {
		Variant, Baseline [2]int64
		Difference        float64
		Lo, Hi, P         float64
	}
	SRM []struct {
		Observed []int64
		Shares   []float64
		Chi2, P  float64
	}
}

func readGolden(t *testing.T, data []byte) statsGolden {
	t.Helper()
	var g statsGolden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Wilson) == 0 || len(g.Compare) == 0 || len(g.SRM) == 0 {
		t.Fatal("golden file has no cases")
	}
	return g
}

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// The statistics agree with SciPy's on the committed cases.
func TestStatsMatchSciPy(t *testing.T) {
	data, err := os.ReadFile("testdata/stats_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, readGolden(t, data))
}

// Where Debian's Python with SciPy is installed, the golden values are
// computed again, so the committed file cannot drift from SciPy.
func TestStatsGoldenRegenerated(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import scipy").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs /usr/bin/python3 with SciPy (Debian's python3-scipy): %v", err)
		}
		t.Skip("no /usr/bin/python3 with SciPy")
	}
	out, err := exec.Command("/usr/bin/python3", "testdata/stats_golden.py").Output()
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, readGolden(t, out))
}

func checkStats(t *testing.T, g statsGolden) {
	for _, c := range g.Wilson {
		lo, hi := Proportion{c.Successes, c.Trials}.Wilson95()
		if !near(lo, c.Lo, 1e-9) || !near(hi, c.Hi, 1e-9) {
			t.Errorf("Wilson(%d/%d) = [%v, %v], SciPy [%v, %v]", c.Successes, c.Trials, lo, hi, c.Lo, c.Hi)
		}
	}
	for _, c := range g.Compare {
		got := Compare(Proportion{c.Variant[0], c.Variant[1]}, Proportion{c.Baseline[0], c.Baseline[1]})
		if !near(got.Difference, c.Difference, 1e-12) || !near(got.DiffLo, c.Lo, 1e-9) || !near(got.DiffHi, c.Hi, 1e-9) || !near(got.P, c.P, 1e-9) {
			t.Errorf("Compare(%v, %v) = %+v, want difference %v [%v, %v] p %v", c.Variant, c.Baseline, got, c.Difference, c.Lo, c.Hi, c.P)
		}
	}
	for _, c := range g.SRM {
		chi2, p := SampleRatio(c.Observed, c.Shares)
		if !near(chi2, c.Chi2, 1e-9) || !near(p, c.P, 1e-8) {
			t.Errorf("SampleRatio(%v, %v) = %v, %v; SciPy %v, %v", c.Observed, c.Shares, chi2, p, c.Chi2, c.P)
		}
	}
}

// A deliberately skewed split trips the mismatch check; an honest one
// does not.
func TestSampleRatioMismatch(t *testing.T) {
	e := &Experiment{ID: "x", Salt: "s", Variants: []Variant{{"a", 45}, {"b", 45}}, Holdout: 10}
	if err := Prepare([]Layered{{Experiment: e}}); err != nil {
		t.Fatal(err)
	}
	counts := make([]int64, 3) // a, b, holdout
	skewed := make([]int64, 3)
	for i, id := range ids(50000) {
		a := e.Assign(id)
		k := 2
		if !a.Holdout {
			k = a.Variant
		}
		counts[k]++
		// A client that drops every fifth exposure of variant b.
		if !(k == 1 && i%5 == 0) {
			skewed[k]++
		}
	}
	shares := []float64{45, 45, 10}
	if _, p := SampleRatio(counts, shares); p < SRMThreshold {
		t.Errorf("the hash's own split is flagged: p = %v for %v", p, counts)
	}
	if _, p := SampleRatio(skewed, shares); p >= SRMThreshold {
		t.Errorf("a split that lost a fifth of one variant passes: p = %v for %v", p, skewed)
	}
}
