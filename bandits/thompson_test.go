package bandits

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Beta draws have the distribution's mean and variance.
func TestSampleBetaMoments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ a, b float64 }{{1, 1}, {1, 20}, {0.5, 0.5}, {30, 970}, {200, 5}} {
		const n = 200000
		var sum, sq float64
		for i := 0; i < n; i++ {
			x := SampleBeta(c.a, c.b, rng)
			if x < 0 || x > 1 {
				t.Fatalf("Beta(%v, %v) drew %v", c.a, c.b, x)
			}
			sum += x
			sq += x * x
		}
		mean := sum / n
		variance := sq/n - mean*mean
		wantMean := c.a / (c.a + c.b)
		wantVar := c.a * c.b / ((c.a + c.b) * (c.a + c.b) * (c.a + c.b + 1))
		// Five standard errors of the mean; the variance within 3%.
		if math.Abs(mean-wantMean) > 5*math.Sqrt(wantVar/n) || math.Abs(variance-wantVar) > 0.03*wantVar {
			t.Errorf("Beta(%v, %v): mean %.5f var %.6g, want %.5f %.6g", c.a, c.b, mean, variance, wantMean, wantVar)
		}
	}
}

// Sampling learns: with posteriors from true rates, Thompson sampling
// shows the best arm most; and with rewards fed back it finds it.
func TestThompsonFindsTheBestArm(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	truth := []float64{0.02, 0.03, 0.05, 0.025}
	rewards := make([]int64, len(truth))
	trials := make([]int64, len(truth))
	arms := make([]Arm, len(truth))
	p := Policy{MinShare: 0.02}
	shown := make([]int, len(truth))
	const rounds = 20000
	for r := 0; r < rounds; r++ {
		for i := range arms {
			arms[i] = Posterior(1, 20, rewards[i], trials[i])
		}
		k := p.Choose(arms, rng)
		trials[k]++
		if rng.Float64() < truth[k] {
			rewards[k]++
		}
		if r >= rounds/2 {
			shown[k]++
		}
	}
	if share := float64(shown[2]) / (rounds / 2); share < 0.8 {
		t.Errorf("the best arm got %.2f of the second half's traffic (shown %v, trials %v)", share, shown, trials)
	}
	for i, s := range shown {
		if float64(s)/(rounds/2) < p.MinShare*0.8 {
			t.Errorf("arm %d starved: %d of %d despite min_share %v", i, s, rounds/2, p.MinShare)
		}
	}
}

// Estimated propensities sum to one, respect the floor, and match how
// often Choose picks each arm.
func TestPropensities(t *testing.T) {
	arms := []Arm{Posterior(1, 20, 30, 1000), Posterior(1, 20, 40, 1000), Posterior(1, 20, 35, 1000)}
	p := Policy{MinShare: 0.05}
	out := make([]float64, len(arms))
	p.Propensities(arms, 20000, rand.New(rand.NewPCG(3, 4)), out)
	sum := 0.0
	for i, v := range out {
		sum += v
		if v < p.MinShare {
			t.Errorf("arm %d: propensity %v under the floor", i, v)
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("propensities sum to %v", sum)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	counts := make([]float64, len(arms))
	const n = 40000
	for i := 0; i < n; i++ {
		counts[p.Choose(arms, rng)]++
	}
	for i := range arms {
		if got := counts[i] / n; math.Abs(got-out[i]) > 0.02 {
			t.Errorf("arm %d: chosen %.3f of the time, estimated %.3f", i, got, out[i])
		}
	}
}

func BenchmarkThompson(b *testing.B) {
	for _, n := range []int{2, 20} {
		b.Run(fmt.Sprintf("arms=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			arms := make([]Arm, n)
			for i := range arms {
				arms[i] = Posterior(1, 20, int64(10+i), 1000)
			}
			// A floor of 1% per arm: most choices are Thompson draws.
			p := Policy{MinShare: 0.01}
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Choose(arms, rng)
			}
		})
	}
}

// Rank's first position follows Choose, every arm keeps its min share
// of each position, and RankPropensities agrees with observed rankings.
func TestRankAndItsPropensities(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	arms := []Arm{Posterior(1, 20, 30, 1000), Posterior(1, 20, 50, 1000), Posterior(1, 20, 45, 1000)}
	p := Policy{MinShare: 0.05}
	const n = 100000
	seen := make([]float64, len(arms)*2)
	order := make([]int, len(arms))
	draws := make([]float64, len(arms))
	for r := 0; r < n; r++ {
		p.Rank(arms, rng, order, draws)
		used := map[int]bool{}
		for _, i := range order {
			if used[i] {
				t.Fatalf("Rank repeated arm %d: %v", i, order)
			}
			used[i] = true
		}
		seen[order[0]*2]++
		seen[order[1]*2+1]++
	}
	props := p.RankPropensities(arms, 2, 20000, rand.New(rand.NewPCG(9, 9)))
	for i := range arms {
		for k := 0; k < 2; k++ {
			got := seen[i*2+k] / n
			if got < p.MinShare*0.9 {
				t.Errorf("arm %d at position %d: share %.3f, below min share %.2f", i, k, got, p.MinShare)
			}
			// 20,000 draws: standard error at most 0.0035.
			if math.Abs(got-props[i*2+k]) > 0.015 {
				t.Errorf("arm %d at position %d: observed %.4f, estimated %.4f", i, k, got, props[i*2+k])
			}
		}
	}
	if seen[2]/n < 0.5 {
		t.Errorf("the best arm led only %.2f of rankings", seen[2]/n)
	}
}
