// Package offpolicy estimates, from a decision log and the outcomes that
// followed, how a different policy (a new ruleset) would have done, before
// it serves anyone: inverse propensity scoring over the logged choices and
// their logged probabilities. It reads decision log lines and events; the
// replay of logged requests through a ruleset is the caller's.
package offpolicy

import (
	"math"
)

// z95 is the two-sided 95% quantile of the standard normal distribution.
const z95 = 1.959963984540054

// Estimator accumulates, per logged decision of one placement, what was
// shown (with the probability the logging policy gave it), its reward,
// and what the new policy would show.
type Estimator struct {
	n int
	// Logged policy: the observed rewards.
	sumR, sumR2 float64
	// IPS terms: w·r with w = target/p (1[same choice]/p but for
	// experiment assignments).
	sumT, sumT2 float64
	// Self-normalised IPS: sums of w, w·r and the parts of its variance.
	sumW, sumW2, sumW2R, sumW2R2 float64
	matched                      int
	skipped                      int
}

// Add records one logged decision: the logging policy chose with
// probability propensity and earned reward; target is the new policy's
// weight for the same choice: 0 when it chooses otherwise, 1 when it
// makes the same choice, and for a choice both policies make by an
// experiment's assignment, the share of that assignment (the two shares
// cancel, as they should for the same experiment). Decisions logged with
// no probability (0 or below, or above 1) cannot be reweighted and are
// skipped, counted.
func (e *Estimator) Add(propensity, reward, target float64) {
	if !(propensity > 0 && propensity <= 1) {
		e.skipped++
		return
	}
	e.n++
	e.sumR += reward
	e.sumR2 += reward * reward
	if target <= 0 {
		return
	}
	e.matched++
	w := target / propensity
	t := w * reward
	e.sumT += t
	e.sumT2 += t * t
	e.sumW += w
	e.sumW2 += w * w
	e.sumW2R += w * w * reward
	e.sumW2R2 += w * w * reward * reward
}

// Interval is an estimate with its 95% confidence interval.
type Interval struct {
	Value, Lo, Hi float64
}

// Result is what the estimator found.
type Result struct {
	// Decisions were used; Matched of them the new policy decides alike;
	// Skipped had no usable logged probability.
	Decisions, Matched, Skipped int
	// Logged is the mean reward the logging policy earned.
	Logged Interval
	// IPS is the inverse propensity estimate of the new policy's mean
	// reward, unbiased when every choice the new policy makes had a
	// positive logged probability; SNIPS is its self-normalised form,
	// slightly biased but with far less variance when few decisions match.
	IPS, SNIPS Interval
}

// Result computes the estimates; intervals are normal approximations
// (for SNIPS by the delta method).
func (e *Estimator) Result() Result {
	r := Result{Decisions: e.n, Matched: e.matched, Skipped: e.skipped}
	if e.n == 0 {
		return r
	}
	n := float64(e.n)
	r.Logged = meanInterval(e.sumR, e.sumR2, n)
	r.IPS = meanInterval(e.sumT, e.sumT2, n)
	if e.sumW > 0 {
		v := e.sumT / e.sumW
		// Var(SNIPS) ≈ Σ w²(r − v)² / (Σ w)².
		num := e.sumW2R2 - 2*v*e.sumW2R + v*v*e.sumW2
		half := z95 * math.Sqrt(math.Max(num, 0)) / e.sumW
		r.SNIPS = Interval{Value: v, Lo: v - half, Hi: v + half}
	}
	return r
}

func meanInterval(sum, sumSq, n float64) Interval {
	mean := sum / n
	if n < 2 {
		return Interval{Value: mean, Lo: math.Inf(-1), Hi: math.Inf(1)}
	}
	variance := math.Max(sumSq/n-mean*mean, 0) * n / (n - 1)
	half := z95 * math.Sqrt(variance/n)
	return Interval{Value: mean, Lo: mean - half, Hi: mean + half}
}
