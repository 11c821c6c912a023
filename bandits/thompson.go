// Package bandits chooses among candidates by Thompson sampling over Beta
// posteriors of their reward rates, and estimates the probability of each
// choice so that bandit traffic can be evaluated off-policy. It keeps no
// state: posteriors come from the caller (counters in the store), and
// randomness from a generator the caller owns, one per goroutine.
package bandits

import (
	"math"
	"math/rand/v2"
)

// Arm is one candidate's posterior: Beta(Alpha, Beta), the prior's
// parameters plus its rewards and its trials without reward.
type Arm struct {
	Alpha, Beta float64
	// The constants of Marsaglia and Tsang's method for each parameter,
	// computed once per posterior rather than once per draw (zero: not
	// computed, as for an Arm written as a literal).
	da, ca, db, cb float64
}

// NewArm is Beta(alpha, beta), ready to sample.
func NewArm(alpha, beta float64) Arm {
	a := Arm{Alpha: alpha, Beta: beta}
	a.da, a.ca = gammaConstants(alpha)
	a.db, a.cb = gammaConstants(beta)
	return a
}

// Posterior is the arm for a prior and observed counts.
func Posterior(priorAlpha, priorBeta float64, rewards, trials int64) Arm {
	misses := trials - rewards
	if misses < 0 {
		misses = 0
	}
	return NewArm(priorAlpha+float64(rewards), priorBeta+float64(misses))
}

// sample draws the arm's rate.
func (a *Arm) sample(rng *rand.Rand) float64 {
	if a.da == 0 || a.db == 0 {
		return SampleBeta(a.Alpha, a.Beta, rng)
	}
	x := gammaMT(a.da, a.ca, rng)
	y := gammaMT(a.db, a.cb, rng)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// gammaConstants are d and c of Marsaglia and Tsang's method for shape
// (≥ 1), or zeros for shapes it does not take directly.
func gammaConstants(shape float64) (d, c float64) {
	if !(shape >= 1) || math.IsInf(shape, 0) {
		return 0, 0
	}
	d = shape - 1.0/3
	return d, 1 / math.Sqrt(9*d)
}

// Policy is how a placement explores.
type Policy struct {
	// MinShare is the least probability every arm is chosen with (0 to
	// 1/len(arms)): with it, each choice is uniform with probability
	// MinShare × len(arms) and a Thompson draw otherwise, so no arm
	// starves and every logged propensity stays above MinShare.
	MinShare float64
}

// Choose returns the index of the arm to show: the uniform exploration
// the policy asks for, or else the arm whose sampled rate is highest. It
// allocates nothing.
func (p Policy) Choose(arms []Arm, rng *rand.Rand) int {
	n := len(arms)
	if n == 0 {
		return -1
	}
	if n == 1 {
		return 0
	}
	if explore := p.MinShare * float64(n); explore > 0 && rng.Float64() < explore {
		return rng.IntN(n)
	}
	best, bestDraw := 0, -1.0
	for i := range arms {
		if d := arms[i].sample(rng); d > bestDraw {
			best, bestDraw = i, d
		}
	}
	return best
}

// Propensities estimates into out (len(out) == len(arms)) the probability
// that Choose picks each arm, from draws simulated choices; each estimate
// has a standard error of at most 0.5/√draws. Callers cache the result
// (a second is plenty), since posteriors move slowly.
func (p Policy) Propensities(arms []Arm, draws int, rng *rand.Rand, out []float64) {
	clear(out)
	n := len(arms)
	if n == 0 || draws <= 0 {
		return
	}
	explore := math.Min(1, p.MinShare*float64(n))
	wins := out
	for d := 0; d < draws; d++ {
		best, bestDraw := 0, -1.0
		for i := range arms {
			if v := arms[i].sample(rng); v > bestDraw {
				best, bestDraw = i, v
			}
		}
		wins[best]++
	}
	for i := range out {
		out[i] = explore/float64(n) + (1-explore)*wins[i]/float64(draws)
	}
}

// SampleBeta draws from Beta(a, b) as X/(X+Y) with X ~ Gamma(a) and
// Y ~ Gamma(b).
func SampleBeta(a, b float64, rng *rand.Rand) float64 {
	x := sampleGamma(a, rng)
	y := sampleGamma(b, rng)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// sampleGamma draws from Gamma(shape, 1) by Marsaglia and Tsang's method;
// shapes below 1 use the boost Gamma(shape+1) × U^(1/shape).
func sampleGamma(shape float64, rng *rand.Rand) float64 {
	if !(shape > 0) {
		return 0
	}
	if shape < 1 {
		u := rng.Float64()
		return sampleGamma(shape+1, rng) * math.Pow(u, 1/shape)
	}
	d, c := gammaConstants(shape)
	return gammaMT(d, c, rng)
}

// gammaMT is Marsaglia and Tsang's rejection sampler for Gamma(d + 1/3).
func gammaMT(d, c float64, rng *rand.Rand) float64 {
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// Rank orders arms for a placement that shows several: with the
// exploration probability a uniform shuffle, else by one sampled rate per
// arm, highest first. order and draws (both len(arms)) are the caller's
// buffers; order receives arm indexes. Its first element is distributed as
// Choose's answer. It allocates nothing.
func (p Policy) Rank(arms []Arm, rng *rand.Rand, order []int, draws []float64) {
	n := len(arms)
	for i := range order[:n] {
		order[i] = i
	}
	if n < 2 {
		return
	}
	if explore := p.MinShare * float64(n); explore > 0 && rng.Float64() < explore {
		for i := n - 1; i > 0; i-- {
			j := rng.IntN(i + 1)
			order[i], order[j] = order[j], order[i]
		}
		return
	}
	for i := range arms {
		draws[i] = arms[i].sample(rng)
	}
	// Insertion sort: a placement's band holds a handful of candidates.
	for i := 1; i < n; i++ {
		for j := i; j > 0 && draws[order[j]] > draws[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
}

// RankPropensities estimates, from draws simulated rankings, the
// probability that Rank puts arm i at position k, for the first slots
// positions: out[i*slots+k]. Each estimate has a standard error of at most
// 0.5/√draws.
func (p Policy) RankPropensities(arms []Arm, slots, draws int, rng *rand.Rand) []float64 {
	n := len(arms)
	slots = min(slots, n)
	out := make([]float64, n*slots)
	if n == 0 || draws <= 0 {
		return out
	}
	order := make([]int, n)
	buf := make([]float64, n)
	for d := 0; d < draws; d++ {
		p.Rank(arms, rng, order, buf)
		for k := 0; k < slots; k++ {
			out[order[k]*slots+k]++
		}
	}
	for i := range out {
		out[i] /= float64(draws)
	}
	return out
}
