package offpolicy

import (
	"math/rand/v2"
	"testing"
)

// A uniformly random logging policy over three offers with known click
// rates: IPS and SNIPS estimate a policy that always shows the best offer
// within their intervals, and the logged reward is the average rate.
func TestEstimatesAKnownBetterPolicy(t *testing.T) {
	rates := []float64{0.02, 0.05, 0.10}
	rng := rand.New(rand.NewPCG(42, 7))
	var e Estimator
	const n = 60000
	for i := 0; i < n; i++ {
		shown := rng.IntN(len(rates))
		reward := 0.0
		if rng.Float64() < rates[shown] {
			reward = 1
		}
		e.Add(1.0/3, reward, same(shown == 2))
	}
	r := e.Result()
	if r.Decisions != n || r.Matched < n/3-1000 || r.Matched > n/3+1000 {
		t.Fatalf("counts %+v", r)
	}
	for name, iv := range map[string]Interval{"IPS": r.IPS, "SNIPS": r.SNIPS} {
		if !(iv.Lo <= 0.10 && 0.10 <= iv.Hi) || iv.Hi-iv.Lo > 0.02 {
			t.Errorf("%s = %+v, want an interval around 0.10 narrower than 0.02", name, iv)
		}
	}
	if want := (0.02 + 0.05 + 0.10) / 3; !(r.Logged.Lo <= want && want <= r.Logged.Hi) {
		t.Errorf("logged reward %+v, want around %.4f", r.Logged, want)
	}
}

// The same data estimate a worse policy as worse; decisions logged
// without a probability are skipped and counted.
func TestEstimatesAWorsePolicyAndSkips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var better, worse Estimator
	for i := 0; i < 30000; i++ {
		shown := rng.IntN(2)
		reward := 0.0
		if rng.Float64() < []float64{0.03, 0.09}[shown] {
			reward = 1
		}
		better.Add(0.5, reward, same(shown == 1))
		worse.Add(0.5, reward, same(shown == 0))
	}
	worse.Add(0, 1, 1)
	b, w := better.Result(), worse.Result()
	if !(w.IPS.Hi < b.IPS.Lo) {
		t.Errorf("worse %+v should be clearly below better %+v", w.IPS, b.IPS)
	}
	if w.Skipped != 1 || b.Skipped != 0 {
		t.Errorf("skipped %d and %d", w.Skipped, b.Skipped)
	}
}

func same(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
