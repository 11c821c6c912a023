package loadtest

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Find-max search limits.
const (
	// maxProbes bounds the search: ten doublings from 1,000 reach 1M req/s
	// and the bisection needs about six more probes.
	maxProbes = 20
	// searchResolution stops the bisection once the bracket is within 5%.
	searchResolution = 0.05
)

// findMax ramps the rate up exponentially from the first rate until a probe
// misses the SLO, then bisects between the last pass and the first miss.
// Each probe is a short open-loop step; all of them go into the report.
func (r *runner) findMax(ctx context.Context, rep *Report) {
	slo := r.cfg.SLO
	fm := &FindMax{SLO: slo.String()}
	rep.FindMax = fm
	first := true
	probe := func(rate float64) (pass, stop bool) {
		if !first && !r.pause(ctx) {
			return false, true
		}
		first = false
		st := r.runStep(ctx, plan{kind: kindProbe, index: len(rep.Steps) + 1, rate: rate, duration: r.cfg.Duration, requests: r.cfg.Requests})
		res := slo.Check(&st)
		st.SLO = &res
		rep.Steps = append(rep.Steps, st)
		return res.Pass, st.Interrupted
	}
	fm.MaxRate, fm.Capped, fm.Probes = search(firstRate(r.cfg), r.cfg.MaxRate, probe)
	fm.Found = fm.MaxRate > 0
}

// search finds the highest rate for which probe passes, assuming higher
// rates are harder: it doubles from start until a probe fails (or maxRate
// passes: capped), then bisects until the bracket is within
// searchResolution. It returns the highest passing rate (0 if none).
func search(start, maxRate float64, probe func(rate float64) (pass, stop bool)) (best float64, capped bool, probes int) {
	rate := math.Min(start, maxRate)
	lo, hi := 0.0, 0.0 // highest pass, lowest miss (0 = none yet)
	for probes < maxProbes {
		pass, stop := probe(rate)
		probes++
		if stop {
			break
		}
		if pass {
			lo = rate
		} else {
			hi = rate
		}
		if hi == 0 {
			if rate >= maxRate {
				return lo, true, probes
			}
			rate = math.Min(rate*2, maxRate)
			continue
		}
		if hi-lo <= math.Max(hi*searchResolution, 1) {
			break
		}
		rate = niceBetween(lo, hi)
	}
	return lo, false, probes
}

// niceBetween picks a round rate strictly between lo and hi, near the
// middle, so probes read as 15,000 rather than 15,137.
func niceBetween(lo, hi float64) float64 {
	mid := (lo + hi) / 2
	for digits := 2; digits <= 6; digits++ {
		if v := roundSig(mid, digits); v > lo && v < hi {
			return v
		}
	}
	return mid
}

func roundSig(v float64, digits int) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, float64(digits)-math.Ceil(math.Log10(v)))
	return math.Round(v*p) / p
}

// Check says whether a step met the SLO: every latency limit, the error
// budget and, in the open loop, the target rate (within MinAchieved).
func (s SLO) Check(st *Step) SLOResult {
	var fails []string
	for _, t := range s.Terms {
		us, ok := valueAt(st, t.Percentile)
		if !ok {
			fails = append(fails, percentileName(t.Percentile)+": no latencies measured")
			continue
		}
		if time.Duration(us)*time.Microsecond > t.Limit {
			fails = append(fails, fmt.Sprintf("%s %s > %s", percentileName(t.Percentile), fmtUS(us), fmtDuration(t.Limit)))
		}
	}
	total := st.Planned
	if total == 0 {
		total = st.Sent
	}
	if total == 0 {
		fails = append(fails, "no requests sent")
	} else if ratio := float64(st.Errors.Total) / float64(total); ratio > s.MaxErrorRatio {
		fails = append(fails, fmt.Sprintf("errors %s > %s", fmtPercent(ratio), fmtPercent(s.MaxErrorRatio)))
	}
	if st.Mode == Open && st.TargetRate > 0 && st.AchievedRate < s.MinAchieved*st.TargetRate {
		fails = append(fails, fmt.Sprintf("achieved %s/s < %s of the %s/s target",
			fmtInt(int64(st.AchievedRate)), fmtPercent(s.MinAchieved), fmtInt(int64(st.TargetRate))))
	}
	return SLOResult{Pass: len(fails) == 0, Failures: fails}
}

// valueAt reads a percentile in µs from the step's histogram, or from its
// summary when the histogram is unavailable.
func valueAt(st *Step, p float64) (int64, bool) {
	if st.hist != nil {
		if st.hist.TotalCount() == 0 {
			return 0, false
		}
		if p >= 100 {
			return st.hist.Max(), true
		}
		return st.hist.ValueAtPercentile(p), true
	}
	l := st.Latency
	if l.Count == 0 {
		return 0, false
	}
	switch p {
	case 50:
		return l.P50, true
	case 90:
		return l.P90, true
	case 99:
		return l.P99, true
	case 99.9:
		return l.P999, true
	case 99.99:
		return l.P9999, true
	case 100:
		return l.Max, true
	}
	return 0, false
}
