package experiments

import (
	"math"
)

// z95 is the two-sided 95% quantile of the standard normal distribution.
const z95 = 1.959963984540054

// Proportion is a count of successes (clicks, conversions) out of trials
// (exposures, impressions).
type Proportion struct {
	Successes, Trials int64
}

// Rate is Successes / Trials, 0 without trials.
func (p Proportion) Rate() float64 {
	if p.Trials <= 0 {
		return 0
	}
	return float64(p.Successes) / float64(p.Trials)
}

// Wilson95 is the Wilson score interval at 95%: unlike the normal
// approximation it stays within [0, 1] and behaves for small counts and
// rates near 0, which clicks on a new variant are.
func (p Proportion) Wilson95() (lo, hi float64) {
	if p.Trials <= 0 {
		return 0, 1
	}
	n := float64(p.Trials)
	r := p.Rate()
	z2 := z95 * z95
	centre := (r + z2/(2*n)) / (1 + z2/n)
	half := z95 / (1 + z2/n) * math.Sqrt(r*(1-r)/n+z2/(4*n*n))
	return math.Max(0, centre-half), math.Min(1, centre+half)
}

// Comparison is a variant's rate against a baseline's (control or holdout).
type Comparison struct {
	// Difference is the variant's rate minus the baseline's, with its 95%
	// interval (normal approximation, unpooled).
	Difference, DiffLo, DiffHi float64
	// Uplift is the relative change, Difference / baseline rate (NaN when
	// the baseline rate is 0).
	Uplift float64
	// P is the two-sided p-value of the pooled two-proportion z-test that
	// the rates are equal (1 when it cannot be computed).
	P float64
}

// Compare tests variant against baseline.
func Compare(variant, baseline Proportion) Comparison {
	c := Comparison{P: 1, Uplift: math.NaN()}
	if variant.Trials <= 0 || baseline.Trials <= 0 {
		return c
	}
	r1, r0 := variant.Rate(), baseline.Rate()
	n1, n0 := float64(variant.Trials), float64(baseline.Trials)
	c.Difference = r1 - r0
	se := math.Sqrt(r1*(1-r1)/n1 + r0*(1-r0)/n0)
	c.DiffLo, c.DiffHi = c.Difference-z95*se, c.Difference+z95*se
	if r0 > 0 {
		c.Uplift = c.Difference / r0
	}
	pooled := float64(variant.Successes+baseline.Successes) / (n1 + n0)
	sePooled := math.Sqrt(pooled * (1 - pooled) * (1/n1 + 1/n0))
	if sePooled > 0 {
		z := c.Difference / sePooled
		c.P = math.Erfc(math.Abs(z) / math.Sqrt2)
	}
	return c
}

// SampleRatio is the chi-square goodness-of-fit test of observed counts
// (exposures per variant and holdout) against the shares the experiment
// asked for: a small P means the split is not what was configured
// (a sample ratio mismatch), and every comparison of the experiment is
// suspect.
func SampleRatio(observed []int64, shares []float64) (chi2, p float64) {
	var total int64
	var shareSum float64
	for i := range observed {
		total += observed[i]
		shareSum += shares[i]
	}
	if total == 0 || shareSum <= 0 || len(observed) < 2 {
		return 0, 1
	}
	dof := 0
	for i := range observed {
		expected := float64(total) * shares[i] / shareSum
		if expected <= 0 {
			continue
		}
		d := float64(observed[i]) - expected
		chi2 += d * d / expected
		dof++
	}
	if dof < 2 {
		return chi2, 1
	}
	return chi2, chiSquareSurvival(chi2, float64(dof-1))
}

// SRMThreshold is the p-value below which a report warns of a sample
// ratio mismatch; strict, because the test runs on large counts and a
// false alarm stops a good test.
const SRMThreshold = 0.001

// chiSquareSurvival is P(X > x) for X chi-square with k degrees of
// freedom: the regularised upper incomplete gamma function Q(k/2, x/2).
func chiSquareSurvival(x, k float64) float64 {
	if x <= 0 {
		return 1
	}
	return upperGammaQ(k/2, x/2)
}

// upperGammaQ is Q(a, x) by its power series below a+1 and its continued
// fraction (modified Lentz) above, the usual split for fast convergence.
func upperGammaQ(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-16 {
				break
			}
		}
		return 1 - sum*math.Exp(-x+a*math.Log(x)-lg)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}
